"""How recorded events reach a worker (issue 10, items 3 and 4), on a real Redis broker and a real Celery worker.

A hook must cost little: events are not enqueued one task each; one
``process_pending`` task is woken per transaction, and at most one is queued
at a time (a Redis ``SET NX`` guard), and it takes every pending event.
Without a broker (Celery eager) nothing is processed in the caller: the sweep
takes the events. With ``TASK_QUEUES`` set, events and sends go to their own
queues; without it, everything stays on the default queue.
"""

from datetime import timedelta

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from django.conf import settings as django_settings
from django.core import mail
from django.db import transaction

from saleor_flows import clock, tasks
from saleor_flows.engine import dispatch
from saleor_flows.engine.sweep import sweep
from saleor_flows.events import record_event
from saleor_flows.models import DueExecution, Event, StepExecution

from .celery_app import app
from .flowkit import chain, email, nxt
from .test_celery_worker import _until
from .test_faults_redis import _use_broker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]

DEFAULT_QUEUE = app.conf.task_default_queue


@pytest.fixture
def broker():
    """The test broker, emptied: the queues are Redis lists we can count."""
    _use_broker(django_settings.CELERY_BROKER_URL)  # fresh pooled connections, whatever an earlier test left
    app.control.purge()
    client = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    for queue in (DEFAULT_QUEUE, "test-flows-events", "test-flows-sends"):
        client.delete(*_lists(queue))
    tasks.WAKE_GUARD.clear(app)
    yield client
    tasks.WAKE_GUARD.clear(app)
    # A worker started with queues= narrows the app's own queue set (Celery selects them in place), and
    # publishing to a new queue adds it: start the next test with the app's queues as configured.
    vars(app.amqp).pop("queues", None)


def _lists(queue: str) -> list[str]:
    """A queue's Redis lists, in the order a worker takes from them: kombu keeps one per priority (0, 3, 6, 9)."""
    return [queue] + [f"{queue}\x06\x16{priority}" for priority in (3, 6, 9)]


def _queued(client, queue: str) -> list[str]:
    """The tasks waiting on a queue, the next one a worker takes first."""
    import json

    return [json.loads(message)["headers"]["task"] for name in _lists(queue)
            for message in reversed(client.lrange(name, 0, -1))]


def _worker(**options):
    return start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30,
                        **options)


def test_many_events_wake_one_task_and_it_processes_them_all(flows, broker):
    flows.flow(chain("go", ("hello", email("Hello {{ event.n }}")), kind="transactional"))
    with dispatch.forced("celery"):
        with transaction.atomic():  # one transaction: one wake-up
            for n in range(5):
                record_event("go", email=f"a{n}@example.com", payload={"n": n})
        for n in range(5):  # five more transactions while that task waits: no new task
            record_event("go", email=f"b{n}@example.com", payload={"n": n})
    assert _queued(broker, DEFAULT_QUEUE) == ["saleor_flows.process_pending"]

    with dispatch.forced("celery"), _worker():
        assert _until(lambda: len(mail.outbox) == 10)
        # The task cleared the guard before it looked: the next event wakes a worker again.
        record_event("go", email="later@example.com", payload={"n": "later"})
        assert _until(lambda: len(mail.outbox) == 11)
    assert not Event.objects.exclude(status="processed").exists()
    assert len({m.to[0] for m in mail.outbox}) == 11


def test_a_rolled_back_savepoint_does_not_take_the_wake_up_of_the_transaction_away(flows, broker):
    flows.flow(chain("go", ("hello", email("Hello")), kind="transactional"))
    with dispatch.forced("celery"), transaction.atomic():
        try:
            with transaction.atomic():
                record_event("go", email="gone@example.com")
                raise RuntimeError("the savepoint is rolled back, its event and its wake-up with it")
        except RuntimeError:
            pass
        record_event("go", email="kept@example.com")
    assert _queued(broker, DEFAULT_QUEUE) == ["saleor_flows.process_pending"]
    assert list(Event.objects.values_list("email", flat=True)) == ["kept@example.com"]


def test_without_a_broker_nothing_runs_in_the_request_and_the_sweep_takes_the_events(flows, broker):
    """Celery eager (Saleor without CELERY_BROKER_URL): the shopper's request only stores the event."""
    flows.flow(chain("go", ("hello", email("Hello")), kind="transactional"))
    app.conf.task_always_eager = True
    try:
        with dispatch.forced("celery"):
            record_event("go", email="jane@example.com")
            assert Event.objects.get().status == "pending" and mail.outbox == []
            assert _queued(broker, DEFAULT_QUEUE) == []
            clock.advance(timedelta(seconds=10))  # the next tick: no need to wait for EVENT_REQUEUE_SECONDS
            report = sweep()  # where beat or `manage.py flows_sweep` runs it, never in a request
    finally:
        app.conf.task_always_eager = False
    assert report.requeued_events == 1
    assert Event.objects.get().status == "processed" and len(mail.outbox) == 1


def test_task_queues_put_events_and_sends_on_their_own_queues(flows, broker, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS,
                             "TASK_QUEUES": {"events": "test-flows-events", "sends": "test-flows-sends"}}
    flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})), ("later", email("Later")),
                     kind="transactional"))
    with dispatch.forced("celery"):
        record_event("go", email="jane@example.com")
        assert _queued(broker, "test-flows-events") == ["saleor_flows.process_pending"]
        assert _queued(broker, DEFAULT_QUEUE) == []
        # A worker on the default queue alone (a plain `celery worker`) never sees it: why TASK_QUEUES is
        # off unless set (docs/operations.md). (Named: in this process the producer added the queue to the app.)
        with _worker(queues=[DEFAULT_QUEUE]):
            assert not _until(lambda: Event.objects.get().status == "processed", timeout=2)
        with _worker(queues=["test-flows-events"]):
            assert _until(lambda: Event.objects.get().status == "processed")
        clock.advance(timedelta(hours=1))
        sweep()
        assert _queued(broker, "test-flows-sends") == ["saleor_flows.run_executions"]
        # Leased by the sweep, not yet taken by a worker: still pending, due again only after the lease.
        assert StepExecution.objects.get(step_id="wait").state == "pending"
        assert DueExecution.objects.get().due_at > clock.now()
        with _worker(queues=["test-flows-sends"]):
            assert _until(lambda: len(mail.outbox) == 1)
    assert [m.subject for m in mail.outbox] == ["Later"]


def test_on_one_queue_a_wake_up_is_taken_before_the_send_chunks_queued_ahead_of_it(flows, broker, settings):
    """A big send must not hold events back (bench/drain.py): on a Redis broker the sweep's chunks go
    behind everything else on the queue, so the welcome email of an event recorded after them goes first."""
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "SWEEP_CHUNK_SIZE": 1}
    flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})), ("later", email("Later")),
                     kind="transactional"))
    flows.flow(chain("hello", ("welcome", email("Welcome")), kind="transactional"))
    with dispatch.forced("inline"):
        for n in range(3):
            record_event("go", email=f"shopper{n}@example.com")
    clock.advance(timedelta(hours=1))
    with dispatch.forced("celery"):
        sweep()  # three due sends, a chunk each
        record_event("hello", email="new@example.com")  # then a shopper signs up
        assert _queued(broker, DEFAULT_QUEUE) == ["saleor_flows.process_pending"] + ["saleor_flows.run_executions"] * 3
        with _worker():
            assert _until(lambda: len(mail.outbox) == 4)
    assert [m.subject for m in mail.outbox] == ["Welcome", "Later", "Later", "Later"]
