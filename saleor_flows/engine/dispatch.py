"""How the engine hands work to workers.

In "celery" mode work goes to whatever task layer registered itself here
(``saleor_flows/tasks.py`` puts it on the host's Celery app), handed out only
after the surrounding transaction commits (a worker must never look for a row
that is not visible yet). The engine never imports that layer: the arrows
point one way (docs/design.md). A broker that is away never fails the caller:
the rows are committed and the sweep hands them out again, or, for work no
sweep looks for, it runs here. In "inline" mode (the demo, the test harness)
it runs right here in the calling process. Only ids travel; the database
holds the state.
"""

import contextlib
import dataclasses
import logging

from django.core.exceptions import ImproperlyConfigured
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


class Workers:
    """How work leaves this process for a worker: what a task layer registers (``saleor_flows/tasks.py``).

    The engine names the work and passes ids; the task layer knows the broker.
    Every method is called after the commit, often in a shopper's request, so
    it must never raise because a broker is away: it returns False instead
    (nothing is lost, see each caller) and the engine decides what to do.
    """

    def wakes_workers(self) -> bool:
        """False when a recorded event wakes no worker (no broker: Celery eager); the sweep then takes every pending event."""
        return True

    def wake_event_processing(self) -> bool:
        """Events were committed: make sure a worker runs ``processing.process_pending`` soon.

        Cheap and coalesced (one wake-up for many events); it may hand
        out nothing when no broker is configured: then the sweep finds them.
        """
        raise NotImplementedError

    def process_pending_events(self) -> bool:
        """The sweep found events waiting too long: hand out ``process_pending`` now, coalesced or not."""
        raise NotImplementedError

    def run_executions(self, execution_ids: list[int]) -> bool:
        raise NotImplementedError

    def send_consent_email(self, kind: str, contact_id: int, detail: dict) -> bool:
        raise NotImplementedError

    def subscribe(self, fields: dict, proof: dict) -> bool:
        raise NotImplementedError

    def run_simulation(self, simulation_id: int) -> bool:
        raise NotImplementedError


_workers: list[Workers] = []


def register(workers: Workers):
    """Called by the task layer when it is imported (``saleor_flows.tasks``; the app's ``ready()`` imports it)."""
    _workers[:] = [workers]


def workers() -> Workers:
    if not _workers:
        raise ImproperlyConfigured(
            "saleor-flows: TASK_MODE is 'celery' but no task layer registered itself: add 'saleor_flows' to "
            "INSTALLED_APPS (its ready() imports saleor_flows.tasks), or use TASK_MODE 'inline'.")
    return _workers[0]


def events_wait_for_the_sweep() -> bool:
    """True when recorded events wake no worker (no broker): the sweep hands out every pending event, not only late ones."""
    return mode() != "inline" and not workers().wakes_workers()


def event_recorded(event_id: int):
    """An event was stored: process it here (inline mode) or wake a worker once the transaction commits.

    One wake-up per transaction, however many events it records; the task
    layer coalesces further (one per short window). The woken worker takes
    every pending event, oldest first, so no event needs its own task. If the
    wake-up is lost, the sweep hands the event out after EVENT_REQUEUE_SECONDS.
    """
    if mode() == "inline":
        from .processing import process_event_and_continue

        process_event_and_continue(event_id)
        return
    connection = transaction.get_connection()
    if connection.in_atomic_block:
        open_savepoints = set(connection.savepoint_ids)
        if any(callback is _wake_event_processing and savepoints <= open_savepoints
               for savepoints, callback, *_ in connection.run_on_commit):
            return  # this transaction wakes a worker already (and no savepoint rollback can take that away)
    transaction.on_commit(_wake_event_processing)


def _wake_event_processing():
    workers().wake_event_processing()


def events_pending(event_ids: list[int]):
    """Events whose wake-up may have been lost (the sweep, a dead-letter replay): one worker takes them all."""
    if not event_ids:
        return
    if mode() == "inline":
        from .processing import process_events
        from .runner import run_claimed

        run_claimed(process_events(event_ids))  # one batch
        return
    transaction.on_commit(lambda: workers().process_pending_events())


def executions_claimed(execution_ids: list[int]):
    """Hand claimed (or leased: ``sweep.claim_due``) step executions to workers, a chunk per task.

    A chunk the broker cannot take is not lost: its lease runs out after CLAIM_LEASE_SECONDS
    and the sweep claims it again (claimed ones the sweep releases after the same time).
    """
    if not execution_ids:
        return
    if mode() == "inline":
        from .runner import run_claimed

        run_claimed(execution_ids)
        return
    size = flows_setting("SWEEP_CHUNK_SIZE")
    chunks = [execution_ids[i:i + size] for i in range(0, len(execution_ids), size)]
    transaction.on_commit(lambda: [workers().run_executions(chunk) for chunk in chunks])


def consent_email(kind: str, contact_id: int, **detail):
    """A double opt-in confirmation ("confirm") or a staff notice of a new subscriber ("staff"), sent off the request.

    No sweep looks for a lost one, so if the broker is away it is sent here and now.
    """
    if mode() == "inline":
        _send_consent_email(kind, contact_id, detail)
        return

    def hand_out():
        if not workers().send_consent_email(kind, contact_id, detail):
            _send_consent_email(kind, contact_id, detail)

    transaction.on_commit(hand_out)


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

    def hand_out():
        if not workers().subscribe(fields, dataclasses.asdict(proof)):
            subscribe_now(fields, proof)

    transaction.on_commit(hand_out)


def subscribe_now(fields: dict, proof):
    """The contact, its consent and the ``subscribed`` event in one transaction, or nothing."""
    from .consent import subscribe

    with transaction.atomic():
        subscribe(**fields, proof=proof)


def simulation_queued(simulation_id: int):
    """A dry run was asked for: run it here (inline mode) or hand it to a worker after the commit.

    No sweep looks for a lost one, so if the broker is away it runs here.
    """
    from .simulation import run_simulation

    if mode() == "inline":
        run_simulation(simulation_id)
        return

    def hand_out():
        if not workers().run_simulation(simulation_id):
            run_simulation(simulation_id)

    transaction.on_commit(hand_out)
