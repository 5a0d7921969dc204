"""The sweep: the one loop that turns due times in PostgreSQL into work.

It claims due executions in batches with ``SELECT … FOR UPDATE SKIP LOCKED``
(many sweeps can run at once, each gets different rows, none waits), leases
them in the narrow due queue and hands their ids to workers, which take them
``pending -> claimed``. It also repairs what crashes
leave behind: claims whose task never ran are released, sends stuck in
``sending`` become ``ambiguous`` (reported, never resent), and events whose
enqueue was lost are enqueued again.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import connection, transaction
from django.db.models.functions import Least
from django.db.models import Value

from .. import clock
from ..conf import flows_setting
from ..models import DueExecution, Event, StepExecution
from . import dispatch
from .derived import fire_due_timers
from .runner import mark_ambiguous

State = StepExecution.State
STALE_EVENTS_BATCH = 1000


@dataclass
class SweepReport:
    claimed: int = 0
    released: int = 0
    ambiguous: int = 0
    requeued_events: int = 0
    timers_fired: int = 0


def claim_due(limit: int, now=None) -> list[int]:
    """Claim up to ``limit`` due executions, oldest due first, in one statement; returns their ids.

    On PostgreSQL the claim is a lease in the narrow queue ``DueExecution`` (kept by triggers,
    migration 0015): the first ``limit`` due rows, locked with ``SKIP LOCKED`` (many sweeps
    can run at once, each gets different rows, none waits), get ``due_at`` moved on by
    CLAIM_LEASE_SECONDS. The wide execution rows are not written here: the worker takes them
    ``pending -> claimed`` (``runner.take``, the first thing ``run_claimed`` does), which
    removes their queue rows. A lease whose task is lost runs out and the row is due again.
    Cost: a read of the queue's ``due_at`` index stopping at ``limit`` and ``limit`` 16-byte
    row updates, whatever the backlog (docs/performance.md, session 5).

    The demo's SQLite (one writer at a time, no SKIP LOCKED, no triggers) claims on the
    execution rows themselves.
    """
    now = now or clock.now()
    if connection.vendor != "postgresql":
        with transaction.atomic():
            ids = list(StepExecution.objects.filter(state=State.PENDING, due_at__lte=now)
                       .order_by("due_at").values_list("id", flat=True)[:limit])
            StepExecution.objects.filter(pk__in=ids, state=State.PENDING).update(state=State.CLAIMED, claimed_at=now)
        return sorted(ids)
    queue = DueExecution._meta.db_table
    lease_until = now + timedelta(seconds=flows_setting("CLAIM_LEASE_SECONDS"))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {queue} SET due_at = %s, leased = true WHERE execution_id IN ("
            f" SELECT execution_id FROM {queue} WHERE due_at <= %s ORDER BY due_at LIMIT %s"
            " FOR UPDATE SKIP LOCKED) RETURNING execution_id",
            [lease_until, now, limit])
        return sorted(row[0] for row in cursor.fetchall())


def leased_not_taken(now=None) -> int:
    """How many executions a sweep has leased that no worker has taken yet (PostgreSQL; 0 on SQLite).

    With ``now``, only the leases still running then: tasks waiting in the broker (or being
    started). Without, also the leases that ran out (their tasks lost or late; the steps are due
    again). Counted on the leases' own partial index, whatever the backlog. Used by the sweep to
    lease no more than SWEEP_MAX_LEASED ahead of the workers, by the demo to wait for its worker,
    and by operators to see lost tasks (docs/operations.md).
    """
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {DueExecution._meta.db_table} WHERE leased"
                       + ("" if now is None else " AND due_at > %s"), [] if now is None else [now])
        return cursor.fetchone()[0]


def release_stale_claims(now) -> int:
    """Taken executions whose worker died before running them go back to pending (and so into the queue).

    A lease whose task never reached a worker needs nothing here: its queue row is due again
    when the lease runs out (``claim_due``).
    """
    cutoff = now - timedelta(seconds=flows_setting("CLAIM_LEASE_SECONDS"))
    return StepExecution.objects.filter(state=State.CLAIMED, claimed_at__lt=cutoff).update(
        state=State.PENDING, claimed_at=None, due_at=Least("due_at", Value(now)))


def resolve_stale_sends(now) -> int:
    cutoff = now - timedelta(seconds=flows_setting("SENDING_LEASE_SECONDS"))
    stale = list(StepExecution.objects.filter(state=State.SENDING, claimed_at__lt=cutoff).values_list("id", flat=True)[:1000])
    return sum(1 for execution_id in stale if mark_ambiguous(execution_id, now=now))


def requeue_stale_events(now) -> int:
    """Events whose wake-up was lost: pending longer than EVENT_REQUEUE_SECONDS (all of them when no worker is woken)."""
    cutoff = now if dispatch.events_wait_for_the_sweep() else now - timedelta(seconds=flows_setting("EVENT_REQUEUE_SECONDS"))
    ids = list(Event.objects.filter(status=Event.Status.PENDING, received_at__lte=cutoff)
               .order_by("received_at").values_list("id", flat=True)[:STALE_EVENTS_BATCH])
    dispatch.events_pending(ids)
    return len(ids)


def sweep(*, batch_size: int | None = None, max_batches: int | None = None) -> SweepReport:
    """One pass: repair, then claim and dispatch what is due, batch by batch, up to SWEEP_MAX_LEASED ahead of the workers."""
    now = clock.now()
    batch_size = batch_size or flows_setting("SWEEP_BATCH_SIZE")
    report = SweepReport(
        ambiguous=resolve_stale_sends(now),
        released=release_stale_claims(now),
        timers_fired=fire_due_timers(now),  # before the requeue: without a broker it takes their events too
    )
    report.requeued_events = requeue_stale_events(now)
    # Leases still running are steps handed to workers that have not started them: lease at most
    # SWEEP_MAX_LEASED ahead, so a backlog that takes longer than the lease is not leased again
    # (and its chunks queued twice) while its first tasks still wait in the broker.
    room = flows_setting("SWEEP_MAX_LEASED") - leased_not_taken(now)
    batches = 0
    while room > 0:
        ids = claim_due(min(batch_size, room), now)
        report.claimed += len(ids)
        room -= len(ids)
        dispatch.executions_claimed(ids)
        batches += 1
        if len(ids) < batch_size or (max_batches and batches >= max_batches):
            break
    return report
