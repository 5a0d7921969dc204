"""SMS status and inbound webhooks: real signatures (HMAC, JWT, RSA) computed here, STOP/START/HELP end to end."""

import base64
import hashlib
import hmac
import json
import re
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest

from saleor_flows.channels.sms import locmem
from saleor_flows.engine import suppression
from saleor_flows.models import ConsentChange, Contact, Message, MessageEvent

from .fake_http import FakeProvider
from .sms_helpers import JANE, sms_settings, texting_flow

BASE = "/plugins/global/saleor.flows/sms"
NUMBER = "+4915112345678"
TOKEN = "twilio-auth-token"


@pytest.fixture(autouse=True)
def empty_sms_outbox():
    locmem.outbox.clear()
    yield
    locmem.outbox.clear()


def sent_sms(flows, **contact):
    flows.contact(JANE, phone=NUMBER, sms_consent="subscribed", first_name="Jane", **contact)
    texting_flow(flows)
    flows.event("go", email=JANE)
    return Message.objects.get()


def sms_bodies():
    return [message.body for message in locmem.outbox]


# --- Twilio ----------------------------------------------------------------------------

@pytest.fixture
def twilio(settings):
    sms_settings(settings, SMS_PROVIDER={"account": "AC0123", "secret": TOKEN})


def twilio_post(client, path, params, *, token=TOKEN, signature=None):
    """POST like Twilio: form fields, signed over the full URL and the sorted fields."""
    url = f"http://testserver{path}"
    signed = url + "".join(f"{key}{value}" for key, value in sorted(params.items()))
    digest = base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()
    return client.post(path, data=urlencode(params), content_type="application/x-www-form-urlencoded",
                       HTTP_X_TWILIO_SIGNATURE=signature if signature is not None else digest)


def twilio_status(client, message, status, **extra):
    return twilio_post(client, f"{BASE}/twilio/status/?send_id={message.send_id}", {
        "MessageSid": "SM0001", "MessageStatus": status, "To": NUMBER, "AccountSid": "AC0123", **extra})


def test_twilio_delivered_sets_delivered_at_and_a_retry_counts_once(flows, client, twilio):
    message = sent_sms(flows)
    assert twilio_status(client, message, "delivered").status_code == 200
    assert twilio_status(client, message, "delivered").status_code == 200  # Twilio retried
    message.refresh_from_db()
    assert message.delivered_at == flows.now and message.provider_message_id == "SM0001"
    assert MessageEvent.objects.filter(type="delivered").count() == 1


def test_twilio_status_with_a_bad_signature_is_refused_and_records_nothing(flows, client, twilio):
    message = sent_sms(flows)
    path = f"{BASE}/twilio/status/?send_id={message.send_id}"
    params = {"MessageSid": "SM0001", "MessageStatus": "delivered"}
    assert twilio_post(client, path, params, token="someone-else").status_code == 403
    assert twilio_post(client, path, params, signature="").status_code == 403
    good = twilio_post(client, path, params).wsgi_request.META["HTTP_X_TWILIO_SIGNATURE"]
    MessageEvent.objects.all().delete()
    Message.objects.update(delivered_at=None)
    # The same signature over a changed field (a tampered status) does not verify.
    assert twilio_post(client, path, {**params, "MessageStatus": "failed"}, signature=good).status_code == 403
    assert not MessageEvent.objects.exists() and Message.objects.get().failed_at is None


def test_twilio_undelivered_temporary_error_fails_without_suppressing(flows, client, twilio):
    message = sent_sms(flows)
    twilio_status(client, message, "undelivered", ErrorCode="30003")
    message.refresh_from_db()
    assert message.failed_at == flows.now
    assert MessageEvent.objects.get().detail["reason"] == "Twilio 30003: unreachable destination handset"
    assert suppression.reason_for("sms", NUMBER) is None
    assert "message_failed" in flows.trail_kinds(JANE)


def test_twilio_landline_error_suppresses_the_number_for_every_sms(flows, client, twilio):
    message = sent_sms(flows)
    twilio_status(client, message, "undelivered", ErrorCode="30006")
    assert suppression.reason_for("sms", NUMBER) == "hard_bounce"
    flows.flow({"trigger": {"event": "order"}, "start": "t", "kind": "transactional",
                "steps": {"t": {"type": "send_sms", "body": "Your order shipped", "next": None}}}, slug="receipts")
    flows.event("order", email=JANE)
    assert sms_bodies() == ["Hi Jane, your cart is waiting"]


def test_twilio_signed_but_malformed_status_is_a_clear_400(flows, client, twilio):
    response = twilio_post(client, f"{BASE}/twilio/status/", {"MessageSid": "SM0001"})
    assert response.status_code == 400 and b"missing MessageStatus" in response.content
    assert not MessageEvent.objects.exists()


def twilio_inbound(client, body, *, sid="SMin1", **extra):
    return twilio_post(client, f"{BASE}/twilio/inbound/", {
        "MessageSid": sid, "From": NUMBER, "To": "+12025550143", "Body": body, **extra})


def test_stop_silences_marketing_and_transactional_sms_until_start(flows, client, twilio):
    sent_sms(flows)
    response = twilio_inbound(client, "Stop")
    assert response["Content-Type"] == "text/xml"
    assert b"<Message>Test Shop: you will get no more text messages from us." in response.content
    contact = Contact.objects.get()
    assert (contact.sms_consent, contact.sms_consent_source) == ("unsubscribed", "provider_stop")
    assert suppression.reason_for("sms", NUMBER) == "sms_stop"
    assert MessageEvent.objects.get(type="inbound").detail["keyword"] == "stop"

    flows.flow({"trigger": {"event": "promo"}, "start": "t",
                "steps": {"t": {"type": "send_sms", "body": "Sale!", "next": None}}}, slug="promo")
    flows.flow({"trigger": {"event": "order"}, "start": "t", "kind": "transactional",
                "steps": {"t": {"type": "send_sms", "body": "Your order shipped", "next": None}}}, slug="receipts")
    flows.event("promo", email=JANE)
    flows.event("order", email=JANE)
    assert sms_bodies() == ["Hi Jane, your cart is waiting"]
    reasons = [entry.detail["reason"] for entry in flows.trail(JANE) if entry.kind == "skipped"]
    assert reasons == ["suppressed (sms_stop)", "suppressed (sms_stop)"]

    response = twilio_inbound(client, "START", sid="SMin2")
    assert b"you will get our text messages again" in response.content
    contact.refresh_from_db()
    assert (contact.sms_consent, contact.sms_consent_source) == ("subscribed", "provider_start")
    assert suppression.reason_for("sms", NUMBER) is None
    flows.flow({"trigger": {"event": "promo2"}, "start": "t",
                "steps": {"t": {"type": "send_sms", "body": "Sale!", "next": None}}}, slug="promo2")
    flows.event("promo2", email=JANE)
    assert sms_bodies()[-1] == "Sale!"


def test_a_retried_stop_is_handled_once_and_answered_once(flows, client, twilio):
    sent_sms(flows)
    twilio_inbound(client, "STOP")
    again = twilio_inbound(client, "STOP")
    assert again.status_code == 200 and b"<Message>" not in again.content
    assert MessageEvent.objects.filter(type="inbound").count() == 1
    assert ConsentChange.objects.filter(channel="sms", status="unsubscribed", source="provider_stop").count() == 1


def test_twilio_already_answered_its_own_opt_out_so_we_do_not(flows, client, twilio):
    sent_sms(flows)
    response = twilio_inbound(client, "STOP", OptOutType="STOP")
    assert b"<Message>" not in response.content
    assert suppression.reason_for("sms", NUMBER) == "sms_stop"  # but we still honour it


def test_help_is_answered_in_the_contact_s_language(flows, client, twilio):
    sent_sms(flows, locale="de")
    response = twilio_inbound(client, "hilfe")
    assert "Test Shop: Fragen? Schreib an help@example.com.".encode() in response.content
    assert Contact.objects.get().sms_consent == "subscribed"


def test_a_plain_reply_is_recorded_and_not_answered(flows, client, twilio):
    sent_sms(flows)
    response = twilio_inbound(client, "please don't stop")
    assert b"<Message>" not in response.content and suppression.reason_for("sms", NUMBER) is None
    assert "sms_received" in flows.trail_kinds(JANE)


def test_stop_from_an_unknown_number_still_suppresses_it(flows, client, twilio):
    twilio_post(client, f"{BASE}/twilio/inbound/", {"MessageSid": "SMx", "From": "+12025550143", "Body": "STOP"})
    assert suppression.reason_for("sms", "+12025550143") == "sms_stop"


def test_unknown_provider_and_wrong_method(client, db):
    assert client.post(f"{BASE}/carrier-pigeon/status/").status_code == 404
    assert client.get(f"{BASE}/twilio/status/").status_code == 405


# --- Vonage ------------------------------------------------------------------------------

SIGNATURE_SECRET = "vonage-signature-secret"


@pytest.fixture
def vonage(settings):
    sms_settings(settings, SMS_PROVIDER={"account": "key", "secret": "sec", "signature_secret": SIGNATURE_SECRET})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims: dict, secret: str = SIGNATURE_SECRET, alg: str = "HS256") -> str:
    head = b64url(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    signature = b64url(hmac.new(secret.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    return f"{head}.{body}.{signature}"


def vonage_post(client, kind, payload, *, at, secret=SIGNATURE_SECRET, hash_of=None, alg="HS256"):
    raw = json.dumps(payload).encode()
    claims = {"iat": int(at.timestamp()), "jti": "j-1", "iss": "Vonage",
              "payload_hash": hashlib.sha256(hash_of if hash_of is not None else raw).hexdigest()}
    return client.post(f"{BASE}/vonage/{kind}/", data=raw, content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {jwt(claims, secret, alg)}")


def test_vonage_signed_status_is_recorded_and_bad_or_replayed_ones_are_refused(flows, client, vonage):
    message = sent_sms(flows)
    payload = {"message_uuid": "uuid-1", "to": NUMBER.lstrip("+"), "from": "ShopDE", "channel": "sms",
               "timestamp": "2026-01-05T09:00:05Z", "status": "delivered", "client_ref": str(message.send_id)}
    assert vonage_post(client, "status", payload, at=flows.now, secret="wrong").status_code == 403
    assert vonage_post(client, "status", payload, at=flows.now, hash_of=b"another body").status_code == 403
    assert vonage_post(client, "status", payload, at=flows.now, alg="HS512").status_code == 403
    assert client.post(f"{BASE}/vonage/status/", data=json.dumps(payload),
                       content_type="application/json").status_code == 403
    assert not MessageEvent.objects.exists()

    assert vonage_post(client, "status", payload, at=flows.now).status_code == 200
    message.refresh_from_db()
    assert message.delivered_at == datetime(2026, 1, 5, 9, 0, 5, tzinfo=timezone.utc)
    flows.advance(hours=2)  # the same signed request captured and replayed later
    assert vonage_post(client, "status", payload, at=flows.now - timedelta(hours=2)).status_code == 403


def test_vonage_rejected_keeps_the_reason(flows, client, vonage):
    message = sent_sms(flows)
    vonage_post(client, "status", {
        "message_uuid": "uuid-2", "to": NUMBER, "status": "rejected", "client_ref": str(message.send_id),
        "error": {"type": "https://developer.vonage.com/api-errors/messages#1320", "title": "1320",
                  "detail": "Message failed because the number is blocked"}}, at=flows.now)
    message.refresh_from_db()
    assert message.failed_at is not None
    assert MessageEvent.objects.get().detail["reason"] == "Vonage: 1320 Message failed because the number is blocked"


def test_vonage_malformed_body_is_a_clear_400(flows, client, vonage):
    response = client.post(f"{BASE}/vonage/status/", data=b"not json", content_type="application/json",
                           HTTP_AUTHORIZATION="Bearer " + jwt({"iat": int(flows.now.timestamp()),
                                                               "payload_hash": hashlib.sha256(b"not json").hexdigest()}))
    assert response.status_code == 400 and b"not JSON" in response.content


def test_vonage_stop_is_answered_through_the_backend_from_our_number(flows, client, vonage):
    sent_sms(flows)
    response = vonage_post(client, "inbound", {"message_uuid": "in-1", "from": NUMBER.lstrip("+"),
                                               "to": "4930123456", "channel": "sms", "text": "STOPP",
                                               "message_type": "text"}, at=flows.now)
    assert response.status_code == 200
    reply = locmem.outbox[-1]
    assert (reply.to, reply.from_) == (NUMBER, "4930123456") and "no more text messages" in reply.body
    assert suppression.reason_for("sms", NUMBER) == "sms_stop"


# --- AWS: SNS notifications signed with our own certificate ----------------------------------

@pytest.fixture(scope="module")
def signing_key():
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.test")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


TOPIC = "arn:aws:sns:eu-central-1:111122223333:flows-sms"


@pytest.fixture
def sns(settings, signing_key):
    fake = FakeProvider()
    fake.files["/SimpleNotificationService-test.pem"] = signing_key[1]
    fake.files["/?Action=ConfirmSubscription&Token=tok"] = b"<ConfirmSubscriptionResponse/>"
    sms_settings(settings, SMS_SNS_URL_PATTERN=rf"^{re.escape(fake.url)}/",
                 SMS_PROVIDER={"account": "AKID", "secret": "s", "region": "eu-central-1",
                               "sns_topic_arns": [TOPIC]})
    yield fake
    fake.close()


def sns_message(sns, signing_key, message, *, when, kind="Notification", topic=TOPIC, key=None, **extra):
    """An SNS HTTP(S) delivery, signed (SignatureVersion 2) the way SNS documents it."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    envelope = {"Type": kind, "MessageId": extra.pop("message_id", "sns-1"), "TopicArn": topic,
                "Message": json.dumps(message) if isinstance(message, dict) else message,
                "Timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "SignatureVersion": "2",
                "SigningCertURL": f"{sns.url}/SimpleNotificationService-test.pem", **extra}
    order = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"] \
        if kind != "Notification" else ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    text = "".join(f"{name}\n{envelope[name]}\n" for name in order if name in envelope)
    signature = (key or signing_key[0]).sign(text.encode(), padding.PKCS1v15(), hashes.SHA256())
    envelope["Signature"] = base64.b64encode(signature).decode()
    return envelope


def aws_event(message, event_type, **extra):
    return {"eventType": event_type, "eventVersion": "1.0", "eventTimestamp": 1767603610000, "isFinal": True,
            "destinationPhoneNumber": NUMBER, "messageId": "aws-msg-1", "messageStatus": event_type[5:],
            "messageStatusDescription": extra.pop("description", ""), "context": {"send_id": str(message.send_id)},
            **extra}


def post_json(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="text/plain; charset=UTF-8")


def test_aws_delivery_event_over_signed_sns(flows, client, sns, signing_key):
    message = sent_sms(flows)
    envelope = sns_message(sns, signing_key, aws_event(message, "TEXT_DELIVERED"), when=flows.now)
    assert post_json(client, f"{BASE}/aws/status/", envelope).status_code == 200
    assert post_json(client, f"{BASE}/aws/status/", envelope).status_code == 200  # SNS retried
    message.refresh_from_db()
    assert message.delivered_at == datetime(2026, 1, 5, 9, 0, 10, tzinfo=timezone.utc)
    assert message.provider_message_id == "aws-msg-1"
    assert MessageEvent.objects.count() == 1


def test_aws_refuses_forged_foreign_and_stale_notifications(flows, client, sns, signing_key):
    from cryptography.hazmat.primitives.asymmetric import rsa

    message = sent_sms(flows)
    event = aws_event(message, "TEXT_DELIVERED")
    forged = sns_message(sns, signing_key, event, when=flows.now,
                         key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
    foreign = sns_message(sns, signing_key, event, when=flows.now, topic="arn:aws:sns:eu-central-1:999:theirs")
    stale = sns_message(sns, signing_key, event, when=flows.now - timedelta(hours=3))
    tampered = {**sns_message(sns, signing_key, event, when=flows.now), "Message": json.dumps(
        aws_event(message, "TEXT_INVALID"))}
    elsewhere = {**sns_message(sns, signing_key, event, when=flows.now),
                 "SigningCertURL": "https://evil.example/SimpleNotificationService-x.pem"}
    for envelope in (forged, foreign, stale, tampered, elsewhere):
        assert post_json(client, f"{BASE}/aws/status/", envelope).status_code == 403
    assert not MessageEvent.objects.exists()
    assert not any("evil" in seen.path for seen in sns.requests)


def test_aws_invalid_number_suppresses_it(flows, client, sns, signing_key):
    message = sent_sms(flows)
    envelope = sns_message(sns, signing_key, aws_event(message, "TEXT_INVALID", description="Invalid number"),
                           when=flows.now)
    post_json(client, f"{BASE}/aws/status/", envelope)
    assert suppression.reason_for("sms", NUMBER) == "hard_bounce"
    assert MessageEvent.objects.get().detail["reason"] == "AWS INVALID: Invalid number"


def test_aws_subscription_is_confirmed_at_aws_only(flows, client, sns, signing_key):
    envelope = sns_message(sns, signing_key, "You have chosen to subscribe", when=flows.now,
                           kind="SubscriptionConfirmation", Token="tok",
                           SubscribeURL=f"{sns.url}/?Action=ConfirmSubscription&Token=tok")
    assert post_json(client, f"{BASE}/aws/status/", envelope).status_code == 200
    assert [seen.path for seen in sns.requests if seen.path.startswith("/?Action")] == [
        "/?Action=ConfirmSubscription&Token=tok"]


def test_aws_two_way_stop_and_a_malformed_message(flows, client, sns, signing_key):
    sent_sms(flows)
    envelope = sns_message(sns, signing_key, {
        "originationNumber": NUMBER, "destinationNumber": "+12025550143", "messageKeyword": "KEYWORD_STOP",
        "messageBody": "Stop", "inboundMessageId": "in-aws-1"}, when=flows.now, message_id="sns-in-1")
    assert post_json(client, f"{BASE}/aws/inbound/", envelope).status_code == 200
    assert suppression.reason_for("sms", NUMBER) == "sms_stop"
    assert locmem.outbox[-1].to == NUMBER and locmem.outbox[-1].from_ == "+12025550143"

    broken = sns_message(sns, signing_key, "not json", when=flows.now, message_id="sns-in-2")
    response = post_json(client, f"{BASE}/aws/inbound/", broken)
    assert response.status_code == 400 and b"not JSON" in response.content
