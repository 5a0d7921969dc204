"""Running step executions: the state machine of a journey.

An execution moves ``pending → claimed → (sending →) sent | done | skipped |
failed | ambiguous``, always by a conditional UPDATE that names the state it
expects, so a task delivered twice, or two sweeps racing, find nothing left
to do the second time. For sends the ``sending`` state (and the Message row)
is committed before the provider is called; if the worker dies there, the
sweep marks the send ambiguous instead of sending it again.

Steps due at once run in a chain in the same task; a wait ends the chain and
leaves a pending row with its due time for the sweep. A task's send steps go
out together, window by window over one open connection (``_send_chunk``),
with every re-check still made under each contact's lock and each message's
own outcome recorded.
"""

import hashlib
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.db.models import F
from django.utils.dateparse import parse_datetime

from .. import clock
from ..channels import delivery, staff, webhook
from ..conf import flows_setting
from ..db import DATABASE_AWAY, drop_broken_connection, insert_rows
from ..models import Contact, Enrolment, Message, StepExecution
from ..phone import to_e164
from . import gate, holds, recommendations, suppression, trail
from .conditions import evaluate
from .consent import marketing_basis
from .criteria import check_exit, journey_context
from .history import SharedEvents
from .definition import WAIT_TYPES, message_kind, version_definition
from .waits import due_at_for

logger = logging.getLogger(__name__)

State = StepExecution.State
PAUSED_RECHECK = timedelta(minutes=15)
SEND_RETRIES = 3
SEND_BACKOFF_SECONDS = 60
MAX_CHAIN = 1000  # a published graph is acyclic with at most 500 steps
RECORD_RETRY_PAUSES = (0.5, 1, 2, 4, 8)  # seconds, while recording a provider's answer rides out a restart


# --- scheduling and finishing -------------------------------------------------

def plan_step(definition: dict, step_id: str, *, now, contact: Contact, event_payload) -> dict:
    """The execution row of ``step_id`` for this contact (no enrolment id yet), and its trail detail.

    Computed before anything is written, so that a step that cannot be planned (a stored
    definition that overflows) fails its flow's decision, not a batch's INSERT.
    """
    step = definition["steps"][step_id]
    kind = step["type"]
    due, why = now, {}
    if kind in WAIT_TYPES:
        due = due_at_for(step, now=now, contact=contact.as_context(), event_payload=event_payload,
                         contact_id=contact.pk, explain=why)
    immediate = due <= now and kind != "wait_event"
    row = {"step_id": step_id, "occurrence": 1, "state": State.CLAIMED if immediate else State.PENDING,
           "due_at": due, "waiting_for": step["event"] if kind == "wait_event" else "", "attempts": 0,
           "claimed_at": now if immediate else None, "result": {}}
    waiting = None
    if kind in WAIT_TYPES and not immediate:
        waiting = {"until": due, **why}
        if kind == "wait_event":
            waiting["event"] = step["event"]
    return {"row": row, "contact_id": contact.pk, "waiting": waiting}


def write_steps(planned: list[dict], trail_rows: list[dict]) -> list[int]:
    """INSERT planned executions (``enrolment_id`` set) in one statement; returns those due at once.

    The unique (enrolment, step, occurrence) key turns a step that exists already into nothing:
    never twice. A ``waiting`` trail row is added to ``trail_rows`` for each wait written.
    """
    inserted = insert_rows(StepExecution, [p["row"] for p in planned],
                           conflict=["enrolment_id", "step_id", "occurrence"], returning="id, enrolment_id, step_id")
    ids = {(enrolment_id, step_id): pk for pk, enrolment_id, step_id in inserted}
    immediate = []
    for plan in planned:
        row = plan["row"]
        pk = plan["id"] = ids.get((row["enrolment_id"], row["step_id"]))
        if pk is None:
            continue  # this step of this journey exists already
        if row["state"] == State.CLAIMED:
            immediate.append(pk)
        elif plan["waiting"] is not None:
            trail_rows.append(trail.entry(plan["contact_id"], "waiting", enrolment_id=row["enrolment_id"],
                                          step_id=row["step_id"], **plan["waiting"]))
    return immediate


def schedule_step(enrolment: Enrolment, step_id: str, *, now, contact: Contact) -> int | None:
    """Create the execution of ``step_id``. Returns its id when it is due at once (already claimed)."""
    return schedule_steps([(enrolment, step_id, now, contact)])[0]


def schedule_steps(moves) -> list[int | None]:
    """``schedule_step`` for many journeys, ``(enrolment, step_id, now, contact)`` each: one INSERT, one for the trail.

    Returns, for each move, the new execution's id when it is due at once (already claimed), else None.
    """
    planned = []
    for enrolment, step_id, now, contact in moves:
        plan = plan_step(version_definition(enrolment.version_id), step_id, now=now, contact=contact,
                         event_payload=enrolment.trigger_event.payload)
        plan["row"]["enrolment_id"] = enrolment.pk
        planned.append(plan)
    trail_rows: list[dict] = []
    write_steps(planned, trail_rows)
    trail.write(trail_rows)
    return [plan.get("id") if plan["row"]["state"] == State.CLAIMED else None for plan in planned]


def finish_enrolment(enrolment: Enrolment, status: str, reason: str, *, now, **detail) -> bool:
    """End a journey once: later steps are skipped with the reason."""
    return bool(finish_enrolments([(enrolment, status, reason, detail)], now=now))


def finish_enrolments(endings: list[tuple], *, now, trail_rows: list | None = None) -> list[Enrolment]:
    """End journeys once, a few statements for all: ``(enrolment, status, reason, trail detail)`` each.

    Each enrolment is ended only if it is still active (a conditional UPDATE); its pending or
    claimed steps are skipped with the reason. Returns the enrolments this call ended. Their trail
    rows are written here, or, given ``trail_rows``, added to it for a caller that writes its own
    rows in one INSERT anyway (a batch's wave).
    """
    by_outcome = {}
    for enrolment, status, reason, detail in endings:
        by_outcome.setdefault((status, reason), []).append((enrolment, detail))
    ended, rows = [], []
    for (status, reason), items in by_outcome.items():
        updated = _end_active([enrolment.pk for enrolment, _ in items], status, reason, now)
        done = [(enrolment, detail) for enrolment, detail in items if enrolment.pk in updated]
        if not done:
            continue
        StepExecution.objects.filter(enrolment_id__in=[e.pk for e, _ in done],
                                     state__in=[State.PENDING, State.CLAIMED]).update(
            state=State.SKIPPED, finished_at=now, result={"reason": reason})
        for enrolment, detail in done:
            enrolment.status, enrolment.exit_reason, enrolment.finished_at = status, reason, now
            rows.append(trail.entry(enrolment.contact_id, status, enrolment_id=enrolment.pk, reason=reason, **detail))
            ended.append(enrolment)
    if trail_rows is None:
        trail.write(rows)
    else:
        trail_rows += rows
    return ended


def _end_active(enrolment_ids: list[int], status: str, reason: str, now) -> set[int]:
    """UPDATE … WHERE status = 'active' … RETURNING id: the enrolments this statement ended."""
    table = connection.ops.quote_name(Enrolment._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET status = %s, exit_reason = %s, finished_at = %s"
                       f" WHERE status = %s AND id IN ({', '.join(['%s'] * len(enrolment_ids))}) RETURNING id",
                       [status, reason, now, Enrolment.Status.ACTIVE, *enrolment_ids])
        return {row[0] for row in cursor.fetchall()}


def advance(enrolment: Enrolment, next_step: str | None, *, now, contact: Contact) -> int | None:
    return advance_all([(enrolment, next_step, now, contact)])[0]


def advance_all(moves) -> list[int | None]:
    """``advance`` for many journeys, ``(enrolment, next_step, now, contact)`` each: the next steps in one INSERT."""
    results: list[int | None] = [None] * len(moves)
    going_on = [index for index, (_, next_step, _, _) in enumerate(moves) if next_step is not None]
    for enrolment, next_step, now, _ in moves:
        if next_step is None:
            finish_enrolment(enrolment, Enrolment.Status.COMPLETED, "completed", now=now)
    if going_on:
        for index, execution_id in zip(going_on, schedule_steps([moves[i] for i in going_on])):
            results[index] = execution_id
    return results


def _close(execution, from_states, state, *, now, result, next_step, contact, trail_kind=None, **detail):
    """Move an execution to its final state and schedule the next step, in one transaction."""
    with transaction.atomic():
        updated = StepExecution.objects.filter(pk=execution.pk, state__in=from_states).update(
            state=state, finished_at=now, result=result)
        if not updated:
            return None
        if trail_kind:
            trail.record(contact.pk, trail_kind, enrolment_id=execution.enrolment_id,
                         step_id=execution.step_id, **detail)
        return advance(execution.enrolment, next_step, now=now, contact=contact)


# --- running -------------------------------------------------------------------

class Interrupted(Exception):
    """The database went away in the middle of a batch: ``remaining`` are still claimed and need running.

    They include a step that an earlier one made due at once, which no retry
    of the original ids would find (tasks.py retries with these).
    """

    def __init__(self, remaining: list[int]):
        super().__init__(f"the database went away; {len(remaining)} claimed executions left to run")
        self.remaining = remaining


def take(execution_ids, now=None) -> int:
    """Executions the sweep leased (``sweep.claim_due``): ``pending -> claimed``, in one statement.

    Conditional like every state change: only those still pending and due are taken, so one
    cancelled, held to a later time, woken by its event or taken by another worker (a lease
    that ran out while this task waited) is left alone, and each execution is taken once.
    Taking removes the rows from the due queue (its trigger). Ids already claimed (steps made
    due at once, an interrupted task's retry) are not touched. Returns how many it took.
    """
    now = now or clock.now()
    return StepExecution.objects.filter(pk__in=execution_ids, state=State.PENDING, due_at__lte=now).update(
        state=State.CLAIMED, claimed_at=now)


def run_claimed(execution_ids):
    """Take the leased executions (``take``), then run the claimed ones, then the steps they make due at once, round after round.

    In each round the send steps go out together (``_send_chunk``: a few
    statements per window of sends, one open connection); other steps run
    one by one.
    """
    try:
        take(execution_ids)
    except DATABASE_AWAY as exc:
        drop_broken_connection()
        raise Interrupted(list(execution_ids)) from exc
    todo, rounds = list(execution_ids), 0
    while todo and rounds < MAX_CHAIN:
        todo = _run_round(todo)
        rounds += 1


def _run_round(execution_ids: list[int]) -> list[int]:
    """Run ``execution_ids`` once; returns the executions they made due at once (already claimed)."""
    next_ids: list[int] = []
    loaded = _load(execution_ids)
    # Under a shop-wide hold (holds.py) every step takes execute()'s path, which puts it back to wait.
    sends = [] if holds.sending_held() else [
        loaded[i] for i in execution_ids if i in loaded and _sends_together(loaded[i])]
    if sends:
        try:
            _send_chunk(sends, next_ids)
        except DATABASE_AWAY as exc:
            # Running them all again is safe: each state change names the state it expects.
            drop_broken_connection()
            raise Interrupted([*next_ids, *execution_ids]) from exc
    together = {execution.pk for execution in sends}
    for index, execution_id in enumerate(execution_ids):
        if execution_id in together:
            continue
        try:
            next_id = execute(execution_id)
        except DATABASE_AWAY as exc:
            # Not this journey's fault: stop, drop the dead connection, let the task try again.
            drop_broken_connection()
            raise Interrupted([*next_ids, *execution_ids[index:]]) from exc
        except Exception as exc:  # noqa: BLE001 - one step's failure never takes the others down
            _step_raised(execution_id, exc)
            continue
        if next_id is not None:
            next_ids.append(next_id)
    return next_ids


def _step_raised(execution_id: int, exc: Exception):
    """A step raised something other than the database going away."""
    logger.error("saleor-flows: step execution %s failed", execution_id, exc_info=exc)
    if isinstance(exc, ImproperlyConfigured):
        # A broken setting (the operator fixes it): the execution stays claimed and the
        # sweep hands it out again after the lease, so nothing is lost.
        return
    # A bug, or a stored definition that cannot run: retrying would fail the same way
    # forever. The step fails with the reason and the journey ends; the others go on.
    _fail_unexpectedly(execution_id, exc)


def _load(execution_ids) -> dict:
    """The executions with their enrolment, flow, contact and trigger event, in one query."""
    return StepExecution.objects.select_related(
        "enrolment__flow", "enrolment__contact", "enrolment__trigger_event",
    ).defer("enrolment__flow__definition").in_bulk(list(execution_ids))


def _sends_together(execution) -> bool:
    """A claimed send step of a running journey (anything else takes ``execute()``'s one-by-one path)."""
    enrolment = execution.enrolment
    return (execution.state == State.CLAIMED and enrolment.status == Enrolment.Status.ACTIVE
            and enrolment.flow.status not in (enrolment.flow.Status.PAUSED, enrolment.flow.Status.ARCHIVED)
            and version_definition(enrolment.version_id)["steps"][execution.step_id]["type"] in SEND_STEPS)


def _fail_unexpectedly(execution_id: int, exc: Exception):
    """A claimed execution whose step raised: failed (never left claimed), recorded in the trail, journey ended."""
    error = f"{type(exc).__name__}: {exc}"[:500]
    now = clock.now()
    try:
        with transaction.atomic():
            execution = StepExecution.objects.select_related("enrolment").filter(pk=execution_id).first()
            if execution is None or not StepExecution.objects.filter(
                    pk=execution_id, state=State.CLAIMED).update(state=State.FAILED, finished_at=now,
                                                                 result={"error": error, "unexpected": True}):
                return  # it moved on meanwhile (e.g. to `sending`, which the sweep resolves)
            trail.record(execution.enrolment.contact_id, "failed", enrolment_id=execution.enrolment_id,
                         step_id=execution.step_id, error=error[:200])
            finish_enrolment(execution.enrolment, Enrolment.Status.EXITED, "step_failed", now=now,
                             step=execution.step_id)
    except Exception:  # noqa: BLE001 - the lease then releases it, as before
        logger.exception("saleor-flows: could not mark step execution %s failed", execution_id)


def execute(execution_id: int) -> int | None:
    """Run one claimed execution; returns the next claimed execution, if one is due at once."""
    execution = _load([execution_id]).get(execution_id)
    if execution is None or execution.state != State.CLAIMED:
        return None  # someone else ran it (a task delivered twice, a racing sweep)
    now = clock.now()
    enrolment, flow = execution.enrolment, execution.enrolment.flow
    if enrolment.status != Enrolment.Status.ACTIVE:
        StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(
            state=State.SKIPPED, finished_at=now, result={"reason": "enrolment_finished"})
        return None
    if flow.status == flow.Status.PAUSED or holds.sending_held():
        # Paused flows (and a shop-wide hold, e.g. the Saleor App uninstalled) keep their contacts where
        # they are; look again later.
        StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(
            state=State.PENDING, due_at=now + PAUSED_RECHECK, claimed_at=None)
        return None
    if flow.status == flow.Status.ARCHIVED:
        with transaction.atomic():
            finish_enrolment(enrolment, Enrolment.Status.EXITED, "flow_archived", now=now)
        return None
    step = version_definition(enrolment.version_id)["steps"][execution.step_id]
    handler = HANDLERS[step["type"]]
    return handler(execution, step, now=now, contact=enrolment.contact)


# --- steps that send nothing ------------------------------------------------------

def _run_wait(execution, step, *, now, contact):
    return _close(execution, [State.CLAIMED], State.DONE, now=now, result={}, next_step=step["next"], contact=contact)


def _run_wait_event(execution, step, *, now, contact):
    resumed_by = (execution.result or {}).get("resumed_by")
    if resumed_by:
        return _close(execution, [State.CLAIMED], State.DONE, now=now, result={"branch": "event", "event_id": resumed_by},
                      next_step=step["next"], contact=contact, trail_kind="event_arrived",
                      event=step["event"], event_id=resumed_by)
    return _close(execution, [State.CLAIMED], State.DONE, now=now, result={"branch": "timeout"},
                  next_step=step["timeout_next"], contact=contact, trail_kind="wait_timed_out", event=step["event"])


def _run_split(execution, step, *, now, contact):
    decision = evaluate(step["condition"], journey_context(execution.enrolment, contact, now))
    branch = "yes" if decision.result else "no"
    return _close(execution, [State.CLAIMED], State.DONE, now=now, result={"branch": branch},
                  next_step=step[branch], contact=contact, trail_kind="branch", branch=branch, facts=decision.facts)


def _run_branch(execution, step, *, now, contact):
    context = journey_context(execution.enrolment, contact, now)
    facts = {}
    for index, option in enumerate(step["branches"]):
        decision = evaluate(option["condition"], context)
        facts.update(decision.facts)
        if decision.result:
            return _close(execution, [State.CLAIMED], State.DONE, now=now, result={"branch": index},
                          next_step=option["next"], contact=contact, trail_kind="branch", branch=index, facts=facts)
    return _close(execution, [State.CLAIMED], State.DONE, now=now, result={"branch": "else"},
                  next_step=step["else"], contact=contact, trail_kind="branch", branch="else", facts=facts)


def pick_variant(enrolment_id: int, step_id: str, variants: list[dict]) -> dict:
    """A weighted choice that is stable for an enrolment (a re-run picks the same variant)."""
    digest = hashlib.sha256(f"{enrolment_id}:{step_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64 * sum(v["weight"] for v in variants)
    for variant in variants:
        point -= variant["weight"]
        if point < 0:
            return variant
    return variants[-1]


def _run_random_split(execution, step, *, now, contact):
    from .analytics import split_winner

    winner = split_winner(execution.enrolment.version_id, execution.step_id) if step.get("auto_winner") else None
    variant = next((v for v in step["variants"] if v["name"] == winner), None)
    if variant is not None:  # the experiment has decided: everyone new takes the winner
        return _close(execution, [State.CLAIMED], State.DONE, now=now, result={"variant": variant["name"]},
                      next_step=variant["next"], contact=contact, trail_kind="branch", variant=variant["name"],
                      reason="winner chosen")
    variant = pick_variant(execution.enrolment_id, execution.step_id, step["variants"])
    return _close(execution, [State.CLAIMED], State.DONE, now=now, result={"variant": variant["name"]},
                  next_step=variant["next"], contact=contact, trail_kind="branch", variant=variant["name"])


def _run_contact_change(execution, step, *, now, contact):
    """Tags, lists and custom fields: changed under the contact's lock, with the step, atomically."""
    kind = step["type"]
    with transaction.atomic():
        if not StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(
                state=State.DONE, finished_at=now):
            return None
        fresh = Contact.objects.select_for_update().get(pk=contact.pk)
        if kind in ("add_tag", "remove_tag", "add_to_list", "remove_from_list"):
            field, value = ("tags", step["tag"]) if kind.endswith("tag") else ("lists", step["list"])
            values = list(getattr(fresh, field))
            if kind.startswith("add") and value not in values:
                values.append(value)
            elif kind.startswith("remove") and value in values:
                values.remove(value)
            setattr(fresh, field, values)
            fresh.updated_at = now
            fresh.save(update_fields=[field, "updated_at"])
            detail = {field[:-1]: value}
        else:  # set_field
            if step["value"] is None:
                fresh.attributes.pop(step["field"], None)
            else:
                fresh.attributes[step["field"]] = step["value"]
            fresh.updated_at = now
            fresh.save(update_fields=["attributes", "updated_at"])
            detail = {"field": step["field"], "value": step["value"]}
        trail.record(contact.pk, kind, enrolment_id=execution.enrolment_id, step_id=execution.step_id, **detail)
        return advance(execution.enrolment, step["next"], now=now, contact=fresh)


def _run_exit(execution, step, *, now, contact):
    with transaction.atomic():
        if StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(state=State.DONE, finished_at=now):
            finish_enrolment(execution.enrolment, Enrolment.Status.EXITED, "exit_step", now=now, step=execution.step_id)
    return None


# --- steps that talk to the outside world ------------------------------------------

def send_blocker(step, definition, contact, saleor_channel: str = "") -> tuple[str, str]:
    """``(why this contact must not get this message now, "")``, or ``("", basis)`` when it may go.

    The basis is the consent rule that allows a marketing message (``marketing_basis``: consent,
    soft_opt_in, opt_out), "" for other kinds; the send records it for the trail and the reports.
    No side effects: the simulation asks it too.
    """
    kind = step["type"]
    marketing = message_kind(step, definition) == "marketing"
    if kind == "notify_staff":  # publishing checked this too; someone may have left the staff since
        outsiders = staff.not_staff(step["to"])
        return (f"not a staff address ({', '.join(outsiders)})" if outsiders else ""), ""
    channel = "email" if kind == "send_email" else "sms"
    if channel == "email" and not contact.email:
        return "no email address", ""
    if channel == "sms" and not contact.phone:
        return "no phone number", ""
    phone = ""
    if channel == "sms":
        try:  # suppressions (STOP) are kept by E.164 number, as providers report them
            phone = to_e164(contact.phone, flows_setting("PHONE_REGION"))
        except ValueError:
            return "invalid phone number", ""
    reason = (contact.suppressed_reason or "no reason given") if contact.suppressed and channel == "email" else (
        suppression.reason_for("sms", phone) if channel == "sms" else None)
    if suppression.blocks(channel, reason, marketing=marketing):
        return f"suppressed ({reason})", ""
    if marketing:
        basis, why_not = marketing_basis(contact, channel, saleor_channel)
        return why_not, basis
    return "", ""


def _retry_or_fail(execution, message_id, *, now, error, max_attempts, backoff_seconds, contact, next_step):
    """After a failed hand-off: try again later (the database is the clock), or give up and go on."""
    with transaction.atomic():
        attempts = execution.attempts + 1
        if message_id:
            Message.objects.filter(pk=message_id).update(status=Message.Status.FAILED, error=error[:2000])
        if attempts < max_attempts:
            retry_at = now + timedelta(seconds=backoff_seconds * 2 ** (attempts - 1))
            StepExecution.objects.filter(pk=execution.pk, state=State.SENDING).update(
                state=State.PENDING, due_at=retry_at, claimed_at=None, result={"last_error": error[:500]})
            trail.record(contact.pk, "retry_scheduled", enrolment_id=execution.enrolment_id,
                         step_id=execution.step_id, attempt=attempts, at=retry_at, error=error[:200])
            return None
    return _close(execution, [State.SENDING], State.FAILED, now=now, result={"error": error[:500]},
                  next_step=next_step, contact=contact, trail_kind="failed", error=error[:200], attempts=attempts)


_GO = object()


def _hold(execution, step, definition, contact, *, now, recent=None):
    """Frequency cap, quiet hours, the contact's preferences (engine/gate.py): go, defer or drop.

    A deferral puts the execution back to pending with a new due time (the
    database is the clock) without counting an attempt; ``held_since``
    remembers when it was first due, so staleness is measured from there.
    """
    result = execution.result or {}
    held_since = parse_datetime(result["held_since"]) if result.get("held_since") else execution.due_at
    channel = "email" if step["type"] == "send_email" else "sms"
    decision = gate.check(step, definition, contact, channel=channel, now=now, execution_id=execution.pk,
                          held_since=held_since, recent=recent)
    if decision.action == "go":
        return _GO
    if decision.action == "drop":
        return _close(execution, [State.CLAIMED], State.SKIPPED, now=now, result={"reason": decision.reason},
                      next_step=step["next"], contact=contact, trail_kind="skipped", reason=decision.reason,
                      detail=decision.detail)
    if StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(
            state=State.PENDING, due_at=decision.until, claimed_at=None,
            result={**result, "held_since": held_since.isoformat(), "deferred": decision.reason}):
        trail.record(contact.pk, "deferred", enrolment_id=execution.enrolment_id, step_id=execution.step_id,
                     reason=decision.reason, detail=decision.detail, until=decision.until)
    return None


SEND_STEPS = ("send_email", "send_sms", "notify_staff")


@dataclass
class _Ready:
    """A send decided under the contact's lock and rendered: what the hand-off and its record need."""

    execution: StepExecution
    step: dict
    contact: Contact
    kind: str
    outgoing: object  # delivery.Outgoing
    send_id: uuid.UUID
    saleor_channel: str
    basis: str = ""  # the consent rule a marketing message goes out under (send_blocker)
    high_intent: bool = False  # counted among the reminders' own short cap (gate.HIGH_INTENT)
    message: Message | None = None
    provider_message_id: str = ""
    sent_at: object = None
    error: Exception | None = None


def _deliver(execution, step, *, now, contact):
    """send_email, send_sms, notify_staff one at a time: a chunk of one."""
    next_ids: list[int] = []
    _send_chunk([execution], next_ids)
    return next_ids[0] if next_ids else None


def _send_chunk(executions, next_ids: list[int]):
    """Send steps, window by window, over connections kept open for the chunk.

    Each window: decide every send under its contact's lock and commit the
    window as `sending` (``_start_sends``); hand each message to the backend,
    learning each one's own outcome (``_hand_all``); record them
    (``_record_window``). A worker killed during a window leaves that window
    `sending` (the sweep marks it ambiguous, never resends it) and the later
    windows `claimed` (sent after the lease). A contact appears at most once
    per window, so its second message is decided after its first is
    counted. Steps made due at once are appended to ``next_ids``.
    """
    with delivery.Courier() as courier:
        for window in _windows(executions, max(1, flows_setting("SEND_WINDOW"))):
            ready = _start_guarded(window, next_ids)
            _hand_all(courier, ready)
            _record_window(ready, next_ids)


def _windows(executions, size: int) -> list[list]:
    """Up to ``size`` executions each, in id order, never two of one contact in a window."""
    windows, waiting = [], sorted(executions, key=lambda execution: execution.pk)
    while waiting:
        window, seen, later = [], set(), []
        for execution in waiting:
            contact_id = execution.enrolment.contact_id
            if len(window) < size and contact_id not in seen:
                window.append(execution)
                seen.add(contact_id)
            else:
                later.append(execution)
        windows.append(window)
        waiting = later
    return windows


def _start_guarded(window, next_ids: list[int]) -> list["_Ready"]:
    """``_start_sends``; a bug in one send never takes the window down: then one by one, the culprit failed."""
    try:
        return _start_sends(window, next_ids)
    except DATABASE_AWAY:
        raise
    except Exception as exc:  # noqa: BLE001
        if len(window) == 1:
            _step_raised(window[0].pk, exc)
            return []
        logger.error("saleor-flows: a window of %s sends failed; deciding them one by one", len(window), exc_info=exc)
    return [item for execution in window for item in _start_guarded([execution], next_ids)]


def _hand_all(courier, ready):
    """Committed `sending`: each message to its backend, its own outcome noted (from here a crash means ambiguous)."""
    for item in ready:
        try:
            item.provider_message_id = courier.hand_off(item.outgoing)
        except Exception as exc:  # noqa: BLE001 - this message's outcome, recorded by _record_window
            logger.warning("saleor-flows: send %s failed: %s", item.send_id, exc)
            item.error = exc
        else:
            item.sent_at = clock.now()


def _record_window(ready, next_ids: list[int]):
    """The answers: the accepted ones together (``_record_sent``), each failure on its own.

    If recording them together raises (a stored step that cannot go on, a
    bug), each is recorded alone, so one journey's fault never leaves the
    others' accepted messages `sending` (and later `ambiguous`).
    """
    sent = [item for item in ready if item.error is None]
    try:
        next_ids.extend(_recorded(lambda: _record_sent(sent)))
    except DATABASE_AWAY:
        raise
    except Exception as exc:  # noqa: BLE001
        logger.error("saleor-flows: recording %s sent messages failed; recording them one by one", len(sent),
                     exc_info=exc)
        for item in sent if len(sent) > 1 else []:
            try:
                next_ids.extend(_recorded(lambda item=item: _record_sent([item])))
            except DATABASE_AWAY:
                raise
            except Exception as single:  # noqa: BLE001 - stays `sending`: the sweep reports it ambiguous
                logger.error("saleor-flows: could not record send %s", item.send_id, exc_info=single)
    for item in ready:
        if item.error is not None:
            next_id = _recorded(lambda item=item: _record_failed_send(
                item.error, item.execution, item.message.pk, item.outgoing, item.step, contact=item.contact))
            if next_id is not None:
                next_ids.append(next_id)


def _start_sends(window, next_ids: list[int]) -> list[_Ready]:
    """Decide the window's sends under their contacts' locks, render them, commit them as `sending`.

    Contacts, then enrolments, are locked in id order (one statement each):
    an unsubscribe or an order that committed before this point is seen
    here, one that comes later waits for this commit and finds the message.
    Steps that a skip or an exit made due at once go to ``next_ids`` once
    the transaction has committed (a rolled-back window made none).
    """
    now = clock.now()
    made_due: list[int] = []
    with transaction.atomic():
        contacts = {c.pk: c for c in Contact.objects.select_for_update().filter(
            pk__in={e.enrolment.contact_id for e in window}).order_by("pk")}
        enrolments = {e.pk: e for e in Enrolment.objects.select_for_update().filter(
            pk__in={e.enrolment_id for e in window}).order_by("pk")}
        # What the re-checks read, for the whole window at once: events (goal, exit, entry filter) per
        # event name, on first use; the last marketing messages (frequency caps) if any send is marketing.
        shared = SharedEvents(contacts.values())
        marketing = [e for e in window if _send_kind(e) == "marketing"]
        recent = gate.recent_marketing(
            {e.enrolment.contact_id for e in marketing}, now=now, exclude_executions=[e.pk for e in marketing],
            high_intent=any(gate.high_intent(_step_of(e), version_definition(e.enrolment.version_id))
                            for e in marketing),
        ) if marketing else {}
        ready = []
        for execution in window:
            contact_id = execution.enrolment.contact_id
            decided = _decide_send(execution, contacts[contact_id], enrolments[execution.enrolment_id], now=now,
                                   shared=shared, recent=recent.get(contact_id, {}))
            if isinstance(decided, _Ready):
                ready.append(decided)
            elif decided is not None:
                made_due.append(decided)
        if ready:
            ready = _mark_sending(ready, now)
    next_ids.extend(made_due)
    return ready


def _mark_sending(ready: list[_Ready], now) -> list[_Ready]:
    """The window's executions `claimed → sending` in one conditional UPDATE, and their message rows."""
    ids = [item.execution.pk for item in ready]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {StepExecution._meta.db_table} SET state = %s, claimed_at = %s, attempts = attempts + 1"
                " WHERE id = ANY(%s) AND state = %s RETURNING id", [State.SENDING, now, ids, State.CLAIMED])
            moved = {row[0] for row in cursor.fetchall()}
    else:  # the demo's SQLite holds the whole database for this transaction: read, then write
        moved = set(StepExecution.objects.filter(pk__in=ids, state=State.CLAIMED).values_list("id", flat=True))
        StepExecution.objects.filter(pk__in=moved).update(state=State.SENDING, claimed_at=now,
                                                          attempts=F("attempts") + 1)
    ready = [item for item in ready if item.execution.pk in moved]
    # A retry reuses the message row of the failed attempt.
    earlier = Message.objects.in_bulk([item.execution.pk for item in ready if item.execution.attempts],
                                      field_name="execution_id")
    new = []
    for item in ready:
        execution, outgoing = item.execution, item.outgoing
        message = earlier.get(execution.pk) or Message(execution=execution)
        message.send_id, message.contact, message.flow = item.send_id, item.contact, execution.enrolment.flow
        message.step_id, message.channel, message.to = execution.step_id, outgoing.channel, outgoing.to[:254]
        message.subject, message.message_id = outgoing.subject[:255], outgoing.message_id
        message.kind, message.segments = item.kind, outgoing.segments
        message.basis, message.high_intent = item.basis, item.high_intent
        # Taken under the contact's lock: the moment the decision to send was made
        # (what the frequency cap counts from, and what an unsubscribe is compared with).
        message.status, message.error, message.created_at = Message.Status.SENDING, "", clock.now()
        if message.pk:
            message.save()
        else:
            new.append(message)
        item.message = message
    Message.objects.bulk_create(new)
    return ready


def _step_of(execution) -> dict:
    return version_definition(execution.enrolment.version_id)["steps"][execution.step_id]


def _send_kind(execution) -> str:
    """"marketing", "transactional" or "staff" (notify_staff)."""
    step = _step_of(execution)
    if step["type"] == "notify_staff":
        return "staff"
    return message_kind(step, version_definition(execution.enrolment.version_id))


def _decide_send(execution, fresh, locked, *, now, shared=None, recent=None):
    """Re-check everything before a send (docs/design.md, principle 5), under the contact's lock.

    Returns a ``_Ready`` to hand off; otherwise the step is closed, deferred or
    skipped here with its reason, and this returns the next execution if one
    is due at once (or None).
    """
    enrolment = execution.enrolment
    definition = version_definition(enrolment.version_id)
    step = definition["steps"][execution.step_id]
    if locked.status != Enrolment.Status.ACTIVE:
        StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(
            state=State.SKIPPED, finished_at=now, result={"reason": "enrolment_finished"})
        return None
    outcome = check_exit(enrolment, fresh, now, shared)
    if outcome:
        status, detail = outcome
        finish_enrolment(enrolment, status, detail["reason"], now=now, facts=detail["facts"],
                         before=execution.step_id)
        return None
    trigger_filter = definition["trigger"].get("filter")
    if trigger_filter and step["type"] != "notify_staff":
        decision = evaluate(trigger_filter, journey_context(enrolment, fresh, now, shared))
        if not decision.result:
            finish_enrolment(enrolment, Enrolment.Status.EXITED, "filter_no_longer_matches", now=now,
                             facts=decision.facts, before=execution.step_id)
            return None
    saleor_channel = enrolment.trigger_event.channel
    blocker, basis = send_blocker(step, definition, fresh, saleor_channel)
    if blocker:
        return _close(execution, [State.CLAIMED], State.SKIPPED, now=now, result={"reason": blocker},
                      next_step=step["next"], contact=fresh, trail_kind="skipped", reason=blocker)
    kind = _send_kind(execution)
    if kind == "marketing":
        held = _hold(execution, step, definition, fresh, now=now, recent=recent)
        if held is not _GO:
            return held
    send_id = uuid.uuid4()
    try:
        payload = enrolment.trigger_event.payload
        outgoing = delivery.prepare(step, kind=kind, flow=enrolment.flow, contact=fresh,
                                    event_payload=payload, send_id=send_id, saleor_channel=saleor_channel,
                                    recommended=recommendations.for_step(step, fresh, payload, saleor_channel))
    except Exception as exc:  # a template that cannot render for this contact's data
        return _close(execution, [State.CLAIMED], State.FAILED, now=now, result={"error": str(exc)[:500]},
                      next_step=step["next"], contact=fresh, trail_kind="failed", error=str(exc)[:200])
    return _Ready(execution, step, fresh, kind, outgoing, send_id, saleor_channel, basis,
                  kind == "marketing" and gate.high_intent(step, definition))


def _record_sent(sent: list[_Ready]) -> list[int]:
    """Accepted messages: each message and execution `sent`, the trail, the next steps; one transaction.

    Its commit need not wait for the disk (``synchronous_commit = off``): if a
    crash loses it, the sends are still `sending` and become `ambiguous`,
    never resent, and any later durable commit flushes it first.
    """
    if not sent:
        return []
    with transaction.atomic():
        if connection.vendor == "postgresql":
            closed = _mark_sent(sent)
        else:  # the demo's SQLite
            closed = set()
            for item in sent:
                Message.objects.filter(pk=item.message.pk).update(status=Message.Status.SENT, sent_at=item.sent_at, **(
                    {"provider_message_id": item.provider_message_id[:255]} if item.provider_message_id else {}))
                if StepExecution.objects.filter(pk=item.execution.pk, state=State.SENDING).update(
                        state=State.SENT, finished_at=item.sent_at, result={"send_id": str(item.send_id)}):
                    closed.add(item.execution.pk)
        done = [item for item in sent if item.execution.pk in closed]
        trail.write([trail.entry(
            item.contact.pk, "sent", enrolment_id=item.execution.enrolment_id, step_id=item.execution.step_id,
            channel=item.outgoing.channel, to=item.outgoing.to, subject=item.outgoing.subject,
            send_id=str(item.send_id), **({"basis": item.basis} if item.kind == "marketing" else {}),
        ) for item in done])
        next_ids = advance_all([(item.execution.enrolment, item.step["next"], item.sent_at, item.contact)
                                for item in done]) if done else []
    return [next_id for next_id in next_ids if next_id is not None]


def _mark_sent(sent: list[_Ready]) -> set[int]:
    """Messages and executions `sent` in two statements (PostgreSQL); the executions this moved."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute(
            f"UPDATE {Message._meta.db_table} AS m SET status = %s, sent_at = v.sent_at,"
            " provider_message_id = CASE WHEN v.provider_id = '' THEN m.provider_message_id"
            " ELSE v.provider_id END"
            " FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS v(id, sent_at, provider_id)"
            " WHERE m.id = v.id",
            [Message.Status.SENT, [item.message.pk for item in sent], [item.sent_at for item in sent],
             [item.provider_message_id[:255] for item in sent]])
        cursor.execute(
            f"UPDATE {StepExecution._meta.db_table} AS e SET state = %s, finished_at = v.sent_at,"
            " result = jsonb_build_object('send_id', v.send_id)"
            " FROM unnest(%s::bigint[], %s::timestamptz[], %s::text[]) AS v(id, sent_at, send_id)"
            " WHERE e.id = v.id AND e.state = %s RETURNING e.id",
            [State.SENT, [item.execution.pk for item in sent], [item.sent_at for item in sent],
             [str(item.send_id) for item in sent], State.SENDING])
        return {row[0] for row in cursor.fetchall()}


def _record_failed_send(exc, execution, message_id, outgoing, step, *, contact):
    if getattr(exc, "ambiguous", False):  # it may have gone out: never again (DESIGN principle 3)
        return _close_ambiguous(execution, contact=contact, next_step=step["next"], now=clock.now(),
                                reason=str(exc))[1]
    # A provider's definite "no" (invalid number, STOP) fails at once; anything else is retried.
    retryable = getattr(exc, "retryable", True)
    if getattr(exc, "suppress", ""):  # e.g. the number opted out at the provider: never again, in any flow
        suppression.suppress(outgoing.channel, outgoing.to, exc.suppress, source="provider_answer")
    return _retry_or_fail(execution, message_id, now=clock.now(), error=f"{type(exc).__name__}: {exc}",
                          max_attempts=SEND_RETRIES if retryable else 0, backoff_seconds=SEND_BACKOFF_SECONDS,
                          contact=contact, next_step=step["next"])


def _recorded(write):
    """Run ``write``, what we learnt from the provider, until the database takes it.

    The provider has answered; if the database is away just now (a restart)
    and we gave up, the step would stay `sending` and later turn ambiguous
    though we know what happened. Each write is its own transaction (or a
    few), so trying it again is safe. About 15 s in all, then the task's own
    retry and the sweep take over.
    """
    for pause in RECORD_RETRY_PAUSES:
        try:
            return write()
        except DATABASE_AWAY as exc:
            if connection.in_atomic_block:
                raise  # the caller's transaction is lost anyway
            logger.warning("saleor-flows: the database is away after a send (%s); trying again in %s s", exc, pause)
            drop_broken_connection()
            time.sleep(pause)
    return write()


def _run_webhook(execution, step, *, now, contact):
    enrolment = execution.enrolment
    if not StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(
            state=State.SENDING, claimed_at=now, attempts=execution.attempts + 1):
        return None
    try:
        status = webhook.post(step, delivery_id=str(execution.pk), contact=contact,
                              flow=enrolment.flow, event_payload=enrolment.trigger_event.payload)
    except webhook.WebhookError as exc:  # generic texts only (webhook.py): the trail never maps a network
        return _retry_or_fail(execution, None, now=clock.now(), error=str(exc),
                              max_attempts=flows_setting("WEBHOOK_MAX_ATTEMPTS") if exc.retryable else 0,
                              backoff_seconds=flows_setting("WEBHOOK_BACKOFF_SECONDS"),
                              contact=contact, next_step=step["next"])
    return _close(execution, [State.SENDING], State.DONE, now=clock.now(), result={"status": status},
                  next_step=step["next"], contact=contact, trail_kind="webhook_delivered",
                  url=step["url"], status=status, attempts=execution.attempts + 1)


HANDLERS = {
    "wait": _run_wait, "wait_until": _run_wait, "wait_date": _run_wait, "wait_best_time": _run_wait,
    "wait_event": _run_wait_event,
    "split": _run_split, "branch": _run_branch, "random_split": _run_random_split,
    "add_tag": _run_contact_change, "remove_tag": _run_contact_change, "add_to_list": _run_contact_change,
    "remove_from_list": _run_contact_change, "set_field": _run_contact_change, "exit": _run_exit,
    "send_email": _deliver, "send_sms": _deliver, "notify_staff": _deliver, "webhook": _run_webhook,
}


def _close_ambiguous(execution, *, contact, next_step, now, reason) -> tuple[bool, int | None]:
    """A send whose outcome we cannot know: reported, reconciled from provider events, never resent.

    Returns whether this call marked it, and the next step's execution if it is due at once.
    """
    with transaction.atomic():
        if not StepExecution.objects.select_for_update().filter(pk=execution.pk, state=State.SENDING).exists():
            return False, None
        Message.objects.filter(execution_id=execution.pk, status=Message.Status.SENDING).update(
            status=Message.Status.AMBIGUOUS, error=reason[:2000])
        return True, _close(execution, [State.SENDING], State.AMBIGUOUS, now=now, result={"reason": reason[:500]},
                            next_step=next_step, contact=contact, trail_kind="ambiguous", reason=reason[:200])


def mark_ambiguous(execution_id: int, *, now) -> bool:
    """A send left in `sending` (its worker died): we cannot know if it went out.

    It is never sent again. The message is marked ambiguous for reconciling
    from provider events, the trail says so, and the journey goes on so the
    contact is not stuck.
    """
    execution = StepExecution.objects.select_related(
        "enrolment__contact", "enrolment__trigger_event").filter(pk=execution_id).first()
    if execution is None or execution.state != State.SENDING:
        return False
    step = version_definition(execution.enrolment.version_id)["steps"][execution.step_id]
    marked, next_id = _close_ambiguous(execution, contact=execution.enrolment.contact, next_step=step.get("next"),
                                       now=now, reason="worker stopped during hand-off; outcome unknown, not resent")
    if next_id:
        from . import dispatch

        dispatch.executions_claimed([next_id])
    return marked
