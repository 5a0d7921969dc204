"""Faults (issue 11, item 19): the Celery broker (Redis) goes away while events keep arriving.

A private redis-server on its own port is the broker of this test's producer
and of a real Celery worker; the test stops it for OUTAGE_SECONDS and starts
it again. The machine's shared Redis is never touched.

The outage lasts 10 s, not the issue's 60 s: nothing in the code depends on
how long Redis is away (an enqueue fails the same way after 1 s or after 60),
what matters is that events arrive while it is down and that the worker and
the producer reconnect when it is back; 10 s keeps the suite fast.
"""

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from saleor_flows import clock, tasks
from saleor_flows.engine import dispatch
from saleor_flows.events import record_event
from saleor_flows.models import Event

from .celery_app import app
from .faults import RedisServer, wait_until
from .flowkit import chain, email
from .test_consent import configure, post, shop  # noqa: F401  (shop is a fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]

OUTAGE_SECONDS = 10
EVENTS_DURING_OUTAGE = 5


def _use_broker(url: str):
    """Point the test Celery app (producer and worker) at ``url``, dropping pooled connections."""
    from kombu import pools

    app.conf["CELERY_BROKER_URL"] = url  # the app reads Django settings under the CELERY namespace
    # Close and forget every pool: kombu keeps pools per URL, and a pool closed but still registered
    # would be handed to the next test on that URL ("Acquire on closed pool").
    pools.reset()
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def broker():
    server = RedisServer()
    server.start()
    previous = app.conf.broker_url
    _use_broker(server.url)
    yield server
    server.stop()
    _use_broker(previous)


def test_events_during_a_redis_outage_are_kept_and_all_processed_once_it_is_back(flows, broker):
    flows.flow(chain("go", ("hello", email("Hello {{ event.n }}")), kind="transactional"))
    with dispatch.forced("celery"), start_worker(app, pool="solo", perform_ping_check=False,
                                                  loglevel="WARNING", shutdown_timeout=30):
        record_event("go", email="before@example.com", payload={"n": "before"})
        assert wait_until(lambda: len(mail.outbox) == 1)

        broker.stop()
        down_since = time.monotonic()
        slowest = 0.0
        for n in range(EVENTS_DURING_OUTAGE):
            started = time.monotonic()
            recorded = record_event("go", email=f"shopper{n}@example.com", payload={"n": n})  # must not raise
            slowest = max(slowest, time.monotonic() - started)
            assert recorded.id is not None
            time.sleep((OUTAGE_SECONDS - 2) / EVENTS_DURING_OUTAGE)
        # Nothing could reach the worker: every event is stored and waits.
        assert Event.objects.filter(status="pending").count() == EVENTS_DURING_OUTAGE
        assert len(mail.outbox) == 1
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_since)))

        broker.start()
        # No event arrives to wake a worker: the sweep finds the events of the outage and hands them out.
        clock.advance(timedelta(seconds=61))  # past EVENT_REQUEUE_SECONDS
        tasks.sweep.delay()  # what beat sends on its next tick
        assert wait_until(lambda: len(mail.outbox) == EVENTS_DURING_OUTAGE + 1, timeout=30)
        # Producer and worker reconnect by themselves: a new event wakes a worker again.
        record_event("go", email="after@example.com", payload={"n": "after"})
        assert wait_until(lambda: len(mail.outbox) == EVENTS_DURING_OUTAGE + 2, timeout=30)
        time.sleep(0.5)  # give a duplicate the chance to show up

    # The shopper's request is not held up while the broker is away (a few ms; Celery's default
    # publish retries alone would add 0.6 s to each).
    assert slowest < 0.5
    assert not Event.objects.exclude(status="processed").exists()
    received = sorted(m.to[0] for m in mail.outbox)
    assert received == sorted(["before@example.com", "after@example.com",
                               *(f"shopper{n}@example.com" for n in range(EVENTS_DURING_OUTAGE))])


def test_a_signup_while_redis_is_down_answers_and_its_confirmation_email_still_goes_out(shop, client, settings,
                                                                                        broker):
    """No sweep looks for a lost confirmation email, so it is sent in place when the broker is away."""
    configure(settings, DOUBLE_OPT_IN=True)
    broker.stop()
    with dispatch.forced("celery"):
        response = post(client, {"email": "jana@example.com"})
    assert response.status_code == 202 and response.json()["confirmation_required"] is True
    (confirmation,) = mail.outbox
    assert confirmation.to == ["jana@example.com"] and "/confirm/" in confirmation.body
