"""ESPs' tracking webhooks through django-anymail, mounted under our URL, landing on our messages."""

import base64
import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import RequestFactory

from saleor_flows import urls
from saleor_flows.engine import suppression
from saleor_flows.models import Contact, Event, Message, MessageEvent

from .flowkit import chain, email

FIXTURES = Path(__file__).parent / "fixtures" / "anymail"
JANE = "jane@example.com"
BASE = "/plugins/global/saleor.flows/tracking"
SECRET = "flows:s3cret-webhook-pass"


def _auth(secret=SECRET):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(secret.encode()).decode()}


@pytest.fixture
def anymail_host(settings):
    settings.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def _sent(flows):
    flows.contact(JANE, email_consent="subscribed", first_name="Jane")
    flows.flow(chain("go", ("mail", email("Spring sale", '<a href="https://shop.example.com/sale">Sale</a>'))),
               slug="spring")
    flows.event("go", email=JANE)
    return Message.objects.get()


def _postmark(name, message, *, after_send=timedelta(minutes=20), **changes):
    event = json.loads((FIXTURES / name).read_text())
    event["Metadata"]["send_id"] = str(message.send_id)
    moment = (message.sent_at + after_send).isoformat().replace("+00:00", "Z")
    for key in ("DeliveredAt", "BouncedAt", "ReceivedAt"):
        if key in event:
            event[key] = moment
    event.update(changes)
    return event


def _post(client, esp, payload, **headers):
    return client.post(f"{BASE}/{esp}/", data=json.dumps(payload), content_type="application/json", **headers)


def test_a_webhook_without_the_secret_is_refused_and_records_nothing(flows, anymail_host, client):
    message = _sent(flows)
    payload = _postmark("postmark_delivery.json", message)
    assert _post(client, "postmark", payload).status_code == 400
    assert _post(client, "postmark", payload, **_auth("flows:wrong")).status_code == 400
    assert not MessageEvent.objects.exists()
    assert Message.objects.get().delivered_at is None


def test_postmark_delivery_and_open_land_on_our_message(flows, anymail_host, client):
    message = _sent(flows)
    assert _post(client, "postmark", _postmark("postmark_delivery.json", message, after_send=timedelta(seconds=3)),
                 **_auth()).status_code == 200
    opened = _postmark("postmark_open.json", message)
    assert _post(client, "postmark", opened, **_auth()).status_code == 200
    assert _post(client, "postmark", opened, **_auth()).status_code == 200  # Postmark retries
    events = list(MessageEvent.objects.order_by("id").values_list("provider", "type", "machine", "message_id"))
    assert events == [("postmark", "delivered", False, message.pk), ("postmark", "opened", False, message.pk)]
    message.refresh_from_db()
    assert message.delivered_at == message.sent_at + timedelta(seconds=3)
    assert message.opened_at == message.sent_at + timedelta(minutes=20)
    assert Event.objects.filter(name="message_opened").count() == 1  # flows can wait for it


def test_a_postmark_hard_bounce_suppresses_and_a_soft_one_does_not(flows, anymail_host, client):
    message = _sent(flows)
    soft = _postmark("postmark_soft_bounce.json", message)
    assert _post(client, "postmark", soft, **_auth()).status_code == 200
    assert suppression.reason_for("email", JANE) is None
    assert MessageEvent.objects.get().type == "failed"
    hard = _postmark("postmark_hard_bounce.json", message)
    assert _post(client, "postmark", hard, **_auth()).status_code == 200
    assert _post(client, "postmark", hard, **_auth()).status_code == 200  # a retry: stored and acted on once
    assert suppression.reason_for("email", JANE) == "hard_bounce"
    assert MessageEvent.objects.filter(type="bounced").count() == 1
    assert flows.trail_kinds(JANE).count("message_bounced") == 1


@pytest.mark.filterwarnings("ignore::anymail.exceptions.AnymailNotSupportedWarning")  # anymail 15 on SendGrid
def test_sendgrid_events_with_an_apple_proxy_open_and_a_deferral(flows, anymail_host, client):
    message = _sent(flows)
    events = json.loads((FIXTURES / "sendgrid_events.json").read_text())
    sent = int(message.sent_at.timestamp())
    for event, seconds in zip(events, (5, 40, 3600, 3700)):
        event["send_id"], event["timestamp"] = str(message.send_id), sent + seconds
    assert _post(client, "sendgrid", events, **_auth()).status_code == 200
    stored = {e.type: e for e in MessageEvent.objects.all()}
    assert set(stored) == {"delivered", "opened", "clicked", "deferred"}
    assert stored["opened"].machine and stored["opened"].detail["machine_reason"] == "apple_privacy_proxy"
    assert not stored["clicked"].machine and stored["clicked"].url == "https://shop.example.com/sale"
    message.refresh_from_db()
    assert message.opened_at is None and message.machine_opened_at is not None
    assert message.clicked_at is not None
    assert suppression.reason_for("email", JANE) is None  # a deferral never suppresses
    assert Contact.objects.get().email_consent == "subscribed"


def test_events_for_mail_that_is_not_ours_are_dropped_unless_the_address_is_bad(flows, anymail_host, client):
    _sent(flows)
    stranger = json.loads((FIXTURES / "postmark_delivery.json").read_text())
    stranger.update(Metadata={}, MessageID="the-hosts-own-order-email", Recipient="bob@example.com")
    assert _post(client, "postmark", stranger, **_auth()).status_code == 200
    assert not MessageEvent.objects.exists()
    bounce = json.loads((FIXTURES / "postmark_hard_bounce.json").read_text())
    bounce.update(Metadata={}, MessageID="the-hosts-own-order-email", Email="bob@example.com")
    assert _post(client, "postmark", bounce, **_auth()).status_code == 200
    assert suppression.reason_for("email", "bob@example.com") == "hard_bounce"


def test_the_esp_message_id_matches_when_metadata_is_missing(flows, anymail_host, client):
    message = _sent(flows)
    delivered = _postmark("postmark_delivery.json", message, Metadata={}, MessageID=message.provider_message_id)
    assert message.provider_message_id
    assert _post(client, "postmark", delivered, **_auth()).status_code == 200
    assert MessageEvent.objects.get().message_id == message.pk


def test_the_plugin_serves_the_esp_webhooks(flows, anymail_host):
    message = _sent(flows)
    request = RequestFactory().post("/", data=json.dumps(_postmark("postmark_delivery.json", message)),
                                    content_type="application/json", **_auth())
    assert urls.serve(request, "tracking/postmark/").status_code == 200
    assert MessageEvent.objects.get().type == "delivered"
