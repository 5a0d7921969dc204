"""Celery tasks: thin wrappers that hand ids to the engine.

They are ``shared_task``s, so they run on the host's Celery app (Saleor
autodiscovers ``tasks.py`` in installed apps). Tasks are acknowledged late:
a task lost with its worker is delivered again, which is safe because every
state change in the engine is conditional.
"""

import contextlib

from celery import shared_task
from celery.schedules import crontab

from .db import DATABASE_AWAY, drop_broken_connection
from .engine import processing, runner, sweep as sweeping

try:
    # Inside Saleor, task code must say it means to write to the primary database.
    from saleor.core.db.connection import allow_writer
except ImportError:
    allow_writer = contextlib.nullcontext

TASK_OPTIONS = {"acks_late": True, "reject_on_worker_lost": True, "ignore_result": True}
# A database restart under a running task: try again after 1, 2, 4 … 60 s (about 6 min in all)
# rather than leave its claims to the lease. Short countdowns only: no wait is parked in Celery.
DATABASE_RETRIES = 12


def _backoff(retries: int) -> int:
    return min(60, 2 ** retries)


@shared_task(name="saleor_flows.process_event", bind=True, **TASK_OPTIONS)
def process_event(self, event_id: int):
    with allow_writer():
        try:
            processing.process_event_and_continue(event_id)
        except runner.Interrupted as stopped:  # the event is processed; the steps it made due still wait
            run_executions.apply_async((stopped.remaining,), countdown=_backoff(0))
        except DATABASE_AWAY as exc:  # rolled back: the event is still pending
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
