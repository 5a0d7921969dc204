"""Processing one stored event: who it is about, what it changes, which journeys it starts or ends.

Everything here happens in one transaction with the contact's row locked, so
that two events about the same person can never both enrol them where the
re-entry rule allows one. Steps that are due at once run right after the
commit, in the same task (``process_event_and_continue``).
"""

import logging
import re
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError, transaction

from .. import clock
from ..events import valid_email
from ..models import Enrolment, Event, Flow, PastEntry, StepExecution
from . import attribution, resolvers, trail
from .conditions import EvalContext, correlated, evaluate
from .contacts import erase_contact, resolve_contact, update_profile
from .criteria import check_exit
from .definition import version_definition, version_number
from .derived import derive
from .history import DatabaseHistory
from .retention import pruned_duplicate
from .runner import finish_enrolment, run_claimed, schedule_step

logger = logging.getLogger(__name__)

CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


def _money(value) -> bool:
    try:
        Decimal(str(value))
        return value is not None
    except (InvalidOperation, ValueError):
        return False


# What the engine itself reads from known events: a payload without these is
# dead-lettered with the reason, instead of failing somewhere downstream.
EVENT_SHAPES = {
    "order_created": {"total_gross_amount": _money, "currency": lambda v: isinstance(v, str) and bool(CURRENCY_RE.match(v))},
    "checkout_abandoned": {"lines": lambda v: isinstance(v, list)},
    "consent_updated": {"channel": lambda v: v in ("email", "sms"),
                        "status": lambda v: v in ("subscribed", "unsubscribed", "never")},
    "profile_updated": {"attributes": lambda v: isinstance(v, dict)},
}


def shape_problem(event: Event) -> str:
    """Why an event cannot be processed, or "" if it can."""
    if event.error:
        return event.error
    if not isinstance(event.payload, dict):
        return f"payload must be a JSON object, got {type(event.payload).__name__}"
    if not event.email and not event.user_id:
        return "event has no contact identity (neither email nor user_id)"
    if event.email and not valid_email(event.email):
        return f"email {event.email!r} is not a valid address"
    for key, check in EVENT_SHAPES.get(event.name, {}).items():
        if key not in event.payload:
            return f"{event.name} payload is missing {key!r}"
        if not check(event.payload[key]):
            return f"{event.name} payload has an invalid {key!r}: {event.payload[key]!r}"
    return ""


def reentry_reason(definition: dict, now, *, has_entered, has_active, entered_since) -> str:
    """Why the re-entry rule refuses a new enrolment, or "".

    The three questions are callables, asked only as the rule needs them: the
    engine answers from Enrolment rows, a simulation from its own journeys.
    """
    rule = definition.get("reentry") or {"mode": "once"}
    mode = rule.get("mode", "once")
    if mode == "once" and has_entered():
        return "already entered once (re-entry: once)"
    if mode == "single_active" and has_active():
        return "already in this flow (re-entry: one active enrolment)"
    if mode == "once_per_period" and entered_since(now - timedelta(days=rule["days"])):
        return f"entered within the last {rule['days']} days (re-entry: once per period)"
    return ""


def _reentry_blocked(flow: Flow, definition: dict, contact, now) -> str:
    # Enrolments pruned by retention left a PastEntry behind (engine/retention.py): both count.
    previous = Enrolment.objects.filter(flow=flow, contact=contact)
    pruned = PastEntry.objects.filter(flow=flow, contact=contact)
    return reentry_reason(
        definition, now, has_entered=lambda: previous.exists() or pruned.exists(),
        has_active=lambda: previous.filter(status=Enrolment.Status.ACTIVE).exists(),
        entered_since=lambda since: (previous.filter(entered_at__gt=since).exists()
                                     or pruned.filter(last_entered_at__gt=since).exists()))


def _enrol(flow: Flow, event: Event, contact, now) -> int | None:
    """Enrol the contact if trigger filter and re-entry rule allow; returns the first execution id."""
    version_id = flow.live_version_id
    definition = version_definition(version_id)
    trigger_filter = definition["trigger"].get("filter")
    if trigger_filter:
        decision = evaluate(trigger_filter, EvalContext(contact=contact.as_context(), event=event.payload, now=now,
                                                        history=DatabaseHistory(contact, flow_id=flow.pk, now=now)))
        if not decision.result:
            trail.record(contact.pk, "not_entered", flow=flow.slug, event=event.name,
                         reason="entry filter did not match", facts=decision.facts)
            return None
    blocked = _reentry_blocked(flow, definition, contact, now)
    if blocked:
        trail.record(contact.pk, "not_entered", flow=flow.slug, event=event.name, reason=blocked)
        return None
    # Held out (the flow's holdout group): enrolled and tracked for goals and orders, never sent anything.
    held_out = attribution.in_holdout(flow.pk, contact.pk, event.pk, definition.get("holdout_percent"))
    enrolment, created = Enrolment.objects.get_or_create(
        flow=flow, contact=contact, trigger_event=event,
        defaults={"version_id": version_id, "entered_at": now, "holdout": held_out},
    )
    if not created:
        return None
    if enrolment.holdout:
        trail.record(contact.pk, "held_out", enrolment_id=enrolment.pk, flow=flow.slug,
                     version=version_number(version_id), event=event.name, event_id=event.pk,
                     percent=definition["holdout_percent"])
        return None
    trail.record(contact.pk, "entered", enrolment_id=enrolment.pk, flow=flow.slug,
                 version=version_number(version_id), event=event.name, event_id=event.pk)
    return schedule_step(enrolment, definition["start"], now=now, contact=contact)


@contextmanager
def _isolated(contact, event: Event, **where):
    """One flow's decision about this event (enrol, exit, wake a wait). If it raises (a bug, a
    stored definition that overflows), the block is left, the failure is logged and recorded
    against that flow in the contact's trail, and the event goes on to the other flows.

    The database being away, or a broken setting, is no flow's fault: the event as a whole fails.
    """
    try:
        yield
    except (OperationalError, InterfaceError, ImproperlyConfigured):
        raise
    except Exception as exc:  # noqa: BLE001 - recorded against this flow, logged with its traceback
        logger.exception("saleor-flows: a flow failed on event %s (%s): %s", event.pk, event.name, where)
        trail.record(contact.pk, "flow_failed", event=event.name, event_id=event.pk,
                     error=f"{type(exc).__name__}: {exc}"[:200], **where)


def _wakes(execution, step: dict, contact, event: Event, now) -> bool:
    """Whether this event is the one the waiting ``wait_event`` step awaits."""
    if step.get("filter") and not evaluate(step["filter"], EvalContext(
            contact=contact.as_context(), event=event.payload, now=now)).result:
        return False
    # Not about another order/checkout than the one this journey is for:
    return correlated(step.get("correlate"), event.payload, execution.enrolment.trigger_event.payload)


def _resume_waiting(contact, event: Event, now) -> list[int]:
    """Wake executions of this contact waiting for this event (``wait_event`` steps)."""
    woken = []
    waiting = StepExecution.objects.select_related("enrolment__trigger_event").filter(
        state=StepExecution.State.PENDING, waiting_for=event.name,
        enrolment__contact=contact, enrolment__status=Enrolment.Status.ACTIVE,
    )
    for execution in waiting:
        wakes = False
        with _isolated(contact, event, enrolment_id=execution.enrolment_id, step_id=execution.step_id):
            step = version_definition(execution.enrolment.version_id)["steps"][execution.step_id]
            wakes = _wakes(execution, step, contact, event, now)
        if not wakes:
            continue
        claimed = StepExecution.objects.filter(pk=execution.pk, state=StepExecution.State.PENDING).update(
            state=StepExecution.State.CLAIMED, claimed_at=now, result={"resumed_by": event.pk},
        )
        if claimed:
            woken.append(execution.pk)
    return woken


def process_event(event_id: int) -> list[int]:
    """Process one pending event. Returns claimed executions to run after commit."""
    now = clock.now()
    with transaction.atomic():
        event = Event.objects.select_for_update(skip_locked=True).filter(
            pk=event_id, status=Event.Status.PENDING).first()
        if event is None:
            return []  # processed already, or another worker has it right now
        # A re-delivery of an event already processed and pruned (its key outlives it).
        problem = pruned_duplicate(event.dedupe_key)
        if not problem and resolvers.needs_resolving(event.payload):
            try:
                resolvers.resolve(event)
            except resolvers.Unresolvable as exc:
                problem = f"could not resolve the recorded reference: {exc}"
        problem = problem or shape_problem(event)
        if problem:
            Event.objects.filter(pk=event.pk).update(status=Event.Status.DEAD, error=problem, processed_at=now)
            logger.warning("saleor-flows: event %s (%s) dead-lettered: %s", event.pk, event.name, problem)
            return []
        contact = resolve_contact(event)
        if event.name == "customer_deleted":
            erase_contact(contact)
            Event.objects.filter(pk=event.pk).update(status=Event.Status.PROCESSED, processed_at=now,
                                                     email="", user_id="", payload={})
            return []
        event.contact = contact
        update_profile(contact, event)
        derive(event, contact)
        if event.name == "order_created":
            attribution.record_order(event, contact)

        for enrolment in Enrolment.objects.select_related("trigger_event").filter(
                contact=contact, status=Enrolment.Status.ACTIVE):
            outcome = None
            with _isolated(contact, event, enrolment_id=enrolment.pk):
                outcome = check_exit(enrolment, contact, now)
            if outcome:
                status, detail = outcome
                finish_enrolment(enrolment, status, detail["reason"], now=now,
                                 event=event.name, facts=detail["facts"])

        to_run = _resume_waiting(contact, event, now)
        for flow in Flow.objects.defer("definition").filter(
                status=Flow.Status.LIVE, trigger_event=event.name, live_version__isnull=False):
            first = None
            with _isolated(contact, event, flow=flow.slug), transaction.atomic():  # a savepoint: all or nothing
                first = _enrol(flow, event, contact, now)
            if first:
                to_run.append(first)
        Event.objects.filter(pk=event.pk).update(status=Event.Status.PROCESSED, processed_at=now, contact=contact)
    return to_run


def process_event_and_continue(event_id: int):
    """Process an event, then run the steps it made due at once (the immediate path)."""
    try:
        to_run = process_event(event_id)
    except (OperationalError, InterfaceError):
        raise  # the database is away: the task is retried and the event stays pending
    except Exception as exc:
        # A bug or bad data: never lose the event and never kill the worker.
        logger.exception("saleor-flows: processing event %s failed", event_id)
        Event.objects.filter(pk=event_id, status=Event.Status.PENDING).update(
            status=Event.Status.DEAD, error=f"processing failed: {type(exc).__name__}: {exc}"[:2000],
            processed_at=clock.now())
        return
    run_claimed(to_run)


def process_pending(limit: int) -> int:
    """Process up to ``limit`` pending events, oldest first, with the steps they make due at once.

    The batch entry point a woken worker calls (engine/dispatch.event_recorded):
    no event needs a task of its own. Returns how many events it processed;
    fewer than ``limit`` means none were left (or other workers hold the rest).
    """
    ids = list(Event.objects.filter(status=Event.Status.PENDING).order_by("received_at", "id")
               .values_list("id", flat=True)[:limit])
    for event_id in ids:
        process_event_and_continue(event_id)
    return len(ids)
