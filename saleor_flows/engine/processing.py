"""Processing stored events, in batches: who each is about, what it changes, which journeys it starts or ends.

A batch (``process_pending``, ``process_events``; one event is a batch of one) is one
transaction. Its events are grouped by the people they are about (an email, a user id or a
checkout token in common puts two events in one group) and applied in *waves*: each wave
takes the next event of every group, in (occurred_at, id) order, so a wave holds at most one
event per person and its decisions are independent of each other. A wave does a fixed number
of set-based statements whatever its size: contacts found, created and locked together,
profiles folded in memory and written in one UPDATE, live flows loaded once per batch,
re-entry decided in memory from the enrolments and past entries loaded in one query each,
enrolments, first executions and trail rows written with one multi-row INSERT each (their
unique keys keep them effectively-once: ``ON CONFLICT DO NOTHING``, then only the rows really
written go on), events marked in one UPDATE. The next wave sees what the previous one wrote,
so the events of one person have exactly the outcome they would have one at a time.
Small waves are common (a batch's last waves hold the few people with many events), and they
pay per statement, not per row: what cannot change within a batch (pruned dedupe keys) is asked
once per batch, and a statement that provably has nothing to find (executions waiting for these
events when no active journey of these contacts has a step awaiting them) is not run.

Contacts stay locked until the commit, so that two workers can never both enrol the same
person where the re-entry rule allows one. Steps due at once run right after the commit.

Failures: a bad event (malformed, a duplicate of a pruned one, an unresolvable reference) is
dead-lettered with its reason inside the batch. One whose processing raises rolls the batch
back; the rest of the batch is processed again without its group, and that group one event at
a time, where the failing event is dead-lettered and a failing flow only leaves a
``flow_failed`` row (each flow's decision in a savepoint). The database being away is no
event's fault: the batch rolls back and every event stays pending for the retry or the sweep.
"""

import functools
import logging
import re
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction
from django.db.models import Count, F, IntegerField, Max, Q, Value

from .. import clock
from ..db import DATABASE_AWAY, any_of, fast_timestamps, insert_rows, update_rows
from ..events import valid_email
from ..models import Enrolment, Event, Flow, PastEntry, StepExecution
from . import attribution, recommendations, resolvers, trail
from .conditions import EvalContext, correlated, evaluate
from .contacts import erase_contact, fold_profile, resolve_contacts, save_contacts
from .criteria import check_exit, ends_on_trigger_event
from .definition import version_definition, version_number
from .derived import derive
from .history import DatabaseHistory
from .retention import pruned_duplicates
from .runner import finish_enrolments, plan_step, run_claimed, write_steps

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



# --- entry points ---------------------------------------------------------------------------------

def process_pending(limit: int) -> int:
    """Claim up to ``limit`` pending events (oldest first, ``SKIP LOCKED``), process them in one batch,
    then run the steps they made due at once. Returns how many events were taken (processed or
    dead-lettered); 0 when none was pending or free."""
    count, to_run = _process(lambda: list(Event.objects.select_for_update(skip_locked=True)
                                          .filter(status=Event.Status.PENDING).order_by("received_at")[:limit]))
    run_claimed(to_run)
    return count


def process_events(event_ids: list[int]) -> list[int]:
    """Process these events (those still pending and not taken by another worker) in one batch.

    Returns the executions made due at once (claimed), to run after the commit.
    """
    return _process(lambda: _lock(event_ids))[1]


def process_event(event_id: int) -> list[int]:
    """Process one pending event: a batch of one. Returns claimed executions to run after commit."""
    return process_events([event_id])


def process_event_and_continue(event_id: int):
    """Process an event, then run the steps it made due at once (the immediate path)."""
    run_claimed(process_event(event_id))


def _lock(event_ids) -> list[Event]:
    return list(Event.objects.select_for_update(skip_locked=True)
                .filter(any_of("pk", event_ids), status=Event.Status.PENDING))


# --- failures ---------------------------------------------------------------------------------------

class _EventFailed(Exception):
    """Processing one event raised: the batch is rolled back and retried without the event's group."""

    def __init__(self, event: Event, exc: Exception):
        super().__init__(f"event {event.id} failed: {type(exc).__name__}: {exc}")
        self.event_id, self.error = event.id, exc


@contextmanager
def _blame(event: Event):
    """What raises in this block is this event's fault (a bug, bad data), unless the database is away."""
    try:
        yield
    except (*DATABASE_AWAY, _EventFailed):
        raise
    except Exception as exc:
        raise _EventFailed(event, exc) from exc


def _process(select) -> tuple[int, list[int]]:
    """Run one batch; on a failure, the rest again without the failing event's group, that group one by one."""
    batch = _Batch()
    try:
        with transaction.atomic(), fast_timestamps():
            events = select()
            batch.ids = [event.id for event in events]
            return len(events), (_apply(events, batch) if events else [])
    except DATABASE_AWAY:
        raise  # rolled back: every event stays pending (the task is retried, or the sweep finds them)
    except Exception as exc:  # noqa: BLE001 - a bug or bad data: never lose an event, never kill the worker
        if batch.ids is None:
            raise  # the claim itself failed
        error = exc.error if isinstance(exc, _EventFailed) else exc
        if len(batch.ids) == 1:
            _dead_letter(batch.ids[0], error)
            return 1, []
        # The failing event's group (in order), or, when no event can be blamed, every event in order.
        culprits = batch.groups.get(exc.event_id) if isinstance(exc, _EventFailed) else None
        logger.warning("saleor-flows: a batch of %s events failed (%s: %s); %s", len(batch.ids),
                       type(error).__name__, error, "processing them one by one" if culprits is None
                       else "retrying the rest, then the failing event's group one by one")
        culprits = culprits or batch.order or batch.ids
    blamed = set(culprits)
    rest = [event_id for event_id in batch.ids if event_id not in blamed]
    count, to_run = _process(lambda: _lock(rest)) if rest else (0, [])
    for event_id in culprits:
        one, claimed = _process(lambda event_id=event_id: _lock([event_id]))
        count, to_run = count + one, to_run + claimed
    return count, to_run


def _dead_letter(event_id: int, exc: Exception):
    logger.error("saleor-flows: processing event %s failed", event_id, exc_info=exc)
    Event.objects.filter(pk=event_id, status=Event.Status.PENDING).update(
        status=Event.Status.DEAD, error=f"processing failed: {type(exc).__name__}: {exc}"[:2000],
        processed_at=clock.now())


@contextmanager
def _isolated(contact, event: Event, trail_rows: list, *, savepoint: bool = False, **where):
    """One flow's decision about this event (enrol, exit, wake a wait). If it raises (a bug, a
    stored definition that overflows), the failure is logged and recorded against that flow in the
    contact's trail, and the event goes on to the other flows.

    With ``savepoint`` the block is also rolled back on its own. Without one (a batch of many, where
    a savepoint per flow would cost more than the rest), a database error cannot be recovered from
    inside the transaction: it fails the event, whose group is then retried one event at a time,
    with savepoints. The database being away, or a broken setting, is no flow's fault either.
    """
    try:
        with transaction.atomic() if savepoint else nullcontext():
            yield
    except (*DATABASE_AWAY, ImproperlyConfigured):
        raise
    except Exception as exc:  # noqa: BLE001 - recorded against this flow, logged with its traceback
        if isinstance(exc, DatabaseError) and not savepoint:
            raise
        logger.exception("saleor-flows: a flow failed on event %s (%s): %s", event.id, event.name, where)
        trail_rows.append(trail.entry(contact.id, "flow_failed", event=event.name, event_id=event.id,
                                      error=f"{type(exc).__name__}: {exc}"[:200], **where))


# --- a batch, wave by wave ------------------------------------------------------------------------------

class _Batch:
    """What a failed batch needs to know to retry: its event ids and each event's group."""

    def __init__(self):
        self.ids: list[int] | None = None
        self.order: list[int] = []  # the ids in (occurred_at, id) order
        self.groups: dict[int, list[int]] = {}


def _identity_keys(event: Event) -> list:
    keys = [("email", event.email), ("user", event.user_id)]
    if isinstance(event.payload, dict):
        keys += [("checkout", event.payload.get("token")), ("checkout", event.payload.get("checkout_token"))]
    return [key for key in keys if key[1] and isinstance(key[1], (str, int))]


def _groups(events: list[Event]) -> list[list[Event]]:
    """Events that share an email, a user id or a checkout token, transitively; each in (occurred_at, id) order."""
    parent = {}

    def root(key):
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for event in events:
        keys = [("event", event.id), *_identity_keys(event)]
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    groups = defaultdict(list)
    for event in sorted(events, key=_order):
        groups[root(("event", event.id))].append(event)
    return list(groups.values())


def _order(event: Event):
    return event.occurred_at, event.id


def _apply(events: list[Event], batch: _Batch) -> list[int]:
    """Process locked events wave by wave; returns the executions made due at once."""
    groups = _groups(events)
    batch.order = [event.id for event in sorted(events, key=_order)]
    for group in groups:
        ids = [event.id for event in group]
        for event_id in ids:
            batch.groups[event_id] = ids
    flows = defaultdict(list)  # live flows by trigger event name, once per batch
    for flow in (Flow.objects.defer("definition").filter(
            status=Flow.Status.LIVE, trigger_event__in={event.name for event in events},
            live_version__isnull=False).order_by("id")):
        flows[flow.trigger_event].append(flow)
    # A pruned key was kept before any event that repeats it could be stored (the key is unique among
    # events), so it is known before this batch began: asked once for the batch, not once per wave.
    duplicates = pruned_duplicates([event.dedupe_key for event in events])
    wave_args = {"flows": flows, "single": len(events) == 1, "duplicates": duplicates}
    to_run: list[int] = []
    heads = [0] * len(groups)
    while True:
        wave = sorted((group[head] for group, head in zip(groups, heads) if head < len(group)), key=_order)
        if not wave:
            return to_run
        done, erased = _apply_wave(wave, to_run, **wave_args)
        for index, (group, head) in enumerate(zip(groups, heads)):
            if head < len(group) and group[head].id in done:
                heads[index] += 1
        if erased:  # an erasure clears the identity of that person's other events, pending ones too
            _refresh([event for group, head in zip(groups, heads) for event in group[head:]])


def _refresh(events: list[Event]):
    current = {row["id"]: row for row in Event.objects.filter(any_of("pk", [e.id for e in events])).values(
        "id", "email", "user_id", "payload", "contact_id")}
    for event in events:
        for field, value in current[event.id].items():
            setattr(event, field, value)


def _apply_wave(wave: list[Event], to_run: list[int], *, flows, single, duplicates) -> tuple[set, bool]:
    """One event per person. Returns the ids of the events done (the others are deferred) and
    whether a contact was erased."""
    now = clock.now()
    finished = {}  # event id -> (status, error, contact id)
    trail_rows: list[dict] = []

    # What makes an event unprocessable: found before anything is written.
    live = []
    for event in wave:
        with _blame(event):
            problem = _problem(event, duplicates)
        if problem:
            logger.warning("saleor-flows: event %s (%s) dead-lettered: %s", event.id, event.name, problem)
            finished[event.id] = (Event.Status.DEAD, problem, None)
        else:
            live.append(event)

    # Who each event is about.
    contacts, changed, deferred = resolve_contacts(live)
    deferred = {event.id for event in deferred}
    erased = [event for event in live if event.name == "customer_deleted" and event.id not in deferred]
    for event in erased:
        with _blame(event):
            erase_contact(contacts[event.id])
        finished[event.id] = (Event.Status.PROCESSED, "", None)
        changed.pop(contacts.pop(event.id).id, None)
    live = [event for event in live if event.id in contacts]
    for event in live:
        event.contact = contact = contacts[event.id]
        with _blame(event):
            changed.setdefault(contact.id, set()).update(fold_profile(contact, event))
    saved = [event.contact for event in live if changed.get(event.contact_id)]
    save_contacts(saved, [changed[contact.id] for contact in saved])

    # What the events change besides the profile: derived events, orders.
    derive([(event, event.contact) for event in live])
    orders = [event for event in live if event.name == "order_created"]
    attribution.record_orders([(event, event.contact) for event in orders])
    for event in orders:  # bought-together and best-seller counts (recommendations)
        with _blame(event):
            recommendations.record_order(event)

    # Journeys they end, waits they end, journeys they start.
    if _check_exits(live, now, trail_rows):
        to_run += _resume_waiting(live, now, trail_rows)
    to_run += _enrol(live, flows, now, trail_rows, single=single)
    trail.write(trail_rows)

    for event in live:
        finished[event.id] = (Event.Status.PROCESSED, "", event.contact_id)
    ids = list(finished)
    update_rows(Event, ids, {"status": [finished[i][0] for i in ids], "error": [finished[i][1] for i in ids],
                             "contact_id": [finished[i][2] for i in ids], "processed_at": [now] * len(ids)})
    if erased:  # kept for counts only: no identity, no payload
        Event.objects.filter(pk__in=[event.id for event in erased]).update(email="", user_id="", payload={})
    return set(finished), bool(erased)


def _problem(event: Event, duplicates: set) -> str:
    # A re-delivery of an event already processed and pruned (its key outlives it).
    if event.dedupe_key in duplicates:
        return "duplicate of an event processed earlier and since pruned (its dedupe key is kept)"
    if resolvers.needs_resolving(event.payload):
        try:
            resolvers.resolve(event)
        except resolvers.Unresolvable as exc:
            return f"could not resolve the recorded reference: {exc}"
    return shape_problem(event)


def _check_exits(events: list[Event], now, trail_rows: list) -> bool:
    """The goal and exit criteria of the contacts' active journeys, asked again now.

    Returns whether one of these journeys may be waiting for its contact's event (a ``wait_event``
    step awaiting that name, or a definition that cannot be read): if not, no execution can be woken
    and the caller does not look for one.
    """
    by_contact = {event.contact_id: event for event in events}
    # One query, whole rows, for the journeys that can end or wait for an event; those of versions
    # already known to do neither (their definitions never change) are not loaded.
    enrolments = Enrolment.objects.filter(any_of("contact_id", by_contact), status=Enrolment.Status.ACTIVE)
    if _INERT_VERSIONS:
        enrolments = enrolments.exclude(any_of("version_id", _INERT_VERSIONS))
    enrolments, may_wake = list(enrolments.order_by("id")) if by_contact else [], False
    for enrolment in enrolments:
        waits = _traits(enrolment.version_id)[2]
        may_wake = may_wake or waits is None or by_contact[enrolment.contact_id].name in waits
    enrolments = [enrolment for enrolment in enrolments if _traits(enrolment.version_id)[0]]
    # The events that started them, only for goals and exits that read them (most ask about the contact).
    triggers = [enrolment for enrolment in enrolments if _traits(enrolment.version_id)[1]]
    events = Event.objects.in_bulk([enrolment.trigger_event_id for enrolment in triggers]) if triggers else {}
    for enrolment in triggers:
        enrolment.trigger_event = events[enrolment.trigger_event_id]
    active = defaultdict(list)
    for enrolment in enrolments:
        active[enrolment.contact_id].append(enrolment)
    endings = []
    for contact_id, enrolments in active.items():
        event = by_contact[contact_id]
        with _blame(event):
            for enrolment in enrolments:
                outcome = None
                with _isolated(event.contact, event, trail_rows, enrolment_id=enrolment.id):
                    outcome = check_exit(enrolment, event.contact, now)
                if outcome:
                    status, detail = outcome
                    endings.append((enrolment, status, detail["reason"], {"event": event.name,
                                                                           "facts": detail["facts"]}))
    ended: list[dict] = []
    finish_enrolments(endings, now=now, trail_rows=ended)
    trail_rows[:0] = ended  # ahead of the wave's other rows, where an INSERT of their own put them
    return may_wake


# Versions with neither a goal, an exit nor a wait_event step (ids; a version never changes).
_INERT_VERSIONS: set[int] = set()


def _traits(version_id: int) -> tuple[bool, bool, frozenset | None]:
    """(can its journeys end on a goal or exit, do those read the trigger event, the events its
    ``wait_event`` steps await; None: unknown). A definition that cannot be read counts as doing
    all of it: its enrolments are loaded, so that their check fails in their own flow's name."""
    try:
        return _version_traits(version_id)
    except Exception:  # noqa: BLE001 - not cached: read again next time
        return True, True, None


@functools.lru_cache(maxsize=4096)
def _version_traits(version_id: int) -> tuple[bool, bool, frozenset | None]:
    definition = version_definition(version_id)
    can_end = _or_true(lambda: bool(definition.get("goal") or definition.get("exit")))
    reads = can_end and _or_true(lambda: ends_on_trigger_event(definition))
    try:
        waits = frozenset(step["event"] for step in definition["steps"].values() if step.get("type") == "wait_event")
    except Exception:  # noqa: BLE001 - unknown: executions are looked for as before
        waits = None
    if not can_end and waits == frozenset():
        _INERT_VERSIONS.add(version_id)
    return can_end, reads, waits


def _or_true(question) -> bool:
    try:
        return question()
    except Exception:  # noqa: BLE001 - as if it could: its check then fails in its own flow's name
        return True


def _wakes(execution, step: dict, contact, event: Event, now) -> bool:
    """Whether this event is the one the waiting ``wait_event`` step awaits."""
    if step.get("filter") and not evaluate(step["filter"], EvalContext(
            contact=contact.as_context(), event=event.payload, now=now)).result:
        return False
    # Not about another order/checkout than the one this journey is for:
    return correlated(step.get("correlate"), event.payload, execution.enrolment.trigger_event.payload)


def _resume_waiting(events: list[Event], now, trail_rows: list) -> list[int]:
    """Wake executions of these contacts waiting for these events (``wait_event`` steps)."""
    by_contact = {event.contact_id: event for event in events}
    woken = []
    waiting = StepExecution.objects.select_related("enrolment__trigger_event").filter(
        any_of("enrolment__contact_id", by_contact), state=StepExecution.State.PENDING,
        waiting_for__in={event.name for event in events}, enrolment__status=Enrolment.Status.ACTIVE,
    ).order_by("id")
    for execution in waiting:
        event = by_contact[execution.enrolment.contact_id]
        if execution.waiting_for != event.name:
            continue
        with _blame(event):
            wakes = False
            with _isolated(event.contact, event, trail_rows, enrolment_id=execution.enrolment_id,
                           step_id=execution.step_id):
                step = version_definition(execution.enrolment.version_id)["steps"][execution.step_id]
                wakes = _wakes(execution, step, event.contact, event, now)
            if wakes and StepExecution.objects.filter(pk=execution.id, state=StepExecution.State.PENDING).update(
                    state=StepExecution.State.CLAIMED, claimed_at=now, result={"resumed_by": event.id}):
                woken.append(execution.id)
    return woken


def _past_entries(flow_ids, contact_ids) -> dict:
    """{(flow id, contact id): (entered before, has an active enrolment, latest entry)}: the re-entry facts.

    Enrolments pruned by retention left a PastEntry behind (engine/retention.py): both count.
    """
    facts = {}

    def add(key, active, entered_at):
        _, was_active, latest = facts.get(key, (True, False, None))
        facts[key] = (True, was_active or active, max(filter(None, [latest, entered_at])))

    if not flow_ids or not contact_ids:
        return facts
    enrolled = Enrolment.objects.filter(
        any_of("contact_id", contact_ids), any_of("flow_id", flow_ids)).values("flow_id", "contact_id").annotate(
        active=Count("id", filter=Q(status=Enrolment.Status.ACTIVE)), latest=Max("entered_at")).values_list(
        "flow_id", "contact_id", "active", "latest").order_by()
    pruned = PastEntry.objects.filter(any_of("contact_id", contact_ids), any_of("flow_id", flow_ids)).annotate(
        active=Value(0, output_field=IntegerField()), latest=F("last_entered_at")).values_list(
        "flow_id", "contact_id", "active", "latest").order_by()
    # One statement for both (a wave of a few events pays per statement, not per row).
    for flow_id, contact_id, active, entered_at in enrolled.union(pruned, all=True):
        add((flow_id, contact_id), active > 0, entered_at)
    return facts


def _enrol(events: list[Event], flows: dict, now, trail_rows: list, *, single: bool) -> list[int]:
    """Enrol each contact in the live flows its event triggers, where the entry filter and the
    re-entry rule allow; returns the first executions due at once."""
    matched = [event for event in events if flows.get(event.name)]
    past = _past_entries({flow.id for event in matched for flow in flows[event.name]},
                         [event.contact_id for event in matched])
    entries = []
    for event in matched:
        with _blame(event):
            for flow in flows[event.name]:
                entry = None
                with _isolated(event.contact, event, trail_rows, savepoint=single, flow=flow.slug):
                    entry = _decide(flow, event, now, past.get((flow.id, event.contact_id)), trail_rows)
                if entry:
                    entries.append(entry)
    inserted = insert_rows(Enrolment, [entry["row"] for entry in entries],
                           conflict=["flow_id", "contact_id", "trigger_event_id"],
                           returning="id, flow_id, contact_id, trigger_event_id")
    ids = {tuple(keys): pk for pk, *keys in inserted}
    steps, entered = [], []
    for entry in entries:
        row, flow, event = entry["row"], entry["flow"], entry["event"]
        pk = ids.get((row["flow_id"], row["contact_id"], row["trigger_event_id"]))
        if pk is None:
            continue  # this event enrolled this contact in this flow already
        detail = {"flow": flow.slug, "version": version_number(row["version_id"]), "event": event.name,
                  "event_id": event.id}
        if row["holdout"]:
            # Held out (the flow's holdout group): enrolled and tracked for goals and orders, never sent anything.
            entered.append(trail.entry(row["contact_id"], "held_out", enrolment_id=pk, **detail,
                                       percent=entry["percent"]))
            continue
        entered.append(trail.entry(row["contact_id"], "entered", enrolment_id=pk, **detail))
        entry["step"]["row"]["enrolment_id"] = pk
        steps.append(entry["step"])
    immediate = write_steps(steps, entered)
    # Each journey's rows together (entered, then waiting), as one at a time would write them.
    trail_rows += sorted(entered, key=lambda row: (row["enrolment_id"], row["kind"] == "waiting"))
    return immediate


def _decide(flow: Flow, event: Event, now, past, trail_rows: list) -> dict | None:
    """The enrolment (row, first step planned) if the trigger filter and the re-entry rule allow it."""
    contact = event.contact
    version_id = flow.live_version_id
    definition = version_definition(version_id)
    trigger_filter = definition["trigger"].get("filter")
    if trigger_filter:
        decision = evaluate(trigger_filter, EvalContext(contact=contact.as_context(), event=event.payload, now=now,
                                                        history=DatabaseHistory(contact, flow_id=flow.id, now=now)))
        if not decision.result:
            trail_rows.append(trail.entry(contact.id, "not_entered", flow=flow.slug, event=event.name,
                                          reason="entry filter did not match", facts=decision.facts))
            return None
    entered, active, latest = past or (False, False, None)
    blocked = reentry_reason(definition, now, has_entered=lambda: entered, has_active=lambda: active,
                             entered_since=lambda since: latest is not None and latest > since)
    if blocked:
        trail_rows.append(trail.entry(contact.id, "not_entered", flow=flow.slug, event=event.name, reason=blocked))
        return None
    held_out = attribution.in_holdout(flow.id, contact.id, event.id, definition.get("holdout_percent"))
    return {
        "row": {"flow_id": flow.id, "version_id": version_id, "contact_id": contact.id, "trigger_event_id": event.id,
                "status": Enrolment.Status.ACTIVE, "entered_at": now, "holdout": held_out},
        "flow": flow, "event": event, "percent": definition.get("holdout_percent"),
        # Planned before anything is written: a first step that cannot be planned fails this flow only.
        "step": None if held_out else plan_step(definition, definition["start"], now=now, contact=contact,
                                                event_payload=event.payload),
    }
