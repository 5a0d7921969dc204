"""Issue 11, item 15: correctly signed but malformed SMS-provider and ESP webhooks are a 400 and a log line,
never a 500 (real signatures computed here, as in test_sms_webhooks.py and test_tracking_anymail.py)."""

import logging

import pytest

from saleor_flows.models import MessageEvent, Suppression
from tests.test_sms_webhooks import (BASE, NUMBER, post_json, signing_key, sns, sns_message,  # noqa: F401 (fixtures)
                                    twilio, twilio_post, vonage, vonage_post)
from tests.test_tracking_anymail import _auth, _post, _postmark, _sent, anymail_host  # noqa: F401 (fixture)

SIGNED_BUT_MALFORMED_TWILIO = [
    ("status/", {"MessageSid": "SM\x00", "MessageStatus": "delivered"}),
    ("status/", {"MessageSid": "SM1", "MessageStatus": "undelivered", "ErrorCode": "30005\x00"}),
    ("inbound/", {"MessageSid": "SM2", "From": "+49\x00151", "Body": "STOP"}),
    ("inbound/", {"MessageSid": "SM3", "From": NUMBER, "Body": "STOP\x00"}),
]


def test_odd_but_well_formed_twilio_status_is_still_taken(flows, client, twilio):
    """Not every surprise is malformed: a send id that is not ours is recorded (200) as before."""
    assert twilio_post(client, f"{BASE}/twilio/status/?send_id=not-a-uuid",
                       {"MessageSid": "SM9", "MessageStatus": "delivered"}).status_code == 200
    assert MessageEvent.objects.count() == 1


def test_odd_but_well_formed_vonage_status_is_still_taken(flows, client, vonage):
    assert vonage_post(client, "status", {"message_uuid": "u-9", "status": "delivered", "client_ref": "nope"},
                       at=flows.now).status_code == 200
    assert MessageEvent.objects.count() == 1


@pytest.mark.parametrize("path, params", SIGNED_BUT_MALFORMED_TWILIO)
def test_signed_but_malformed_twilio_webhooks_are_a_400_and_logged(flows, client, twilio, caplog, path, params):
    with caplog.at_level(logging.WARNING, logger="saleor_flows"):
        response = twilio_post(client, f"{BASE}/twilio/{path}", params)
    assert response.status_code == 400, response.content[:300]
    assert any("malformed" in record.getMessage().lower() for record in caplog.records)
    assert not MessageEvent.objects.exists() and not Suppression.objects.exists()


SIGNED_BUT_MALFORMED_VONAGE = [
    ("status", {"message_uuid": {"a": 1}, "status": "delivered"}),
    ("status", {"message_uuid": "u-1", "status": ["delivered"]}),
    ("status", {"message_uuid": "u-2", "status": "delivered", "timestamp": "2026-99-99T00:00:00Z"}),
    ("status", {"message_uuid": "u\x00", "status": "delivered"}),
    ("inbound", {"message_uuid": ["x"], "from": NUMBER, "text": "STOP"}),
    ("inbound", {"message_uuid": "u-4", "from": NUMBER, "text": "STOP", "timestamp": "2026-02-30T00:00:00Z"}),
]


@pytest.mark.parametrize("kind, payload", SIGNED_BUT_MALFORMED_VONAGE)
def test_signed_but_malformed_vonage_webhooks_are_a_400_and_logged(flows, client, vonage, caplog, kind, payload):
    with caplog.at_level(logging.WARNING, logger="saleor_flows"):
        response = vonage_post(client, kind, payload, at=flows.now)
    assert response.status_code == 400, response.content[:300]
    assert any("malformed" in record.getMessage().lower() for record in caplog.records)
    assert not MessageEvent.objects.exists() and not Suppression.objects.exists()


SIGNED_BUT_MALFORMED_AWS = [
    ("status", {"eventType": "TEXT_DELIVERED", "messageId": "m-1", "eventTimestamp": 10**20}),
    ("status", {"eventType": "TEXT_DELIVERED", "messageId": ["m-2"]}),
    ("status", {"eventType": "TEXT_DELIVERED", "messageId": "m-3\x00"}),
    ("status", {"eventType": ["TEXT_DELIVERED"], "messageId": "m-4"}),
    ("inbound", {"originationNumber": {"n": 1}, "messageBody": "STOP"}),
    ("inbound", {"originationNumber": NUMBER, "messageBody": "STOP\x00", "inboundMessageId": "in-1"}),
]


@pytest.mark.parametrize("kind, event", SIGNED_BUT_MALFORMED_AWS)
def test_signed_but_malformed_aws_notifications_are_a_400_and_logged(flows, client, sns, signing_key, caplog, kind,
                                                                       event):
    envelope = sns_message(sns, signing_key, event, when=flows.now)
    with caplog.at_level(logging.WARNING, logger="saleor_flows"):
        response = post_json(client, f"{BASE}/aws/{kind}/", envelope)
    assert response.status_code == 400, response.content[:300]
    assert any("malformed" in record.getMessage().lower() for record in caplog.records)
    assert not MessageEvent.objects.exists() and not Suppression.objects.exists()


@pytest.mark.parametrize("changes", [{"Metadata": "not an object"}, {"Metadata": ["send_id"]}])
def test_signed_but_malformed_esp_webhooks_are_a_400_and_logged(flows, anymail_host, client, caplog, changes):
    message = _sent(flows)
    with caplog.at_level(logging.WARNING, logger="saleor_flows"):
        response = _post(client, "postmark", _postmark("postmark_delivery.json", message, **changes), **_auth())
    assert response.status_code == 400, response.content[:300]
    assert any("malformed" in record.getMessage().lower() for record in caplog.records)
    assert not MessageEvent.objects.exists()
