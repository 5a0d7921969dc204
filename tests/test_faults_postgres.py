"""Faults (issue 11, item 19): PostgreSQL restarts while a Celery worker is sending.

The worker's connections go through a TCP proxy in this test (tests/faults.py)
that cuts them all and turns new ones away for a few seconds: what a restart
of PostgreSQL looks like to its clients, without restarting the machine's
shared cluster (other runs use it) and without the seconds an initdb costs.
The test's own connection goes straight to PostgreSQL, as a second server
process of the shop would.

What a user checks: every due email arrives exactly once (real SMTP server),
and no step is left claimed or in `sending` (nothing waits for a lease).
"""

import email as email_lib
import threading
import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_prerun
from django.db import connection, connections

from saleor_flows import clock, tasks
from saleor_flows.engine import dispatch
from saleor_flows.models import Message, StepExecution

from .celery_app import app
from .faults import CuttableProxy, FaultyServer, serve_smtp, wait_until
from .flowkit import chain, email, nxt

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.celery]

CONTACTS = 120
RESTART_SECONDS = 3


@pytest.fixture
def smtp(settings):
    handler = FaultyServer()
    handler.pause = 0.02  # a real server's pace: the sends take a few seconds, the restart falls among them
    controller = serve_smtp(handler)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield handler
    controller.stop()


@pytest.fixture
def database_proxy():
    direct = connection.settings_dict
    proxy = CuttableProxy(direct["HOST"] or "127.0.0.1", int(direct["PORT"] or 5432))

    def through_the_proxy(**kwargs):
        # Runs in the worker's thread before each task: only the worker's connection is rerouted.
        worker_db = connections["default"]
        if worker_db.settings_dict["PORT"] != str(proxy.port):
            worker_db.close()
            worker_db.settings_dict = {**worker_db.settings_dict, "PORT": str(proxy.port)}

    task_prerun.connect(through_the_proxy, weak=False)
    yield proxy
    task_prerun.disconnect(through_the_proxy)
    proxy.close()


def _recipients(smtp):
    return [email_lib.message_from_bytes(content)["To"] for content in smtp.accepted]


def test_a_postgresql_restart_while_the_worker_sends_loses_nothing_and_sends_nothing_twice(
        flows, smtp, database_proxy):
    flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})), ("mail", email("Your order")),
                     kind="transactional"))
    for n in range(CONTACTS):
        flows.event("go", email=f"shopper{n}@example.com")
    clock.advance(timedelta(hours=1))  # all the emails fall due at once

    with dispatch.forced("celery"), start_worker(app, pool="solo", perform_ping_check=False,
                                                  loglevel="WARNING", shutdown_timeout=30):
        restarted = threading.Event()

        def restart_postgresql(received: int):
            # The worst moment: the SMTP server has this message, the worker has not recorded it yet.
            if received == CONTACTS // 3:
                database_proxy.refuse = True
                database_proxy.cut()
                restarted.set()

        smtp.on_message = restart_postgresql
        tasks.sweep.delay()  # beat's tick: claims every due step and hands them to the worker in chunks
        assert restarted.wait(timeout=30)
        time.sleep(RESTART_SECONDS)
        database_proxy.refuse = False  # PostgreSQL is back

        def all_sent():
            tasks.sweep.delay()  # beat keeps ticking (it finds nothing due: no lease has run out)
            return StepExecution.objects.filter(step_id="mail", state="sent").count() == CONTACTS

        assert wait_until(all_sent, timeout=40, interval=1)
        time.sleep(0.5)  # give a duplicate the chance to show up

    recipients = _recipients(smtp)
    assert len(recipients) == CONTACTS
    assert sorted(recipients) == sorted(f"shopper{n}@example.com" for n in range(CONTACTS))
    assert Message.objects.filter(status="sent").count() == CONTACTS
    assert not StepExecution.objects.filter(state__in=["claimed", "sending", "pending", "ambiguous"]).exists()
    assert database_proxy.connections > 1  # the worker did reconnect
