"""Running step executions: the state machine of a journey.

An execution moves ``pending → claimed → (sending →) sent | done | skipped |
failed | ambiguous``, always by a conditional UPDATE that names the state it
expects, so a task delivered twice, or two sweeps racing, find nothing left
to do the second time. For sends the ``sending`` state (and the Message row)
is committed before the provider is called; if the worker dies there, the
sweep marks the send ambiguous instead of sending it again.

Steps due at once run in a chain in the same task; a wait ends the chain and
leaves a pending row with its due time for the sweep.
"""

import hashlib
import logging
import time
import uuid
from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.utils.dateparse import parse_datetime

from .. import clock
from ..channels import delivery, staff, webhook
from ..conf import flows_setting
from ..db import DATABASE_AWAY, drop_broken_connection, insert_on_conflict
from ..models import Contact, Enrolment, Message, StepExecution
from ..phone import to_e164
from . import gate, holds, suppression, trail
from .conditions import evaluate
from .consent import marketing_basis
from .criteria import check_exit, journey_context
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

def schedule_step(enrolment: Enrolment, step_id: str, *, now, contact: Contact) -> int | None:
    """Create the execution of ``step_id``. Returns its id when it is due at once (already claimed)."""
    step = version_definition(enrolment.version_id)["steps"][step_id]
    kind = step["type"]
    due, why = now, {}
    if kind in WAIT_TYPES:
        due = due_at_for(step, now=now, contact=contact.as_context(), event_payload=enrolment.trigger_event.payload,
                         contact_id=contact.pk, explain=why)
    immediate = due <= now and kind != "wait_event"
    execution_id = _insert_execution(enrolment.pk, step_id, due=due, immediate=immediate, now=now,
                                     waiting_for=step["event"] if kind == "wait_event" else "")
    if execution_id is None:
        return None  # this step of this journey exists already: never twice
    if kind in WAIT_TYPES and not immediate:
        detail = {"until": due, **why}
        if kind == "wait_event":
            detail["event"] = step["event"]
        trail.record(contact.pk, "waiting", enrolment_id=enrolment.pk, step_id=step_id, **detail)
    return execution_id if immediate else None


def _insert_execution(enrolment_id, step_id, *, due, immediate, now, waiting_for) -> int | None:
    """One INSERT; the unique (enrolment, step, occurrence) key turns a second one into nothing."""
    return insert_on_conflict(StepExecution, {
        "enrolment_id": enrolment_id, "step_id": step_id, "occurrence": 1,
        "state": State.CLAIMED if immediate else State.PENDING, "due_at": due, "waiting_for": waiting_for,
        "attempts": 0, "claimed_at": now if immediate else None, "result": "{}",
    }, conflict=["enrolment_id", "step_id", "occurrence"])


def finish_enrolment(enrolment: Enrolment, status: str, reason: str, *, now, **detail) -> bool:
    """End a journey once: later steps are skipped with the reason."""
    updated = Enrolment.objects.filter(pk=enrolment.pk, status=Enrolment.Status.ACTIVE).update(
        status=status, exit_reason=reason, finished_at=now)
    if not updated:
        return False
    enrolment.status, enrolment.exit_reason, enrolment.finished_at = status, reason, now
    StepExecution.objects.filter(enrolment_id=enrolment.pk, state__in=[State.PENDING, State.CLAIMED]).update(
        state=State.SKIPPED, finished_at=now, result={"reason": reason})
    trail.record(enrolment.contact_id, status, enrolment_id=enrolment.pk, reason=reason, **detail)
    return True


def advance(enrolment: Enrolment, next_step: str | None, *, now, contact: Contact) -> int | None:
    if next_step is None:
        finish_enrolment(enrolment, Enrolment.Status.COMPLETED, "completed", now=now)
        return None
    return schedule_step(enrolment, next_step, now=now, contact=contact)


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


def run_claimed(execution_ids):
    """Run claimed executions, each followed by the steps it makes due at once."""
    for index, execution_id in enumerate(execution_ids):
        next_id, steps = execution_id, 0
        while next_id is not None and steps < MAX_CHAIN:
            try:
                next_id = execute(next_id)
            except DATABASE_AWAY as exc:
                # Not this journey's fault: stop, drop the dead connection, let the task try again.
                drop_broken_connection()
                raise Interrupted([next_id, *execution_ids[index + 1:]]) from exc
            except ImproperlyConfigured:
                # A broken setting (the operator fixes it): the execution stays claimed and the
                # sweep hands it out again after the lease, so nothing is lost.
                logger.exception("saleor-flows: step execution %s failed", next_id)
                next_id = None
            except Exception as exc:
                # A bug, or a stored definition that cannot run: retrying would fail the same way
                # forever. The step fails with the reason and the journey ends; the batch goes on.
                logger.exception("saleor-flows: step execution %s failed", next_id)
                _fail_unexpectedly(next_id, exc)
                next_id = None
            steps += 1


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
    execution = StepExecution.objects.select_related(
        "enrolment__flow", "enrolment__contact", "enrolment__trigger_event",
    ).defer("enrolment__flow__definition").filter(pk=execution_id).first()
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

def send_blocker(step, definition, contact, saleor_channel: str = "") -> str:
    """Why this contact must not get this message now, or "" (no side effects: the simulation asks it too)."""
    kind = step["type"]
    marketing = message_kind(step, definition) == "marketing"
    if kind == "notify_staff":  # publishing checked this too; someone may have left the staff since
        outsiders = staff.not_staff(step["to"])
        return f"not a staff address ({', '.join(outsiders)})" if outsiders else ""
    channel = "email" if kind == "send_email" else "sms"
    if channel == "email" and not contact.email:
        return "no email address"
    if channel == "sms" and not contact.phone:
        return "no phone number"
    phone = ""
    if channel == "sms":
        try:  # suppressions (STOP) are kept by E.164 number, as providers report them
            phone = to_e164(contact.phone, flows_setting("PHONE_REGION"))
        except ValueError:
            return "invalid phone number"
    reason = (contact.suppressed_reason or "no reason given") if contact.suppressed and channel == "email" else (
        suppression.reason_for("sms", phone) if channel == "sms" else None)
    if suppression.blocks(channel, reason, marketing=marketing):
        return f"suppressed ({reason})"
    if marketing:
        return marketing_basis(contact, channel, saleor_channel)[1]
    return ""


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


def _hold(execution, step, definition, contact, *, now):
    """Frequency cap, quiet hours, the contact's preferences (engine/gate.py): go, defer or drop.

    A deferral puts the execution back to pending with a new due time (the
    database is the clock) without counting an attempt; ``held_since``
    remembers when it was first due, so staleness is measured from there.
    """
    result = execution.result or {}
    held_since = parse_datetime(result["held_since"]) if result.get("held_since") else execution.due_at
    channel = "email" if step["type"] == "send_email" else "sms"
    decision = gate.check(step, definition, contact, channel=channel, now=now, execution_id=execution.pk,
                          held_since=held_since)
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


def _deliver(execution, step, *, now, contact):
    """send_email, send_sms, notify_staff: check, render, commit `sending`, hand off, commit `sent`."""
    enrolment = execution.enrolment
    definition = version_definition(enrolment.version_id)
    with transaction.atomic():
        # Lock the person, then the journey: an unsubscribe or an order that
        # committed before this point is seen here, one that comes later waits.
        fresh = Contact.objects.select_for_update().get(pk=contact.pk)
        locked = Enrolment.objects.select_for_update().get(pk=enrolment.pk)
        if locked.status != Enrolment.Status.ACTIVE:
            StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(
                state=State.SKIPPED, finished_at=now, result={"reason": "enrolment_finished"})
            return None
        outcome = check_exit(enrolment, fresh, now)
        if outcome:
            status, detail = outcome
            finish_enrolment(enrolment, status, detail["reason"], now=now, facts=detail["facts"],
                             before=execution.step_id)
            return None
        trigger_filter = definition["trigger"].get("filter")
        if trigger_filter and step["type"] != "notify_staff":
            decision = evaluate(trigger_filter, journey_context(enrolment, fresh, now))
            if not decision.result:
                finish_enrolment(enrolment, Enrolment.Status.EXITED, "filter_no_longer_matches", now=now,
                                 facts=decision.facts, before=execution.step_id)
                return None
        saleor_channel = enrolment.trigger_event.channel
        blocker = send_blocker(step, definition, fresh, saleor_channel)
        if blocker:
            return _close(execution, [State.CLAIMED], State.SKIPPED, now=now, result={"reason": blocker},
                          next_step=step["next"], contact=fresh, trail_kind="skipped", reason=blocker)
        kind = "staff" if step["type"] == "notify_staff" else message_kind(step, definition)
        if kind == "marketing":
            held = _hold(execution, step, definition, fresh, now=now)
            if held is not _GO:
                return held
        send_id = uuid.uuid4()
        try:
            outgoing = delivery.prepare(step, kind=kind, flow=enrolment.flow, contact=fresh,
                                        event_payload=enrolment.trigger_event.payload, send_id=send_id,
                                        saleor_channel=saleor_channel)
        except Exception as exc:  # a template that cannot render for this contact's data
            return _close(execution, [State.CLAIMED], State.FAILED, now=now, result={"error": str(exc)[:500]},
                          next_step=step["next"], contact=fresh, trail_kind="failed", error=str(exc)[:200])
        if not StepExecution.objects.filter(pk=execution.pk, state=State.CLAIMED).update(
                state=State.SENDING, claimed_at=now, attempts=execution.attempts + 1):
            return None
        # A retry reuses the message row of the failed attempt.
        message = (Message.objects.filter(execution=execution).first() if execution.attempts else None) or Message(
            execution=execution)
        message.send_id, message.contact, message.flow = send_id, fresh, enrolment.flow
        message.step_id, message.channel, message.to = execution.step_id, outgoing.channel, outgoing.to[:254]
        message.subject, message.message_id = outgoing.subject[:255], outgoing.message_id
        message.kind, message.segments = kind, outgoing.segments
        # Taken under the contact's lock: the moment the decision to send was made
        # (what the frequency cap counts from, and what an unsubscribe is compared with).
        message.status, message.error, message.created_at = Message.Status.SENDING, "", clock.now()
        message.save()
    # Committed: from here on a crash leaves `sending`, which the sweep turns into `ambiguous`.
    try:
        provider_message_id = delivery.hand_off(outgoing)
    except Exception as exc:
        logger.warning("saleor-flows: send %s failed: %s", send_id, exc)
        return _recorded(lambda: _record_failed_send(exc, execution, message.pk, outgoing, step, contact=fresh))
    sent_at = clock.now()

    def record_sent():
        with transaction.atomic():
            Message.objects.filter(pk=message.pk).update(status=Message.Status.SENT, sent_at=sent_at, **(
                {"provider_message_id": provider_message_id[:255]} if provider_message_id else {}))
            return _close(execution, [State.SENDING], State.SENT, now=sent_at, result={"send_id": str(send_id)},
                          next_step=step["next"], contact=fresh, trail_kind="sent", channel=outgoing.channel,
                          to=outgoing.to, subject=outgoing.subject, send_id=str(send_id),
                          **({"basis": marketing_basis(fresh, outgoing.channel, saleor_channel)[0]}
                             if kind == "marketing" else {}))

    return _recorded(record_sent)


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
