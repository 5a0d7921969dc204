"""No duplicate send: concurrent sweeps, tasks delivered twice, a worker that dies mid-send."""

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail
from django.db import connection

from saleor_flows import clock, tasks
from saleor_flows.engine.sweep import sweep
from saleor_flows.models import Enrolment, Event, Message, StepExecution

from .flowkit import chain, email, nxt

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_then_mail():
    return chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})), ("mail", nxt(email("Reminder"))),
                 ("after", {"type": "add_tag", "tag": "journey-went-on", "next": None}), kind="transactional")


def test_two_sweeps_racing_on_the_same_due_rows_send_each_once(flows):
    flows.flow(_wait_then_mail())
    for i in range(300):
        flows.event("go", email=f"p{i}@example.com")
    clock.advance(timedelta(hours=1))
    barrier = threading.Barrier(3)
    errors = []

    def run():
        try:
            barrier.wait()
            sweep(batch_size=20)  # small batches: the two sweeps interleave many times
        except Exception as exc:  # pragma: no cover - shown in the assertion below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    recipients = [m.to[0] for m in mail.outbox]
    assert len(recipients) == 300 and len(set(recipients)) == 300
    assert Message.objects.count() == 300
    assert StepExecution.objects.filter(step_id="mail", state="sent").count() == 300


def test_a_task_delivered_twice_does_nothing_the_second_time(flows):
    flows.flow(_wait_then_mail())
    recorded = flows.event("go", email="jane@example.com")
    tasks.process_event(recorded.id)  # the event's task, delivered again
    clock.advance(timedelta(hours=1))
    from saleor_flows.engine.sweep import claim_due

    ids = claim_due(100)
    tasks.run_executions(ids)
    tasks.run_executions(ids)  # redelivered after a lost ack
    assert len(mail.outbox) == 1
    assert Enrolment.objects.count() == 1


def test_worker_dying_between_sending_and_sent_leaves_an_ambiguous_record_never_resent(flows, tmp_path):
    flows.flow(_wait_then_mail())
    flows.event("go", email="jane@example.com")
    # Make the send due by the real clock, where the crashing worker process lives.
    StepExecution.objects.filter(step_id="wait").update(due_at=clock.now() - timedelta(days=3650))
    env = dict(os.environ, FLOWS_TEST_EMAIL_BACKEND="tests.crash_backend.EmailBackend",
               DATABASE_URL="postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**settings.DATABASES["default"]),
               DJANGO_SETTINGS_MODULE="tests.settings")
    worker = subprocess.run([sys.executable, "-m", "django", "flows_sweep"], env=env,
                            cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=60)
    assert worker.returncode == 17, worker.stderr  # it died inside the mail backend
    execution = StepExecution.objects.get(step_id="mail")
    assert execution.state == "sending"
    assert Message.objects.get().status == "sending"

    clock.set_now(execution.claimed_at + timedelta(minutes=11))  # past the sending lease
    report = sweep()
    assert report.ambiguous == 1
    sweep()
    assert mail.outbox == []  # never resent
    assert StepExecution.objects.get(step_id="mail").state == "ambiguous"
    assert Message.objects.get().status == "ambiguous"
    assert "ambiguous" in flows.trail_kinds("jane@example.com")
    assert Enrolment.objects.get().status == "completed"  # the contact is not stuck


def test_lost_claim_is_handed_out_again(flows):
    flows.flow(_wait_then_mail())
    flows.event("go", email="jane@example.com")
    clock.advance(timedelta(hours=1))
    from saleor_flows.engine.sweep import claim_due

    assert len(claim_due(100)) == 1  # claimed, but the task carrying it is lost
    sweep()
    assert mail.outbox == []  # still within the lease
    clock.advance(timedelta(minutes=6))
    sweep()
    assert len(mail.outbox) == 1


def test_lost_event_enqueue_is_repaired_by_the_sweep(flows):
    """The broker drops the enqueue (the outside world failing): the sweep enqueues the event again."""
    from unittest import mock

    from saleor_flows.engine import dispatch
    from saleor_flows.events import record_event

    flows.flow(chain("go", ("mail", email("Hi")), kind="transactional"))
    try:
        with dispatch.forced("celery"), mock.patch.object(tasks.process_pending, "apply_async") as lost:
            record_event("go", email="jane@example.com")
        assert lost.called and Event.objects.get().status == "pending"
        clock.advance(timedelta(minutes=2))
        report = sweep()
        assert report.requeued_events == 1
        assert len(mail.outbox) == 1
    finally:
        tasks.WAKE_GUARD.clear(tasks.process_pending.app)  # the lost task never cleared it: don't slow the next test
