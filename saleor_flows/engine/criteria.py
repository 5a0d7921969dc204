"""Conditions applied to a journey: what a contact's enrolment sees, and whether it must end.

Used when events arrive (processing) and right before every send (runner),
so both re-check exactly the same thing.
"""

from ..models import Enrolment
from .conditions import EvalContext, evaluate, reads_trigger_event
from .definition import version_definition
from .history import DatabaseHistory, SharedEvents


def journey_context(enrolment: Enrolment, contact, now, shared: SharedEvents | None = None, *,
                    trigger: bool = True) -> EvalContext:
    """The contact now, the trigger event's payload, and history scoped to this journey.

    ``shared``: the events of a window of contacts, fetched once for all of them. ``trigger=False``:
    for a condition that does not read the trigger event (``conditions.reads_trigger_event``), which
    is then not loaded.
    """
    event = enrolment.trigger_event if trigger else None
    return EvalContext(
        contact=contact.as_context(), event=event and event.payload, now=now,
        entered_at=enrolment.entered_at, triggered_at=event and event.occurred_at,
        history=DatabaseHistory(contact, flow_id=enrolment.flow_id, now=now,
                                trigger_event_id=enrolment.trigger_event_id, shared=shared),
    )


def check_exit(enrolment: Enrolment, contact, now, shared: SharedEvents | None = None) -> tuple[str, dict] | None:
    """(status, {"reason", "facts"}) if the goal or the exit criteria hold now, else None."""
    definition = version_definition(enrolment.version_id)
    return exit_outcome(definition, lambda: journey_context(enrolment, contact, now, shared,
                                                            trigger=ends_on_trigger_event(definition)))


def ends_on_trigger_event(definition: dict) -> bool:
    """Whether the goal or the exit criteria of ``definition`` read the journey's trigger event."""
    return any(reads_trigger_event(definition[key]) for key in ("goal", "exit") if definition.get(key))


def exit_outcome(definition: dict, make_context) -> tuple[str, dict] | None:
    """The goal, then the exit criteria, of ``definition`` against the context ``make_context()`` builds.

    (The context is built only when the flow has a goal or exit; a simulation passes its own.)
    """
    context, decided = None, []
    for key, status in (("goal", Enrolment.Status.CONVERTED), ("exit", Enrolment.Status.EXITED)):
        condition = definition.get(key)
        if condition:
            context = context or make_context()
            # "Converted when they order" and "exit when they order" are often the same question.
            decision = next((d for c, d in decided if c == condition), None)
            if decision is None:  # (a Decision is falsy when false: compare with None, not truthiness)
                decision = evaluate(condition, context)
            decided.append((condition, decision))
            if decision.result:
                return status, {"reason": "goal_reached" if key == "goal" else "exit_criteria",
                                "facts": decision.facts}
    return None
