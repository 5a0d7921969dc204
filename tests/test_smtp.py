"""End-to-end mail through a real SMTP server (aiosmtpd) via Django's SMTP backend."""

import email as email_lib
from email import policy
from urllib.parse import urlparse

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from saleor_flows.models import Message

from .faults import free_port
from .flowkit import chain, email, nxt


class Sink(MessageHandler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def handle_message(self, message):
        self.messages.append(message)

    def prepare_message(self, session, envelope):
        parsed = email_lib.message_from_bytes(envelope.content, policy=policy.default)
        parsed["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        return parsed


def _start_sink():
    sink = Sink()
    port = free_port()  # aiosmtpd needs a concrete port
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    return sink, controller, port


@pytest.fixture
def smtp(settings):
    sink, controller, port = _start_sink()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    yield sink
    controller.stop()


@pytest.fixture
def marketing_smtp(settings):
    """A second server for the marketing stream (MESSAGE_STREAMS["marketing"]["smtp"])."""
    sink, controller, port = _start_sink()
    sink.port = port
    yield sink
    controller.stop()


def test_cart_email_arrives_with_html_text_and_our_headers(flows, smtp):
    flows.contact("jane@example.com", first_name="Jane", email_consent="subscribed", locale="en")
    body = ("Hi {{ contact.first_name }}, you left: {% for line in event.lines %}"
            "{{ line.quantity }} x {{ line.product_name }} ({{ line.base_price | money(event.currency) }}) "
            "{% endfor %}")
    flows.flow(chain("checkout_abandoned", ("mail", email("Your cart at {{ shop.name }}", body))))
    flows.event("checkout_abandoned", email="jane@example.com", payload={
        "currency": "USD", "lines": [{"product_name": "Monospace Tee", "quantity": 2, "base_price": "20.00"}]})
    (received,) = smtp.messages
    stored = Message.objects.get()
    assert received["Subject"] == "Your cart at Test Shop"
    assert received["X-Envelope-To"] == "jane@example.com"
    assert received["X-Flows-Send-Id"] == str(stored.send_id)
    assert received["Message-ID"] == stored.message_id and stored.message_id
    html = received.get_body(("html",)).get_content()
    text = received.get_body(("plain",)).get_content()
    assert "2 x Monospace Tee ($20.00)" in html
    assert "Hi Jane, you left: 2 x Monospace Tee ($20.00)" in text
    assert stored.status == "sent"


def test_smtp_server_from_the_plugin_configuration_wins_over_the_host_backend(flows, smtp, settings):
    port = settings.EMAIL_PORT
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the host's own backend
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "SMTP": {"host": "127.0.0.1", "port": port, "use_tls": False}}
    flows.contact("jane@example.com", email_consent="subscribed")
    flows.flow(chain("go", ("mail", email("Through the configured server"))))
    flows.event("go", email="jane@example.com")
    assert [m["Subject"] for m in smtp.messages] == ["Through the configured server"]
    assert flows.outbox == []  # nothing went through the host's backend


def test_marketing_and_transactional_headers_one_click_unsubscribe_and_what_still_arrives(
        flows, smtp, marketing_smtp, settings, client):
    """Done-when (a): through real SMTP servers, one per stream, as a mailbox provider sees it."""
    settings.SALEOR_FLOWS = {
        **settings.SALEOR_FLOWS, "FROM_EMAIL": "Test Shop <shop@example.com>", "REPLY_TO": "help@example.com",
        "SENDERS": {"casa-pt": {"from_email": "Casa Ana <ola@casa-ana.pt>", "reply_to": "apoio@casa-ana.pt"}},
        "MESSAGE_STREAMS": {"marketing": {
            "smtp": {"host": "127.0.0.1", "port": marketing_smtp.port, "use_tls": False},
            "headers": {"X-PM-Message-Stream": "broadcast"}}},
    }
    flows.contact("jane@example.com", first_name="Jane", email_consent="subscribed")
    flows.flow(chain("promo", ("mail", nxt(email("Spring sale"))),
                     ("wait", nxt({"type": "wait", "duration": {"days": 1}})), ("mail2", email("Last day"))),
               slug="promo")
    flows.flow(chain("newsletter", ("news", email("News"))), slug="news")
    flows.flow(chain("order_created", ("receipt", email("Your receipt")), kind="transactional",
                     reentry={"mode": "always"}), slug="receipt")
    order = {"total_gross_amount": "25", "currency": "EUR"}
    flows.event("promo", email="jane@example.com", channel="casa-pt")
    flows.event("order_created", email="jane@example.com", channel="casa-pt", payload=order, dedupe_key="o1")

    (promo,), (receipt,) = marketing_smtp.messages, smtp.messages
    stored = {m.step_id: m for m in Message.objects.all()}
    for received, step_id in ((promo, "mail"), (receipt, "receipt")):
        assert received["From"] == "Casa Ana <ola@casa-ana.pt>" and received["Reply-To"] == "apoio@casa-ana.pt"
        assert received["X-Envelope-To"] == "jane@example.com"
        assert received["Message-ID"] == stored[step_id].message_id
        assert received["X-Flows-Send-Id"] == str(stored[step_id].send_id)
    assert (promo["X-Flows-Stream"], promo["X-PM-Message-Stream"]) == ("marketing", "broadcast")
    assert promo["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = promo["List-Unsubscribe"].strip().strip("<>")
    assert url.startswith("https://shop.example.com/plugins/global/saleor.flows/unsubscribe/")
    assert (receipt["X-Flows-Stream"], receipt["X-PM-Message-Stream"]) == ("transactional", None)
    assert receipt["List-Unsubscribe"] is None and receipt["List-Unsubscribe-Post"] is None

    # What Gmail and Yahoo do with the header: POST it, no cookies, no page.
    response = client.post(urlparse(url).path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200

    flows.advance(days=1)  # the promo's second email falls due
    flows.event("newsletter", email="jane@example.com")
    flows.event("order_created", email="jane@example.com", channel="casa-pt", payload=order, dedupe_key="o2")
    assert [m["Subject"] for m in marketing_smtp.messages] == ["Spring sale"]
    assert [m["Subject"] for m in smtp.messages] == ["Your receipt", "Your receipt"]
    skipped = [e.detail["reason"] for e in flows.trail("jane@example.com") if e.kind == "skipped"]
    assert skipped == ["suppressed (unsubscribed)"] * 2
