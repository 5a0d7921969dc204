"""Outgoing webhook steps against a real HTTP server on loopback."""

import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from saleor_flows.models import StepExecution

from .flowkit import chain, nxt

SECRET = "whsec_test"


class Receiver:
    """Answers with the queued status codes (then 200) and keeps what it got."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/flows"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    """Receivers on loopback, which webhooks may reach only because this shop allow-lists it
    (tests/test_webhook_targets.py shows the same receiver refused without it)."""
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "WEBHOOK_ALLOWED_TARGETS": ["127.0.0.1/32"]}
    made = []

    def make(statuses=()):
        made.append(Receiver(statuses))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _flow(url):
    return chain("order_created",
                 ("crm", nxt({"type": "webhook", "url": url, "secret": SECRET,
                              "body": {"note": "{{ contact.first_name }} ordered {{ event.number }}"}})),
                 ("tag", {"type": "add_tag", "tag": "synced", "next": None}))


def test_webhook_posts_a_signed_body(flows, receiver):
    server = receiver()
    flows.contact("jane@example.com", first_name="Jane")
    flows.flow(_flow(server.url), slug="crm-sync")
    flows.event("order_created", email="jane@example.com",
                payload={"number": 23, "total_gross_amount": "40.00", "currency": "USD"})
    ((headers, body),) = server.requests
    assert json.loads(body) == {"flow": "crm-sync", "contact": {"email": "jane@example.com", "user_id": None},
                                "note": "Jane ordered 23"}
    expected = hmac.new(SECRET.encode(), headers["X-Flows-Timestamp"].encode() + b"." + body, hashlib.sha256)
    assert headers["X-Flows-Signature"] == "sha256=" + expected.hexdigest()
    assert "webhook_delivered" in flows.trail_kinds("jane@example.com")


def test_webhook_retries_with_backoff_then_goes_on(flows, receiver):
    server = receiver(statuses=[500, 503])
    flows.flow(_flow(server.url))
    flows.event("order_created", email="jane@example.com", payload={"number": 1, "total_gross_amount": "1", "currency": "USD"})
    assert len(server.requests) == 1
    flows.advance(seconds=29)
    assert len(server.requests) == 1  # first retry after 30 s
    flows.advance(seconds=1)
    assert len(server.requests) == 2
    flows.advance(seconds=60)  # second retry after 60 s more
    assert len(server.requests) == 3
    deliveries = {headers["X-Flows-Delivery"] for headers, _ in server.requests}
    assert len(deliveries) == 1  # one delivery id across retries: receivers can drop duplicates
    execution = StepExecution.objects.get(step_id="crm")
    assert (execution.state, execution.attempts) == ("done", 3)
    assert flows.trail_kinds("jane@example.com").count("retry_scheduled") == 2


def test_webhook_that_never_answers_fails_after_max_attempts_and_journey_continues(flows, receiver):
    server = receiver(statuses=[500] * 10)
    flows.flow(_flow(server.url))
    flows.event("order_created", email="jane@example.com", payload={"number": 1, "total_gross_amount": "1", "currency": "USD"})
    for _ in range(6):
        flows.advance(minutes=10)
    assert len(server.requests) == 5
    assert StepExecution.objects.get(step_id="crm").state == "failed"
    assert StepExecution.objects.get(step_id="tag").state == "done"  # not stuck


def test_webhook_body_has_the_same_variables_as_emails(flows, receiver):
    server = receiver()
    flows.contact("jane@example.com")
    flows.flow(chain("go", ("crm", {"type": "webhook", "url": server.url,
                                    "body": {"delivery": "{{ message.send_id }}", "shop": "{{ shop.name }}"},
                                    "next": None})))
    flows.event("go", email="jane@example.com")
    ((headers, body),) = server.requests
    assert json.loads(body)["delivery"] == headers["X-Flows-Delivery"]
    assert json.loads(body)["shop"] == "Test Shop"
