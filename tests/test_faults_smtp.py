"""Faults (issue 11, item 19): a real SMTP server (aiosmtpd) that refuses, stalls or hangs up.

What a user checks: a temporary "no" is tried again later with a growing
pause, then the step fails with the server's answer as its reason; a
permanent "no" fails at once; and a message the server may already have
taken is never sent a second time (it is marked ambiguous instead).
"""

import socket
import threading
import time

import pytest

from saleor_flows.models import Message, StepExecution

from .faults import FaultyServer, free_port, serve_smtp
from .flowkit import chain, email


@pytest.fixture
def server(flows, settings):
    handler = FaultyServer()
    controller = serve_smtp(handler)
    port = controller.port
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "SMTP_TIMEOUT_SECONDS": 1}
    handler.port = port
    yield handler
    controller.stop()


def _send_one(flows):
    flows.flow(chain("go", ("mail", email("Your receipt")), kind="transactional"))
    flows.event("go", email="jane@example.com")
    return StepExecution.objects.get()


def _state():
    execution = StepExecution.objects.get()
    message = Message.objects.get()
    return execution.state, message.status, execution.attempts


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_temporary_refusal_is_retried_with_backoff_then_fails_with_the_servers_reason(flows, server, stage):
    answers = server.rcpt_answers if stage == "rcpt" else server.data_answers
    answers.extend(["451 4.3.0 mailbox busy, try later"] * 3)
    execution = _send_one(flows)
    assert _state() == ("pending", "failed", 1)
    first_due = StepExecution.objects.get().due_at - flows.now
    flows.advance(seconds=first_due.total_seconds() - 1)
    assert StepExecution.objects.get().attempts == 1  # not before its time
    flows.advance(seconds=1)
    assert _state() == ("pending", "failed", 2)
    second_due = StepExecution.objects.get().due_at - flows.now
    assert second_due == 2 * first_due  # the pause grows
    flows.advance(seconds=second_due.total_seconds())
    execution.refresh_from_db()
    message = Message.objects.get()
    assert (execution.state, message.status, execution.attempts) == ("failed", "failed", 3)
    assert "451" in message.error and "mailbox busy" in message.error
    assert "451" in execution.result["error"]
    kinds = [kind for kind in flows.trail_kinds("jane@example.com") if kind in ("retry_scheduled", "failed", "sent")]
    assert kinds == ["retry_scheduled", "retry_scheduled", "failed"]
    flows.advance(days=1)
    assert StepExecution.objects.get().attempts == 3  # given up: never tried again


def test_temporary_refusal_then_recovery_sends_exactly_once(flows, server):
    server.rcpt_answers.append("421 4.7.0 too many connections")
    _send_one(flows)
    assert _state()[:2] == ("pending", "failed")
    flows.advance(minutes=5)
    assert _state() == ("sent", "sent", 2)
    assert len(server.accepted) == 1


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_permanent_refusal_fails_at_once_with_the_reason(flows, server, stage):
    answers = server.rcpt_answers if stage == "rcpt" else server.data_answers
    answers.append("550 5.1.1 no such mailbox")
    _send_one(flows)
    assert _state() == ("failed", "failed", 1)
    assert "550" in Message.objects.get().error and "no such mailbox" in Message.objects.get().error
    flows.advance(days=1)
    assert StepExecution.objects.get().attempts == 1
    assert server.rcpt_calls == 1


def test_no_server_listening_is_retried_until_it_is_back(flows, server, settings):
    settings.EMAIL_PORT = free_port()  # connection refused
    _send_one(flows)
    assert _state()[:2] == ("pending", "failed")
    assert "ConnectionRefused" in Message.objects.get().error
    settings.EMAIL_PORT = server.port
    flows.advance(minutes=5)
    assert _state() == ("sent", "sent", 2)
    assert len(server.accepted) == 1


@pytest.fixture
def mute_port():
    """A server that takes the TCP connection and never says a word (closes it after 5 s)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held = []

    def hold():
        listener.settimeout(10)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        held.append(conn)
        time.sleep(5)
        conn.close()

    threading.Thread(target=hold, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()
    for conn in held:
        conn.close()


def test_a_server_that_never_answers_times_out_and_is_retried(flows, server, settings, mute_port):
    settings.EMAIL_PORT = mute_port
    started = time.monotonic()
    _send_one(flows)
    assert time.monotonic() - started < 3  # SMTP_TIMEOUT_SECONDS (1 here), not the server's patience
    assert _state()[:2] == ("pending", "failed")
    assert "timed out" in Message.objects.get().error
    settings.EMAIL_PORT = server.port
    flows.advance(minutes=5)
    assert _state() == ("sent", "sent", 2)


@pytest.mark.parametrize("fault", ["drop", "stall"])
def test_no_answer_after_the_message_went_over_is_ambiguous_and_never_resent(flows, server, fault):
    """The server has the message but we never hear its answer: it may be delivered, so never again."""
    server.data_answers.append(fault)
    started = time.monotonic()
    _send_one(flows)
    assert time.monotonic() - started < 3
    assert _state() == ("ambiguous", "ambiguous", 1)
    assert "ambiguous" in flows.trail_kinds("jane@example.com")
    for _ in range(4):
        flows.advance(hours=1)
    assert len(server.accepted) == 1  # never a second copy
    assert StepExecution.objects.get().attempts == 1


@pytest.mark.parametrize("fault", ["drop", "stall"])
def test_accepted_then_hung_up_at_quit_is_sent_once(flows, server, fault):
    server.quit_answer = fault
    started = time.monotonic()
    _send_one(flows)
    assert time.monotonic() - started < 3
    assert _state() == ("sent", "sent", 1)
    flows.advance(hours=1)
    assert len(server.accepted) == 1
