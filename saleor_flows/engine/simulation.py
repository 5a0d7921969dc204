"""Dry-run simulation: what a draft would have done over the stored events of the last N days.

The stored events of the window are replayed in time order through the draft,
in memory, with a simulated clock: the same trigger match, entry filter and
re-entry rule as ``processing``, the same due-time functions for waits
(``waits.due_at_for``), the same condition evaluator for splits, branches,
exit and goal, the same deterministic ``pick_variant`` and the same send
blocker as the runner (consent and suppression as they are now). A
``wait_event`` step is resumed by the contact's later stored events within its
timeout, as the engine would have. Steps due after the end of the window are
reported as still waiting.

Nothing is written but the ``Simulation`` row: no enrolment, step, message,
trail entry or contact change (tag/list/field steps change an in-memory copy
of the contact, which later conditions of the same simulation see).

What the simulation knows about a contact (documented in docs/simulation.md):
the profile is the one stored *now*, except the order fields (order_count,
total_spent, first_order_at, last_order_at), which are wound back to the
moment of each decision by subtracting the contact's stored ``order_created``
events after that moment. Consent, suppression, tags and custom fields are
today's. History conditions see stored events up to the moment of the
decision; "messages sent" counts the simulated sends of this flow plus the
real messages of other flows up to that moment.

Collisions are other live flows the contact was in at the moment of entry,
and real messages of other live flows sent to the contact on the same (UTC)
day as a simulated message. Quiet hours and frequency caps are not
simulated; templates are validated but not rendered per contact.
"""

import copy
import heapq
import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from django.db.models import Q

from .. import clock
from ..models import Contact, Enrolment, Event, Flow, Message, Simulation
from .conditions import EvalContext, correlated, evaluate, matches_payload
from .criteria import exit_outcome
from .definition import DefinitionError, validate_definition
from .history import DatabaseHistory
from .processing import reentry_reason
from .definition import WAIT_TYPES
from .runner import send_blocker, pick_variant
from .waits import due_at_for

logger = logging.getLogger(__name__)

UTC = timezone.utc
SAMPLE_SIZE = 20
PROGRESS_EVERY = 500
CHUNK = 2000  # events read (and their contacts loaded) at a time
CHANNELS = {"send_email": "email", "send_sms": "sms", "notify_staff": "staff"}


# --- starting and running ---------------------------------------------------------

def start_simulation(flow: Flow, *, days: int, definition: dict | None = None) -> Simulation:
    """Queue a simulation of ``definition`` (default: the flow's draft) over the last ``days`` days.

    Refuses a draft that would not publish (DefinitionError), since its graph cannot be walked.
    """
    definition = copy.deepcopy(flow.definition if definition is None else definition)
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 366:
        raise ValueError("days: a whole number from 1 to 366")
    errors = validate_definition(definition)
    if errors:
        raise DefinitionError(errors)
    simulation = Simulation.objects.create(flow=flow, definition=definition, days=days, created_at=clock.now())
    from . import dispatch

    dispatch.simulation_queued(simulation.pk)
    if dispatch.mode() == "inline":
        simulation.refresh_from_db()
    return simulation


def run_simulation(simulation_id: int) -> bool:
    """Run a queued simulation once (a task delivered twice finds it taken)."""
    if not Simulation.objects.filter(pk=simulation_id, status=Simulation.Status.QUEUED).update(
            status=Simulation.Status.RUNNING, progress=0.0):
        return False
    simulation = Simulation.objects.select_related("flow").get(pk=simulation_id)
    try:
        result = Replay(simulation).run()
    except Exception as exc:
        logger.exception("saleor-flows: simulation %s failed", simulation_id)
        Simulation.objects.filter(pk=simulation_id).update(
            status=Simulation.Status.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=clock.now())
        return False
    Simulation.objects.filter(pk=simulation_id).update(
        status=Simulation.Status.DONE, progress=1.0, result=result, finished_at=clock.now())
    return True


# --- the replay --------------------------------------------------------------------

@dataclass
class Journey:
    """One simulated enrolment. Its id is the trigger event's: stable, so random splits are too."""

    id: int
    contact: Contact
    trigger: Event
    entered_at: datetime
    active: bool = True
    pending: tuple | None = None  # (step_id, due, ticket) while at a wait
    sent: list = field(default_factory=list)  # times of this journey's simulated sends

    def __post_init__(self):
        self.contact_id = self.contact.pk


class ReplayHistory(DatabaseHistory):
    """History as it stood at the simulated moment: no event from after it, and this flow's sends simulated.

    Events come from the contact's stored events, loaded once per contact
    (``events``: (id, name, occurred_at, payload) in time order), so a
    decision costs no query.
    """

    def __init__(self, contact, *, flow_id, now, events, trigger_event_id=None, simulated_sends=()):
        super().__init__(contact, flow_id=flow_id, now=now, trigger_event_id=trigger_event_id)
        self.events = events
        self.simulated_sends = simulated_sends

    def _events(self):
        return super()._events().filter(occurred_at__lte=self.now)

    def count_events(self, name, since, where):
        return sum(1 for pk, event_name, at, payload in self.events
                   if event_name == name and pk != self.trigger_event_id and at <= self.now
                   and (since is None or at >= since) and matches_payload(where, payload, self.now))

    def count_messages(self, action, since, flow_only):
        if action != "sent":
            # The draft's messages were never sent, so nobody opened them; other flows' engagement is real.
            return 0 if flow_only else super().count_messages(action, since, False)
        simulated = sum(1 for at in self.simulated_sends if since is None or at >= since)
        if flow_only:
            return simulated
        real = Message.objects.filter(contact_id=self.contact.pk, status=Message.Status.SENT, is_test=False,
                                      sent_at__lte=self.now).exclude(flow_id=self.flow_id)
        if since is not None:
            real = real.filter(sent_at__gte=since)
        return simulated + real.count()


class Replay:
    def __init__(self, simulation: Simulation):
        self.simulation = simulation
        self.flow = simulation.flow
        self.definition = copy.deepcopy(simulation.definition)
        self.definition.setdefault("reentry", {"mode": "once"})
        self.definition.setdefault("kind", "marketing")
        self.steps = self.definition["steps"]
        self.end = simulation.created_at
        self.start = self.end - timedelta(days=simulation.days)
        self.queue: list = []  # (due, ticket, journey id)
        self.tickets = 0
        self.journeys: dict[int, Journey] = {}  # the running ones; finished ones stay only in by_contact
        self.by_contact: dict[int, list[Journey]] = defaultdict(list)
        self.contacts: dict[int, Contact] = {}
        self.events: dict[int, list] = {}  # contact id → their stored events (see ReplayHistory)
        self.changes: dict[int, dict] = {}  # contact id → in-memory tags/lists/attributes
        self.other_live = dict(Flow.objects.filter(status=Flow.Status.LIVE).exclude(pk=self.flow.pk)
                               .values_list("pk", "slug"))
        # What the result reports.
        self.scanned = 0
        self.entered, self.entered_contacts, self.sample = 0, set(), []
        self.not_entered = Counter()
        self.reached = Counter()
        self.sent = Counter()
        self.skipped = Counter()
        self.branches: dict[str, Counter] = defaultdict(Counter)
        self.per_day: dict[str, Counter] = defaultdict(Counter)
        self.skips = Counter()
        self.exits = Counter()
        self.collisions: dict[str, Counter] = defaultdict(Counter)

    # -- the clock ------------------------------------------------------------------
    def run(self) -> dict:
        events = Event.objects.filter(status=Event.Status.PROCESSED, contact__isnull=False,
                                      occurred_at__gt=self.start, occurred_at__lte=self.end)
        self.total = events.count()
        chunk = []
        for event in events.order_by("occurred_at", "id").iterator(chunk_size=CHUNK):
            chunk.append(event)
            if len(chunk) == CHUNK:
                self._replay(chunk)
                chunk = []
        self._replay(chunk)
        self._run_due(until=self.end)
        return self._result()

    def _replay(self, chunk: list[Event]):
        trigger = self.definition["trigger"]["event"]
        self._load({event.contact_id for event in chunk if event.name == trigger} - self.contacts.keys())
        for event in chunk:
            self._run_due(until=event.occurred_at)
            self._on_event(event)
            self.scanned += 1
            if self.scanned % PROGRESS_EVERY == 0:
                Simulation.objects.filter(pk=self.simulation.pk).update(
                    progress=round(0.99 * self.scanned / self.total, 4))

    def _run_due(self, *, until):
        while self.queue and self.queue[0][0] <= until:
            due, ticket, journey_id = heapq.heappop(self.queue)
            journey = self.journeys.get(journey_id)
            if journey is None or journey.pending is None or journey.pending[2] != ticket:
                continue  # resumed by an event, or the journey ended meanwhile
            step_id = journey.pending[0]
            journey.pending = None
            step = self.steps[step_id]
            if step["type"] == "wait_event":
                self.branches[step_id]["timeout"] += 1
                self._walk(journey, step["timeout_next"], due)
            else:
                self._walk(journey, step["next"], due)

    def _park(self, journey: Journey, step_id: str, due: datetime):
        self.tickets += 1
        journey.pending = (step_id, due, self.tickets)
        heapq.heappush(self.queue, (due, self.tickets, journey.id))

    # -- events -----------------------------------------------------------------------
    def _on_event(self, event: Event):
        at = event.occurred_at
        for journey in [j for j in self.by_contact.get(event.contact_id, ()) if j.active]:
            outcome = exit_outcome(self.definition, lambda: self._context(journey, at))
            if outcome:
                self._finish(journey, outcome[1]["reason"])
                continue
            if journey.pending and self.steps[journey.pending[0]]["type"] == "wait_event":
                self._maybe_resume(journey, event)
        if event.name == self.definition["trigger"]["event"]:
            self._maybe_enter(event)

    def _maybe_resume(self, journey: Journey, event: Event):
        step_id, due, _ = journey.pending
        step = self.steps[step_id]
        if event.name != step["event"] or event.occurred_at > due:
            return
        if step.get("filter") and not evaluate(step["filter"], EvalContext(
                contact=self._profile(journey.contact, event.occurred_at), event=event.payload,
                now=event.occurred_at)).result:
            return
        if not correlated(step.get("correlate"), event.payload, journey.trigger.payload):
            return
        journey.pending = None
        self.branches[step_id]["event"] += 1
        self._walk(journey, step["next"], event.occurred_at)

    def _maybe_enter(self, event: Event):
        contact = self._contact(event.contact_id)
        at = event.occurred_at
        trigger_filter = self.definition["trigger"].get("filter")
        if trigger_filter and not evaluate(trigger_filter, EvalContext(
                contact=self._profile(contact, at), event=event.payload, now=at,
                history=ReplayHistory(contact, flow_id=self.flow.pk, now=at, events=self.events[contact.pk]))).result:
            self.not_entered["entry filter did not match"] += 1
            self._forget(contact.pk)
            return
        previous = self.by_contact.get(contact.pk, [])
        blocked = reentry_reason(
            self.definition, at, has_entered=lambda: bool(previous),
            has_active=lambda: any(j.active for j in previous),
            entered_since=lambda since: any(j.entered_at > since for j in previous))
        if blocked:
            self.not_entered[blocked] += 1
            self._forget(contact.pk)
            return
        journey = Journey(id=event.pk, contact=contact, trigger=event, entered_at=at)
        self.journeys[journey.id] = journey
        self.by_contact[contact.pk].append(journey)
        self.entered += 1
        self.entered_contacts.add(contact.pk)
        if len(self.sample) < SAMPLE_SIZE:
            self.sample.append({"contact_id": contact.pk, "email": contact.email or "", "entered_at": at.isoformat()})
        for slug in self._active_elsewhere(contact, at):
            self.collisions[slug]["active_at_entry"] += 1
        self._walk(journey, self.definition["start"], at)

    # -- walking the graph ------------------------------------------------------------------
    def _walk(self, journey: Journey, step_id, at: datetime):
        """Run steps from ``step_id`` until the journey waits or ends (as the runner's chain does)."""
        while journey.active:
            if step_id is None:
                self._finish(journey, "completed")
                return
            step = self.steps[step_id]
            kind = step["type"]
            self.reached[step_id] += 1
            if kind in WAIT_TYPES:
                due = due_at_for(step, now=at, contact=self._profile(journey.contact, at),
                                 event_payload=journey.trigger.payload, contact_id=journey.contact_id)
                if kind == "wait_event" or due > at:
                    self._park(journey, step_id, due)
                    return
                step_id = step["next"]
            elif kind == "split":
                branch = "yes" if evaluate(step["condition"], self._context(journey, at)).result else "no"
                self.branches[step_id][branch] += 1
                step_id = step[branch]
            elif kind == "branch":
                context = self._context(journey, at)
                index = next((i for i, option in enumerate(step["branches"])
                              if evaluate(option["condition"], context).result), None)
                self.branches[step_id]["else" if index is None else str(index)] += 1
                step_id = step["else"] if index is None else step["branches"][index]["next"]
            elif kind == "random_split":
                variant = pick_variant(journey.id, step_id, step["variants"])
                self.branches[step_id][variant["name"]] += 1
                step_id = variant["next"]
            elif kind in ("add_tag", "remove_tag", "add_to_list", "remove_from_list", "set_field"):
                self._change_contact(journey.contact, step)
                step_id = step["next"]
            elif kind == "exit":
                self._finish(journey, "exit_step")
            elif kind in CHANNELS:
                if not self._send(journey, step_id, step, at):
                    return
                step_id = step["next"]
            else:  # webhook: counted as reached; nothing is called
                step_id = step["next"]

    def _send(self, journey: Journey, step_id: str, step: dict, at: datetime) -> bool:
        """The runner's checks before a send, then count it. False if the journey ended here."""
        outcome = exit_outcome(self.definition, lambda: self._context(journey, at))
        if outcome:
            self._finish(journey, outcome[1]["reason"])
            return False
        trigger_filter = self.definition["trigger"].get("filter")
        if trigger_filter and step["type"] != "notify_staff" and not evaluate(
                trigger_filter, self._context(journey, at)).result:
            self._finish(journey, "filter_no_longer_matches")
            return False
        blocker, _basis = send_blocker(step, self.definition, self._contact_now(journey.contact),
                                       journey.trigger.channel)
        if blocker:
            self.skips[blocker] += 1
            self.skipped[step_id] += 1
            return True
        channel = CHANNELS[step["type"]]
        self.sent[step_id] += 1
        self.per_day[at.astimezone(UTC).date().isoformat()][channel] += 1
        if channel != "staff":
            journey.sent.append(at)
            for slug in self._messaged_elsewhere(journey.contact, at):
                self.collisions[slug]["same_day_message"] += 1
        return True

    def _finish(self, journey: Journey, reason: str):
        journey.active, journey.pending = False, None
        self.exits[reason] += 1
        # What re-entry and "messages sent" still need of it is its dates: memory follows the running journeys.
        journey.contact = journey.trigger = None
        self.journeys.pop(journey.id, None)
        self._forget(journey.contact_id)

    # -- the contact as it was ----------------------------------------------------------------
    def _contact(self, contact_id: int) -> Contact:
        """The stored contact and their stored events up to the end (kept while they have a journey running)."""
        if contact_id not in self.contacts:
            self._load({contact_id})
        return self.contacts[contact_id]

    def _load(self, contact_ids: set):
        """Contacts and their events in two queries for a chunk of events, not two per contact."""
        if not contact_ids:
            return
        self.contacts.update(Contact.objects.in_bulk(contact_ids))
        for contact_id in contact_ids:
            self.events[contact_id] = []
        for contact_id, *row in Event.objects.filter(contact_id__in=contact_ids, occurred_at__lte=self.end).exclude(
                status=Event.Status.DEAD).order_by("occurred_at", "id").values_list(
                "contact_id", "pk", "name", "occurred_at", "payload"):
            self.events[contact_id].append(tuple(row))

    def _orders_after(self, contact: Contact, at: datetime) -> list:
        return [(when, _amount(payload)) for _, name, when, payload in self.events[contact.pk]
                if name == "order_created" and when > at]

    def _forget(self, contact_id: int):
        """Drop a contact's cached rows once none of their journeys runs: memory follows the active journeys."""
        if not any(j.active for j in self.by_contact.get(contact_id, ())):
            self.contacts.pop(contact_id, None)
            self.events.pop(contact_id, None)

    def _contact_now(self, contact: Contact) -> Contact:
        """The stored contact with this simulation's tag/list/field changes (a copy: nothing is saved)."""
        changes = self.changes.get(contact.pk)
        if not changes:
            return contact
        changed = copy.copy(contact)
        for name, value in changes.items():
            setattr(changed, name, value)
        return changed

    def _profile(self, contact: Contact, at: datetime) -> dict:
        """What conditions see at ``at``: today's profile with the order fields wound back to ``at``."""
        data = self._contact_now(contact).as_context()
        later = self._orders_after(contact, at)
        if later:
            count = max(0, contact.order_count - len(later))
            earlier = [when for _, name, when, _ in self.events[contact.pk] if name == "order_created" and when <= at]
            data["order_count"] = count
            data["total_spent"] = max(0.0, float(contact.total_spent - sum(amount for _, amount in later)))
            if not count:
                data["first_order_at"] = data["last_order_at"] = None
            else:
                # Orders older than the stored events: the first is known, the last is not (the first stands in).
                first = contact.first_order_at
                data["first_order_at"] = first if first and first <= at else min(earlier, default=None)
                data["last_order_at"] = max(earlier) if earlier else data["first_order_at"]
        return data

    def _context(self, journey: Journey, at: datetime) -> EvalContext:
        """As ``criteria.journey_context``, at the simulated moment."""
        return EvalContext(
            contact=self._profile(journey.contact, at), event=journey.trigger.payload, now=at,
            entered_at=journey.entered_at, triggered_at=journey.trigger.occurred_at,
            history=ReplayHistory(journey.contact, flow_id=self.flow.pk, now=at, trigger_event_id=journey.trigger.pk,
                                  events=self.events[journey.contact.pk],
                                  simulated_sends=[t for j in self.by_contact[journey.contact.pk] for t in j.sent]),
        )

    def _change_contact(self, contact: Contact, step: dict):
        kind = step["type"]
        changes = self.changes.setdefault(contact.pk, {})
        if kind == "set_field":
            attributes = dict(changes.get("attributes", contact.attributes))
            if step["value"] is None:
                attributes.pop(step["field"], None)
            else:
                attributes[step["field"]] = step["value"]
            changes["attributes"] = attributes
            return
        name, value = ("tags", step["tag"]) if kind.endswith("tag") else ("lists", step["list"])
        values = list(changes.get(name, getattr(contact, name)))
        if kind.startswith("add") and value not in values:
            values.append(value)
        elif kind.startswith("remove") and value in values:
            values.remove(value)
        changes[name] = values

    # -- other flows ------------------------------------------------------------------------------
    def _active_elsewhere(self, contact: Contact, at: datetime) -> list[str]:
        if not self.other_live:
            return []
        flow_ids = set(Enrolment.objects.filter(
            contact_id=contact.pk, flow_id__in=self.other_live, entered_at__lte=at,
        ).filter(Q(finished_at__isnull=True) | Q(finished_at__gt=at)).values_list("flow_id", flat=True))
        return sorted(self.other_live[pk] for pk in flow_ids)

    def _messaged_elsewhere(self, contact: Contact, at: datetime) -> list[str]:
        if not self.other_live:
            return []
        day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        flow_ids = set(Message.objects.filter(
            contact_id=contact.pk, flow_id__in=self.other_live, is_test=False,
            created_at__gte=day, created_at__lt=day + timedelta(days=1)).values_list("flow_id", flat=True))
        return sorted(self.other_live[pk] for pk in flow_ids)

    # -- the report ---------------------------------------------------------------------------------
    def _result(self) -> dict:
        waiting = Counter(j.pending[0] for j in self.journeys.values() if j.pending)
        steps = {}
        for step_id, step in self.steps.items():
            row = {"type": step["type"], "reached": self.reached[step_id]}
            if step["type"] in CHANNELS:
                row.update(sent=self.sent[step_id], skipped=self.skipped[step_id])
            if step["type"] in WAIT_TYPES:
                row["waiting_at_end"] = waiting[step_id]
            steps[step_id] = row
        totals = Counter()
        for counts in self.per_day.values():
            totals.update(counts)
        return {
            "window": {"from": self.start.isoformat(), "to": self.end.isoformat(), "days": self.simulation.days},
            "events_scanned": self.scanned,
            "entered": {
                "count": self.entered,
                "contacts": len(self.entered_contacts),
                "sample": self.sample,
            },
            "not_entered": dict(self.not_entered),
            "steps": steps,
            "branches": {step_id: dict(counts) for step_id, counts in self.branches.items()},
            "messages": dict(totals),
            "messages_per_day": {day: dict(self.per_day[day]) for day in sorted(self.per_day)},
            "skips": dict(self.skips),
            "exits": dict(self.exits),
            "active_at_end": len(self.journeys),
            "collisions": {slug: dict(counts) for slug, counts in sorted(self.collisions.items())},
        }


def _amount(payload) -> Decimal:
    try:
        return Decimal(str((payload or {}).get("total_gross_amount") or 0))
    except ArithmeticError:
        return Decimal(0)
