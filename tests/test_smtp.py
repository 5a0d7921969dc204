"""End-to-end mail through a real SMTP server (aiosmtpd) via Django's SMTP backend."""

import email as email_lib
from email import policy
import socket

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Message as MessageHandler

from saleor_flows.models import Message

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


@pytest.fixture
def smtp(settings):
    sink = Sink()
    with socket.socket() as probe:  # aiosmtpd needs a concrete port: ask the OS for a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
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
