"""The sweep's claim on the due queue (``sweep.claim_due``, ``runner.take``, migration 0015).

The queue (``DueExecution``) holds one row per pending execution, kept by triggers; the sweep
leases rows there and the worker takes the executions ``pending -> claimed``. What a user
relies on: every pending execution is in the queue whatever path made it pending, nothing
is claimed twice (two sweeps on two connections at once), a lease whose task is lost or a
taken execution whose worker died still runs, a cancelled or rescheduled execution is not
run by a lease taken before, and the migration's backfill queues what was pending before.
"""

import importlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection

from saleor_flows import clock
from saleor_flows.engine import dispatch
from saleor_flows.engine.runner import finish_enrolment, run_claimed, take
from saleor_flows.engine.sweep import claim_due, leased_not_taken, sweep
from saleor_flows.models import DueExecution, Enrolment, Flow, StepExecution

from .flowkit import chain, email, nxt

pytestmark = pytest.mark.django_db(transaction=True)

LEASE = timedelta(seconds=300)  # CLAIM_LEASE_SECONDS

HOLDER = """
import sys
import django
django.setup()
from django.db import transaction
from saleor_flows.engine.sweep import claim_due
with transaction.atomic():
    print(" ".join(map(str, claim_due(int(sys.argv[1])))), flush=True)
    sys.stdin.readline()  # the claim's row locks are held until the test says so
"""


def _wait_then_mail():
    return chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})), ("mail", nxt(email("Reminder"))),
                 ("after", {"type": "add_tag", "tag": "went-on", "next": None}), kind="transactional")


def _queue() -> dict:
    return dict(DueExecution.objects.values_list("execution_id", "due_at"))


def _pending() -> dict:
    return dict(StepExecution.objects.filter(state="pending").values_list("id", "due_at"))


def _waits(flows, count) -> list[int]:
    flows.flow(_wait_then_mail())
    for i in range(count):
        flows.event("go", email=f"p{i}@example.com")
    return sorted(StepExecution.objects.filter(step_id="wait").values_list("id", flat=True))


def test_the_queue_follows_every_path_that_makes_an_execution_pending_or_ends_it(flows):
    waits = _waits(flows, 4)
    assert _queue() == _pending() and set(_queue()) == set(waits)  # scheduled: queued at their due time

    later = clock.now() + timedelta(days=2)
    StepExecution.objects.filter(pk=waits[0]).update(due_at=later)  # any path moving a due time
    assert _queue()[waits[0]] == later

    finish_enrolment(Enrolment.objects.get(executions=waits[1]), Enrolment.Status.EXITED, "goal_reached",
                     now=clock.now())  # cancellation: its pending step is skipped
    Enrolment.objects.filter(executions=waits[2]).delete()  # an erased journey
    assert set(_queue()) == {waits[0], waits[3]} and _queue() == _pending()

    Flow.objects.update(status=Flow.Status.PAUSED)
    clock.advance(timedelta(hours=1))
    sweep()  # claimed, taken, and put back to wait by the paused flow: pending again, queued at the recheck
    assert _queue() == _pending() and _queue()[waits[3]] == clock.now() + timedelta(minutes=15)
    Flow.objects.update(status=Flow.Status.LIVE)
    clock.advance(timedelta(minutes=15))
    sweep()
    assert [m.to for m in mail.outbox] == [["p3@example.com"]]
    assert _queue() == _pending() == {waits[0]: later}  # a finished step leaves the queue


def test_the_claim_takes_the_oldest_due_first_and_leases_them(flows):
    waits = _waits(flows, 3)
    for offset, execution_id in enumerate(waits):
        StepExecution.objects.filter(pk=execution_id).update(due_at=clock.now() - timedelta(minutes=3 - offset))
    assert claim_due(2) == waits[:2]
    # Leased in the queue, still pending on the execution: the worker takes them.
    assert {_queue()[i] for i in waits[:2]} == {clock.now() + LEASE}
    assert set(StepExecution.objects.filter(pk__in=waits).values_list("state", flat=True)) == {"pending"}
    assert leased_not_taken() == 2
    assert claim_due(10) == waits[2:]
    assert claim_due(10) == []
    assert leased_not_taken() == 3
    assert take(waits) == 3
    assert leased_not_taken() == 0
    assert set(StepExecution.objects.filter(pk__in=waits).values_list("state", flat=True)) == {"claimed"}
    assert _queue() == {}
    assert take(waits) == 0  # a task delivered twice takes nothing the second time


def test_two_sweeps_on_two_connections_at_once_never_claim_the_same_execution(flows):
    waits = _waits(flows, 100)
    StepExecution.objects.update(due_at=clock.now() - timedelta(days=3650))  # due by the real clock too
    env = {"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin",
           "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**settings.DATABASES["default"])}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, "60"], env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parent.parent)
    try:
        first = [int(i) for i in holder.stdout.readline().split()]
        assert len(first) == 60, holder.stderr.read() if holder.poll() is not None else first
        # The other sweep, while the first still holds its 60 rows locked: it skips them, without waiting.
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = '20s'")
        second = claim_due(100)
        with connection.cursor() as cursor:
            cursor.execute("SET statement_timeout = 0")
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=60) == 0, holder.stderr.read()
    finally:
        if holder.poll() is None:  # pragma: no cover - it hung: fail, leave nothing behind
            holder.kill()
    assert len(second) == 40 and not set(first) & set(second)
    assert sorted(first + second) == waits
    assert claim_due(100) == []  # all leased
    assert take(first) + take(second) == 100 and take(waits) == 0
    assert _queue() == {}


def test_a_leased_execution_cancelled_or_moved_before_the_worker_takes_it_is_not_run(flows):
    waits = _waits(flows, 2)
    clock.advance(timedelta(hours=1))
    ids = claim_due(10)
    assert ids == waits
    finish_enrolment(Enrolment.objects.get(executions=waits[0]), Enrolment.Status.EXITED, "unsubscribed",
                     now=clock.now())
    later = clock.now() + timedelta(days=1)
    StepExecution.objects.filter(pk=waits[1]).update(due_at=later)  # e.g. a hold moved it on
    run_claimed(ids)  # the task carrying the lease arrives
    assert mail.outbox == []
    assert StepExecution.objects.get(pk=waits[0]).state == "skipped"
    assert StepExecution.objects.get(pk=waits[1]).state == "pending" and _queue() == {waits[1]: later}
    clock.set_now(later)
    sweep()
    assert [m.to for m in mail.outbox] == [["p1@example.com"]]


def test_a_worker_that_died_after_taking_its_executions_loses_nothing(flows):
    waits = _waits(flows, 3)
    clock.advance(timedelta(hours=1))
    assert take(claim_due(10)) == 3  # taken: claimed, and then the worker died
    assert _queue() == {}
    sweep()
    assert mail.outbox == []  # within the lease
    clock.advance(LEASE + timedelta(minutes=1))
    report = sweep()  # released back to pending (so into the queue), then claimed and run in the same pass
    assert report.released == 3 and report.claimed == 3
    assert sorted(m.to[0] for m in mail.outbox) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert set(StepExecution.objects.filter(pk__in=waits).values_list("state", flat=True)) == {"done"}


def test_the_migration_backfill_queues_every_pending_execution_once(flows):
    _waits(flows, 5)
    clock.advance(timedelta(hours=1))
    run_claimed(claim_due(2))  # two journeys went on: their waits are done, not pending
    assert len(_pending()) == 3
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE saleor_flows_dueexecution")  # as before migration 0015
    backfill_queue = importlib.import_module("saleor_flows.migrations.0016_due_queue_backfill").backfill_queue
    backfill_queue(connection, batch=2)  # batches smaller than the rows: the walk goes on past each
    assert _queue() == _pending()
    moved = clock.now() + timedelta(days=3)
    StepExecution.objects.filter(state="pending").update(due_at=moved)  # kept by the trigger meanwhile
    backfill_queue(connection, batch=2)  # run again: nothing doubled, nothing put back
    assert _queue() == _pending() and set(_queue().values()) == {moved}


class _WaitingBroker(dispatch.Workers):
    """A broker whose tasks no worker has started yet: the chunks the sweep hands out wait here."""

    def __init__(self):
        self.chunks: list[list[int]] = []

    def run_executions(self, execution_ids):
        self.chunks.append(list(execution_ids))
        return True

    def process_pending_events(self):
        return True

    def start_one(self):
        """A worker starts the oldest waiting task."""
        run_claimed(self.chunks.pop(0))


@pytest.fixture
def waiting_broker():
    broker = _WaitingBroker()
    before = list(dispatch._workers)
    dispatch.register(broker)
    try:
        yield broker
    finally:
        dispatch._workers[:] = before


def test_the_sweep_leases_no_further_ahead_of_the_workers_than_its_lead(flows, settings, waiting_broker):
    """A backlog the workers need longer than the lease for: each sweep tops the leases not started up to
    SWEEP_MAX_LEASED and no further, so the steps whose tasks wait in the broker are not leased and queued
    again by every sweep; a lease whose task is lost still runs out and the step is sent."""
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "SWEEP_MAX_LEASED": 4, "SWEEP_BATCH_SIZE": 3,
                             "SWEEP_CHUNK_SIZE": 2}
    waits = _waits(flows, 10)
    clock.advance(timedelta(hours=1))  # all 10 waits are due
    with dispatch.forced("celery"):  # the sweep hands the due steps to the broker's waiting tasks
        _lead_then_lost_task(waits, waiting_broker)


def _lead_then_lost_task(waits, waiting_broker):
    sweep()
    queued = lambda: sorted(i for chunk in waiting_broker.chunks for i in chunk)  # noqa: E731
    assert len(queued()) == 4 and leased_not_taken(clock.now()) == 4  # the oldest 4, in chunks of 2
    sweep()
    sweep()  # the workers have not started: nothing more is leased, nothing queued twice
    assert len(queued()) == 4 and len(set(queued())) == 4

    waiting_broker.start_one()  # a worker takes a chunk of 2 and sends them
    assert len(mail.outbox) == 2 and leased_not_taken(clock.now()) == 2
    sweep()  # the lead is topped up by the 2 taken
    assert len(queued()) == 4 and leased_not_taken(clock.now()) == 4

    lost = waiting_broker.chunks.pop(0)  # a task lost with its worker
    clock.advance(timedelta(seconds=301))  # CLAIM_LEASE_SECONDS: every running lease has run out
    assert leased_not_taken(clock.now()) == 0 and leased_not_taken() == 4
    sweep()  # a new lead (the steps due longest first: those never leased), the late task still queued
    assert leased_not_taken(clock.now()) == 4 and not set(lost) & set(queued())
    while waiting_broker.chunks or StepExecution.objects.filter(state="pending").exists():
        if not waiting_broker.chunks:
            sweep()
        waiting_broker.start_one()  # the late duplicate of a task takes nothing: each step is sent once
    # Every step sent once, the lost task's too (leased again when the sweep reached them).
    assert sorted(m.to[0] for m in mail.outbox) == sorted(f"p{i}@example.com" for i in range(10))
    assert set(StepExecution.objects.filter(pk__in=waits).values_list("state", flat=True)) == {"done"}
