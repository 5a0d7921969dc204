"""Celery tasks: thin wrappers that hand ids to the engine, and the engine's way out to them.

They are ``shared_task``s, so they run on the host's Celery app (Saleor
autodiscovers ``tasks.py`` in installed apps). Tasks are acknowledged late:
a task lost with its worker is delivered again, which is safe because every
state change in the engine is conditional.

Importing this module registers ``CeleryWorkers`` with the engine's
dispatcher (the app's ``ready()`` imports it): the engine hands work out
without importing Celery or this module.
"""

import contextlib
import logging
import threading

from celery import shared_task
from celery.schedules import crontab
from django.db import connection

from .conf import flows_setting
from .db import DATABASE_AWAY, drop_broken_connection
from .engine import dispatch, processing, runner, sweep as sweeping

try:
    # Inside Saleor, task code must say it means to write to the primary database.
    from saleor.core.db.connection import allow_writer
except ImportError:
    allow_writer = contextlib.nullcontext

logger = logging.getLogger(__name__)
TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}
# Events one process_pending task takes per batch, and batches before it hands the rest to a fresh task
# (so one task never holds a worker for ever, and idle workers join in on a backlog).
EVENT_BATCH_SIZE = 1000
EVENT_BATCHES_PER_TASK = 10
# A database restart under a running task: try again after 1, 2, 4 … 60 s (about 6 min in all)
# rather than leave its claims to the lease. Short countdowns only: no wait is parked in Celery.
DATABASE_RETRIES = 12


def _backoff(retries: int) -> int:
    return min(60, 2 ** retries)


@shared_task(name="saleor_flows.process_event", bind=True, **TASK_OPTIONS)
def process_event(self, event_id: int):
    """One event (a batch of one). Nothing here enqueues it any more: it stays so that tasks queued
    by an earlier version, one per event, still run while a shop upgrades."""
    with allow_writer():
        try:
            processing.process_event_and_continue(event_id)
        except runner.Interrupted as stopped:  # the event is processed; the steps it made due still wait
            run_executions.apply_async((stopped.remaining,), countdown=_backoff(0), **routed("sends"))
        except DATABASE_AWAY as exc:  # rolled back: the event is still pending
            drop_broken_connection()
            raise self.retry(exc=exc, countdown=_backoff(self.request.retries), max_retries=DATABASE_RETRIES)


@shared_task(name="saleor_flows.process_pending", bind=True, **TASK_OPTIONS)
def process_pending(self):
    """Every pending event, oldest first, in batches: what a wake-up (or the sweep) starts.

    The wake-up guard is cleared before the first claim, so an event committed
    from now on wakes another task, and every event committed before is seen
    by this one's claims: none is left without a worker looking for it.
    """
    WAKE_GUARD.clear(self.app)
    with allow_writer():
        try:
            for _ in range(EVENT_BATCHES_PER_TASK):
                if processing.process_pending(EVENT_BATCH_SIZE) < EVENT_BATCH_SIZE:
                    return
                WORKERS.wake_event_processing()  # a backlog: an idle worker may join (SKIP LOCKED keeps them apart)
            WORKERS.process_pending_events()  # more than this task's share: a fresh task goes on
        except runner.Interrupted as stopped:  # these events are processed; the steps they made due still wait
            run_executions.apply_async((stopped.remaining,), countdown=_backoff(0), **routed("sends"))
            WORKERS.process_pending_events()
        except DATABASE_AWAY as exc:  # rolled back: the events are still pending
            drop_broken_connection()
            raise self.retry(exc=exc, countdown=_backoff(self.request.retries), max_retries=DATABASE_RETRIES)


@shared_task(name="saleor_flows.run_executions", bind=True, **TASK_OPTIONS)
def run_executions(self, execution_ids: list[int]):
    with allow_writer():
        try:
            runner.run_claimed(execution_ids)
        except runner.Interrupted as stopped:
            raise self.retry(args=(stopped.remaining,), countdown=_backoff(self.request.retries),
                             max_retries=DATABASE_RETRIES)


@shared_task(name="saleor_flows.sweep", **TASK_OPTIONS)
def sweep():
    with allow_writer():
        report = sweeping.sweep()
    return vars(report)


@shared_task(name="saleor_flows.scan_dates", **TASK_OPTIONS)
def scan_dates():
    """Lapsed customers, birthdays and anniversaries, each in the contact's own timezone."""
    from .engine.derived import scan_dates as scan

    with allow_writer():
        return scan()


@shared_task(name="saleor_flows.send_consent_email", **TASK_OPTIONS)
def send_consent_email(kind: str, contact_id: int, detail: dict):
    """A double opt-in confirmation or a staff notice about a new subscriber."""
    from .channels.consent_email import send

    send(kind, contact_id, **detail)


@shared_task(name="saleor_flows.subscribe", **TASK_OPTIONS)
def subscribe(fields: dict, proof: dict):
    """A storefront signup, taken off the request (engine/dispatch.signup); safe to run twice."""
    from .engine.consent import Proof
    from .engine.dispatch import subscribe_now

    with allow_writer():
        subscribe_now(fields, Proof(**proof))


@shared_task(name="saleor_flows.run_simulation", **TASK_OPTIONS)
def run_simulation(simulation_id: int):
    """A dry run of a draft (engine/simulation.py): reads events, writes only its Simulation row."""
    from .engine.simulation import run_simulation as run

    with allow_writer():
        run(simulation_id)


@shared_task(name="saleor_flows.refresh_predictions", **TASK_OPTIONS)
def refresh_predictions():
    """Refit the order-history model on the shop's customers and update their predicted fields."""
    from .engine.predictive import refresh

    with allow_writer():
        return refresh()


@shared_task(name="saleor_flows.rollup", **TASK_OPTIONS)
def rollup():
    """Fold analytics deltas into the report's rollup, end held-out enrolments, decide experiments."""
    from .engine.analytics import rollup as run_rollup

    with allow_writer():
        result = run_rollup()
    return {"folded": result["folded"], "holdouts_ended": result["holdouts_ended"], "winners": len(result["winners"])}


@shared_task(name="saleor_flows.prune", **TASK_OPTIONS)
def prune():
    """Delete what the retention settings let go, in small batches (engine/retention.py)."""
    from .engine.retention import prune as run_prune

    with allow_writer():
        report = run_prune()
    return {"folded": report.folded, "deleted": report.deleted, "transactions": report.transactions}


# Add to the host's beat schedule (Saleor: see the plugin's README section).
BEAT_SCHEDULE = {
    "saleor-flows-sweep": {"task": "saleor_flows.sweep", "schedule": 10.0},
    # Hourly, so "today" arrives in every timezone; dedupe keys make it once a year.
    "saleor-flows-scan-dates": {"task": "saleor_flows.scan_dates", "schedule": 3600.0},
    # Nightly: churn risk, next order date and CLV move slowly; the fit takes seconds.
    "saleor-flows-predictions": {"task": "saleor_flows.refresh_predictions", "schedule": crontab(hour=3, minute=17)},
    # Reports are exact without it (they add what is not folded yet); it keeps that tail short.
    "saleor-flows-rollup": {"task": "saleor_flows.rollup", "schedule": 60.0},
    # Nightly, off the hour: small batches, so it may run beside live traffic.
    "saleor-flows-prune": {"task": "saleor_flows.prune", "schedule": crontab(hour=4, minute=41)},
}


# --- the engine's way out: engine/dispatch.Workers on Celery ---------------------------------

PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0, "interval_max": 0}


def queue_for(kind: str) -> str | None:
    """The queue for "events" or "sends" work (the TASK_QUEUES setting); None: the app's default queue."""
    return (flows_setting("TASK_QUEUES") or {}).get(kind) or None


# On a Redis broker kombu keeps one list per priority (0, 3, 6, 9) and a worker takes from 0 first;
# a message without a priority is 0. The sweep's chunks of due steps go on the last list: on one
# shared queue a wake-up (and a consent email, and the host's own tasks) is then taken before a
# backlog of chunks, instead of behind all of it (bench/drain.py: 8.5 s median behind 5,000 due
# emails). Not set on other brokers: RabbitMQ counts the other way round, and only on queues
# declared for it.
SENDS_PRIORITY = 9


def redis_broker(app) -> bool:
    return _is_redis(app.conf.broker_url)


def _is_redis(url: str | None) -> bool:
    return (url or "").startswith(("redis://", "rediss://", "unix://"))


def routed(kind: str, *, behind: bool = False) -> dict:
    """``apply_async`` options that put a task of this kind on its queue (none: the default queue) and,
    ``behind``, on a Redis broker, after everything else on that queue."""
    options = {}
    queue = queue_for(kind)
    if queue:
        options["queue"] = queue
    if behind and redis_broker(run_executions.app):
        options["priority"] = SENDS_PRIORITY
    return options


def publish(task, *args, kind: str = "", behind: bool = False) -> bool:
    """Enqueue ``task``; False if the broker cannot take it (logged, never raised).

    Called after the commit, often in a shopper's request (a Saleor hook):
    raising here would break that request although the work is safely
    stored. One immediate retry covers a pooled connection that died with a
    Redis restart; Celery's default policy (three, 0.6 s) would add that much
    to every request while the broker is away.
    """
    try:
        task.apply_async(args, retry_policy=PUBLISH_RETRY, **routed(kind, behind=behind))
        return True
    except Exception as exc:  # kombu's OperationalError and whatever the transport raises
        logger.warning("saleor-flows: could not enqueue %s (%s: %s)", task.name, type(exc).__name__, exc)
        return False


def has_broker(app) -> bool:
    """False when tasks would run eagerly, in the caller (Celery eager mode, how Saleor runs without a broker URL)."""
    return not app.conf.task_always_eager


class WakeGuard:
    """One queued ``process_pending`` at a time, whatever the number of hooks: a Redis ``SET NX`` with a short expiry.

    A hook that finds the key set enqueues nothing (a task is queued and will
    see its event); the task clears the key before its first claim. If the
    task is lost, the key expires after ``SECONDS`` and the next event wakes
    another; the sweep hands out events older than EVENT_REQUEUE_SECONDS in
    any case. Needs a Redis broker; with another broker every transaction
    that records events enqueues one task.
    """

    SECONDS = 5
    TIMEOUT = 0.5  # seconds: a Redis that is away must not hold a shopper's request

    def __init__(self):
        self._clients = {}
        self._lock = threading.Lock()

    def _redis(self, app):
        url = app.conf.broker_url  # read once: each Celery setting read costs ~10 µs, on every hook
        if not _is_redis(url):
            return None
        client = self._clients.get(url)
        if client is None:
            import redis  # Celery's Redis transport needs it, so it is here whenever the broker is Redis

            with self._lock:
                client = self._clients.setdefault(url, redis.Redis.from_url(
                    url, socket_timeout=self.TIMEOUT, socket_connect_timeout=self.TIMEOUT))
        return client

    def _key(self) -> str:
        return f"saleor-flows:wake:events:{connection.settings_dict.get('NAME', '')}"

    def take(self, app) -> bool:
        """True when the caller should enqueue a task (no task is known to be queued, or no guard is possible)."""
        client = self._redis(app)
        if client is None:
            return True
        return bool(client.set(self._key(), "1", nx=True, ex=self.SECONDS))

    def clear(self, app):
        client = self._redis(app)
        if client is not None:
            try:
                client.delete(self._key())
            except Exception as exc:  # the key expires by itself
                logger.warning("saleor-flows: could not clear the wake-up guard (%s: %s)", type(exc).__name__, exc)


WAKE_GUARD = WakeGuard()


class CeleryWorkers(dispatch.Workers):
    """Work handed to the host's Celery app; events to the "events" queue, steps (sends) to the "sends" one."""

    def wakes_workers(self) -> bool:
        return has_broker(process_pending.app)

    def wake_event_processing(self) -> bool:
        app = process_pending.app
        if not has_broker(app):
            return True  # never process in the shopper's request: the next sweep takes the events (README)
        try:
            if not WAKE_GUARD.take(app):
                return True
        except Exception as exc:  # the broker's Redis is away: so is the broker; the sweep hands the events out
            logger.warning("saleor-flows: could not wake a worker (%s: %s)", type(exc).__name__, exc)
            return False
        if publish(process_pending, kind="events"):
            return True
        WAKE_GUARD.clear(app)  # no task is queued after all: let the next event try again
        return False

    def process_pending_events(self) -> bool:
        return publish(process_pending, kind="events")

    def run_executions(self, execution_ids: list[int]) -> bool:
        return publish(run_executions, execution_ids, kind="sends", behind=True)  # a sweep's share of due steps

    def send_consent_email(self, kind: str, contact_id: int, detail: dict) -> bool:
        return publish(send_consent_email, kind, contact_id, detail, kind="sends")

    def subscribe(self, fields: dict, proof: dict) -> bool:
        return publish(subscribe, fields, proof, kind="events")

    def run_simulation(self, simulation_id: int) -> bool:
        return publish(run_simulation, simulation_id)


WORKERS = CeleryWorkers()
dispatch.register(WORKERS)
