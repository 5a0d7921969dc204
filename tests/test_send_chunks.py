"""Send steps in chunks (runner._send_chunk): one SMTP connection per chunk, each message's own outcome,
and a worker killed in the middle of a chunk sends nothing twice and loses nothing it had not started."""

import email as email_lib
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core import mail

from saleor_flows import clock
from saleor_flows.channels.email import SEND_ID_HEADER
from saleor_flows.engine.runner import run_claimed
from saleor_flows.engine.sweep import claim_due, sweep
from saleor_flows.models import Message, StepExecution

from .faults import FaultyServer, serve_smtp
from .flowkit import chain, email, nxt

pytestmark = pytest.mark.django_db(transaction=True)

WORKER = """
import os, sys
import django
django.setup()
from django.conf import settings
settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", int(os.environ["SINK_PORT"])
settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "SEND_WINDOW": int(os.environ["SEND_WINDOW"])}
from saleor_flows.engine.runner import run_claimed
run_claimed([int(arg) for arg in sys.argv[1:]])
"""


def _wait_then_mail():
    return chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})), ("mail", nxt(email("Reminder"))),
                 ("after", {"type": "add_tag", "tag": "journey-went-on", "next": None}), kind="transactional")


def _send_id(raw: bytes) -> str:
    return email_lib.message_from_bytes(raw)[SEND_ID_HEADER]


def _due_sends(flows, count):
    flows.flow(_wait_then_mail())
    for i in range(count):
        flows.event("go", email=f"p{i}@example.com")
    clock.advance(timedelta(hours=1))
    return claim_due(1000)


def test_a_chunk_goes_over_one_smtp_connection_and_each_message_is_recorded(flows, settings):
    server = FaultyServer()
    connections = []

    async def handle_MAIL(smtp, session, envelope, address, options):
        connections.append(session.peer)
        envelope.mail_from = address
        return "250 OK"

    server.handle_MAIL = handle_MAIL
    server.rcpt_answers = ["250 OK"] * 3 + ["550 5.1.1 no such user"] + ["250 OK"] * 8
    controller = serve_smtp(server)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "SEND_WINDOW": 5}
    try:
        ids = _due_sends(flows, 12)
        run_claimed(ids)
    finally:
        controller.stop()
    assert len(connections) == 12
    # The refused recipient closed nothing: one connection before it, one after (a fresh one after any failure).
    assert len(set(connections)) == 2
    assert len(server.accepted) == 11
    states = dict(StepExecution.objects.filter(step_id="mail").values_list("enrolment__contact__email", "state"))
    assert states.pop("p3@example.com") == "failed"  # a definite "no": this message alone
    assert set(states.values()) == {"sent"}
    assert Message.objects.filter(status="sent").count() == 11
    # Each journey went on after its own send: the next step ran for every one of them.
    assert StepExecution.objects.filter(step_id="after", state="done").count() == 12


def test_worker_killed_in_the_middle_of_a_chunk_sends_nothing_twice_and_the_rest_later(flows, tmp_path):
    """30 sends in windows of 10; the SMTP server takes 14, and the worker is killed while the 15th waits for its answer.

    The first window was recorded `sent`. The second window was committed `sending` before its hand-off: the
    4 the server accepted, the one in flight and the 5 not yet tried become `ambiguous` and are never sent
    again. The third window was never started: still `claimed`, handed out again after the lease and sent.
    """
    ids = _due_sends(flows, 30)
    assert len(ids) == 30
    server = FaultyServer()
    controller = serve_smtp(server)
    env = dict(os.environ, SINK_PORT=str(controller.port), SEND_WINDOW="10", DJANGO_SETTINGS_MODULE="tests.settings",
               DATABASE_URL="postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**settings.DATABASES["default"]))
    worker = subprocess.Popen([sys.executable, "-c", WORKER, *map(str, ids)], env=env,
                              cwd=Path(__file__).resolve().parent.parent, stderr=subprocess.PIPE, text=True)

    def kill_at_the_15th(count):
        if count == 15:  # the message is in; its answer never comes: the worker dies waiting for it
            worker.send_signal(signal.SIGKILL)

    server.on_message = kill_at_the_15th
    try:
        worker.wait(timeout=120)
    finally:
        if worker.poll() is None:  # pragma: no cover - the worker hung: fail below, leave nothing behind
            worker.kill()
        controller.stop()
    assert worker.returncode == -signal.SIGKILL, worker.stderr.read()
    at_server = [_send_id(raw) for raw in server.accepted]
    assert len(at_server) == len(set(at_server)) == 15

    by_send_id = {str(m.send_id): m for m in Message.objects.all()}
    assert {by_send_id[s].status for s in at_server[:10]} == {"sent"}
    assert {by_send_id[s].status for s in at_server[10:]} == {"sending"}
    assert StepExecution.objects.filter(step_id="mail", state="sending").count() == 10
    assert StepExecution.objects.filter(step_id="mail", state="claimed").count() == 10

    # The sweep, after the leases: `sending` becomes ambiguous (never resent), `claimed` is handed out again.
    latest = max(StepExecution.objects.filter(step_id="mail").values_list("claimed_at", flat=True))
    clock.set_now(max(latest, clock.now()) + timedelta(minutes=11))
    mail.outbox = []
    report = sweep()
    assert report.ambiguous == 10
    sweep()  # the released claims, now pending and due
    later = [m.extra_headers[SEND_ID_HEADER] for m in mail.outbox]
    assert len(later) == 10
    assert not set(later) & set(at_server)  # nothing that may have left was sent again
    recipients = [m.to[0] for m in mail.outbox] + [email_lib.message_from_bytes(raw)["To"] for raw in server.accepted]
    assert len(recipients) == len(set(recipients)) == 25  # 5 never tried, in the window that died: ambiguous
    states = list(StepExecution.objects.filter(step_id="mail").values_list("state", flat=True))
    assert states.count("sent") == 20 and states.count("ambiguous") == 10
    assert {by_send_id[s].pk for s in at_server[10:]} <= set(
        Message.objects.filter(status="ambiguous").values_list("pk", flat=True))
    # No journey is stuck: every one went on past its send.
    assert StepExecution.objects.filter(step_id="after", state="done").count() == 30


def test_a_journey_that_cannot_go_on_after_its_send_does_not_leave_the_others_sent_unrecorded(flows):
    """A stored version whose send step has no `next` (saved by an older version, never validated):
    recording the window's sends together fails; each is then recorded alone, the others `sent`."""
    from saleor_flows.engine import definition as definitions
    from saleor_flows.models import FlowVersion

    flows.flow(_wait_then_mail(), slug="healthy")
    flows.flow(_wait_then_mail(), slug="broken")
    for i in range(4):
        flows.event("go", email=f"p{i}@example.com")
    version = FlowVersion.objects.get(flow__slug="broken")
    stored = version.definition
    del stored["steps"]["mail"]["next"]
    FlowVersion.objects.filter(pk=version.pk).update(definition=stored)
    definitions._version.cache_clear()
    clock.advance(timedelta(hours=1))
    run_claimed(claim_due(1000))
    states = StepExecution.objects.filter(step_id="mail").values_list("enrolment__flow__slug", "state")
    assert sorted(states) == [("broken", "sending")] * 4 + [("healthy", "sent")] * 4
    assert len(mail.outbox) == 8  # (the broken journey's messages left; the sweep reports them ambiguous)
    assert StepExecution.objects.filter(step_id="after", enrolment__flow__slug="healthy", state="done").count() == 4
