"""The engine on a real Redis broker with a real Celery worker."""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from saleor_flows import clock, tasks
from saleor_flows.engine import dispatch
from saleor_flows.events import record_event
from saleor_flows.models import Enrolment, Event

from .celery_app import app
from .flowkit import chain, email, nxt

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]


def _until(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.fixture
def worker():
    app.control.purge()
    tasks.WAKE_GUARD.clear(app)  # a purged process_pending no longer needs waking up for (it is gone)
    with dispatch.forced("celery"), start_worker(app, pool="solo", perform_ping_check=False,
                                                  loglevel="WARNING", shutdown_timeout=30):
        yield app


def test_event_to_email_through_the_broker_and_a_worker(flows, worker):
    flows.flow(chain("go", ("hello", nxt(email("Hello now"))), ("wait", nxt({"type": "wait", "duration": {"hours": 2}})),
                     ("later", email("Two hours later")), kind="transactional"))
    with dispatch.forced("celery"):
        recorded = record_event("go", email="jane@example.com", dedupe_key="go:1")
        # Saleor and App webhooks deliver at least once: the same event again, and its task twice more.
        record_event("go", email="jane@example.com", dedupe_key="go:1")
        tasks.process_event.delay(recorded.id)
        tasks.process_event.delay(recorded.id)
    assert _until(lambda: len(mail.outbox) == 1)
    assert Event.objects.get().status == "processed"

    clock.advance(timedelta(hours=2))
    tasks.sweep.delay()  # what beat runs; the claimed steps go to the worker as tasks
    assert _until(lambda: len(mail.outbox) == 2)
    time.sleep(0.5)  # give any duplicate a chance to show up
    assert [m.subject for m in mail.outbox] == ["Hello now", "Two hours later"]
    assert Enrolment.objects.get().status == "completed"


def test_bad_event_does_not_crash_the_worker(flows, worker):
    flows.flow(chain("go", ("hello", email("Hello")), kind="transactional"))
    with dispatch.forced("celery"):
        record_event("order_created", payload={"no": "identity"})
        record_event("go", email="jane@example.com")
    assert _until(lambda: len(mail.outbox) == 1)
    assert Event.objects.filter(status="dead").count() == 1
