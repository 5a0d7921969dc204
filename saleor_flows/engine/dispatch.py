"""How the engine hands work to workers.

In "celery" mode work goes to the host's Celery app, enqueued only after the
surrounding transaction commits (a worker must never look for a row that is
not visible yet). A broker that is away never fails the caller: the rows are
committed and the sweep hands them out again (see ``publish``). In "inline"
mode (the demo, the test harness) it runs right here in the calling process.
Only ids travel; the database holds the state.
"""

import contextlib
import dataclasses
import logging

from django.db import transaction

from ..conf import flows_setting

logger = logging.getLogger(__name__)
_forced_mode: list[str] = []


def mode() -> str:
    return _forced_mode[-1] if _forced_mode else flows_setting("TASK_MODE")


@contextlib.contextmanager
def forced(mode_name: str):
    """Run a block with a given task mode, whatever the settings say (used by the test harness)."""
    _forced_mode.append(mode_name)
    try:
        yield
    finally:
        _forced_mode.pop()


PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}


def publish(task, *args, fallback=None):
    """Enqueue ``task``; if the broker cannot take it, log and go on (run ``fallback`` when given).

    Called after the commit, often in a shopper's request (a Saleor hook):
    raising here would break that request although the work is safely
    stored. Nothing is lost: a pending event is enqueued again by the sweep
    after EVENT_REQUEUE_SECONDS, a claimed execution is released after
    CLAIM_LEASE_SECONDS. One immediate retry covers a pooled connection that
    died with a Redis restart; Celery's default policy (three, 0.6 s) would
    add that much to every request while the broker is away.
    """
    try:
        task.apply_async(args, retry_policy=PUBLISH_RETRY)
    except Exception as exc:  # kombu's OperationalError and whatever the transport raises
        logger.warning("saleor-flows: could not enqueue %s (%s: %s); %s", task.name, type(exc).__name__, exc,
                       "running it here" if fallback else "the sweep hands it out again")
        if fallback:
            fallback()


def event_recorded(event_id: int):
    if mode() == "inline":
        from .processing import process_event_and_continue

        process_event_and_continue(event_id)
        return
    from .. import tasks

    transaction.on_commit(lambda: publish(tasks.process_event, event_id))


def events_pending(event_ids: list[int]):
    """Events whose first enqueue may have been lost: enqueue them again."""
    for event_id in event_ids:
        event_recorded(event_id)


def executions_claimed(execution_ids: list[int]):
    """Hand claimed step executions to workers, a chunk per task."""
    if not execution_ids:
        return
    if mode() == "inline":
        from .runner import run_claimed

        run_claimed(execution_ids)
        return
    from .. import tasks

    size = flows_setting("SWEEP_CHUNK_SIZE")
    chunks = [execution_ids[i:i + size] for i in range(0, len(execution_ids), size)]
    transaction.on_commit(lambda: [publish(tasks.run_executions, chunk) for chunk in chunks])


def consent_email(kind: str, contact_id: int, **detail):
    """A double opt-in confirmation ("confirm") or a staff notice of a new subscriber ("staff"), sent off the request.

    No sweep looks for a lost one, so if the broker is away it is sent here and now.
    """
    if mode() == "inline":
        _send_consent_email(kind, contact_id, detail)
        return
    from .. import tasks

    transaction.on_commit(lambda: publish(tasks.send_consent_email, kind, contact_id, detail,
                                          fallback=lambda: _send_consent_email(kind, contact_id, detail)))


def _send_consent_email(kind: str, contact_id: int, detail: dict):
    from ..channels.consent_email import send

    try:
        send(kind, contact_id, **detail)
    except Exception:  # a mail server hiccup must not fail the signup that asked for it
        logger.exception("saleor-flows: could not send the %s consent email for contact %s", kind, contact_id)


def signup(fields: dict, proof):
    """A storefront signup (``consent.subscribe`` keyword arguments and its ``Proof``), off the request.

    The request does the same work whoever the address belongs to (validate,
    count its rate limits, enqueue), so its answer and its time reveal nothing
    about who is known (docs/security.md). Inline mode runs it right here, and
    so does a broker that is away (no sweep would find a lost signup).
    """
    if mode() == "inline":
        subscribe_now(fields, proof)
        return
    from .. import tasks

    transaction.on_commit(lambda: publish(tasks.subscribe, fields, dataclasses.asdict(proof),
                                          fallback=lambda: subscribe_now(fields, proof)))


def subscribe_now(fields: dict, proof):
    """The contact, its consent and the ``subscribed`` event in one transaction, or nothing."""
    from .consent import subscribe

    with transaction.atomic():
        subscribe(**fields, proof=proof)
