"""Twilio, Vonage and AWS backends against a real local HTTP server standing in for their APIs."""

import base64
from urllib.parse import parse_qs

import pytest

from saleor_flows.channels.sms import SmsError, SmsMessage, get_sms_backend
from saleor_flows.channels.sms.aws import sigv4_headers
from saleor_flows.models import Contact, Message, StepExecution

from .fake_http import FakeProvider
from .sms_helpers import JANE, PUBLIC, sms_settings, texting_flow

TWILIO = "saleor_flows.channels.sms.twilio.SmsBackend"
VONAGE = "saleor_flows.channels.sms.vonage.SmsBackend"
AWS = "saleor_flows.channels.sms.aws.SmsBackend"


@pytest.fixture
def api():
    fake = FakeProvider()
    yield fake
    fake.close()


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def twilio(settings, api, **extra):
    sms_settings(settings, SMS_BACKEND=TWILIO, SMS_FROM="+12025550143", PHONE_REGION="DE",
                 SMS_PROVIDER={"account": "AC0123", "secret": "auth-token", "base_url": api.url}, **extra)


# --- Twilio through the engine ---------------------------------------------------------

def test_a_flow_texts_through_twilio_with_the_channel_s_sender_and_an_e164_number(flows, settings, api):
    twilio(settings, api, SMS_SENDERS={"shop-de": "ShopDE"})
    api.answer(201, {"sid": "SM0001", "status": "queued"})
    flows.contact(JANE, phone="0151 12345678", sms_consent="subscribed", first_name="Jane")
    texting_flow(flows, body="Hi {{ contact.first_name }}, 20 € off today")
    flows.event("go", email=JANE, channel="shop-de")

    (request,) = api.requests
    message = Message.objects.get()
    assert request.path == "/2010-04-01/Accounts/AC0123/Messages.json"
    assert request.headers["Authorization"] == basic("AC0123", "auth-token")
    assert parse_qs(request.body.decode()) == {
        "To": ["+4915112345678"], "From": ["ShopDE"], "Body": ["Hi Jane, 20 € off today"],
        "StatusCallback": [f"{PUBLIC}/plugins/global/saleor.flows/sms/twilio/status/?send_id={message.send_id}"]}
    assert (message.status, message.to, message.provider_message_id, message.segments) == (
        "sent", "+4915112345678", "SM0001", 1)


def test_a_channel_without_its_own_sender_uses_sms_from(flows, settings, api):
    twilio(settings, api, SMS_SENDERS={"shop-de": "ShopDE"})
    api.answer(201, {"sid": "SM0002"})
    flows.contact(JANE, phone="+4915112345678", sms_consent="subscribed")
    texting_flow(flows, body="x" * 200)
    flows.event("go", email=JANE, channel="shop-us")
    assert parse_qs(api.requests[0].body.decode())["From"] == ["+12025550143"]
    assert Message.objects.get().segments == 2


def test_a_messaging_service_sid_goes_as_such(settings, api, db):
    twilio(settings, api)
    api.answer(201, {"sid": "SM0003"})
    message = SmsMessage(to="+4915112345678", body="Hi", from_="MG" + "0" * 32, send_id="")
    assert get_sms_backend().send_messages([message]) == 1
    form = parse_qs(api.requests[0].body.decode())
    assert form["MessagingServiceSid"] == ["MG" + "0" * 32] and "From" not in form and "StatusCallback" not in form
    assert message.provider_message_id == "SM0003"


def test_a_busy_provider_is_retried_later_and_a_definite_no_fails_at_once(flows, settings, api):
    twilio(settings, api)
    api.answer(503, {"code": 20503, "message": "Service unavailable"})
    flows.contact(JANE, phone="+4915112345678", sms_consent="subscribed")
    texting_flow(flows)
    flows.event("go", email=JANE)
    execution = StepExecution.objects.get()
    assert execution.state == "pending" and "retry_scheduled" in flows.trail_kinds(JANE)

    api.answer(400, {"code": 21211, "message": "The 'To' number +4915112345678 is not a valid phone number.",
                     "status": 400})
    flows.advance(minutes=2)
    execution.refresh_from_db()
    message = Message.objects.get()
    assert execution.state == "failed" and len(api.requests) == 2  # no third attempt
    assert message.status == "failed" and "code 21211" in message.error and "not a valid phone" in message.error
    # That answer proves the number does not work: it is suppressed for every later SMS, in any flow.
    from saleor_flows.engine.suppression import reason_for

    assert reason_for("sms", "+4915112345678") == "hard_bounce"


def test_a_number_opted_out_at_the_provider_is_suppressed_at_once(flows, settings, api):
    from saleor_flows.engine.suppression import reason_for

    twilio(settings, api)
    api.answer(400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400})
    flows.contact(JANE, phone="+4915112345678", sms_consent="subscribed")
    texting_flow(flows, reentry={"mode": "always"})
    flows.event("go", email=JANE)
    assert StepExecution.objects.get().state == "failed" and len(api.requests) == 1
    assert reason_for("sms", "+4915112345678") == "sms_stop"
    flows.event("go", email=JANE, dedupe_key="again")  # the next SMS is not even tried
    assert len(api.requests) == 1 and "suppressed (sms_stop)" in flows.why(JANE)


def test_no_answer_at_all_is_a_retryable_error(settings, db):
    sms_settings(settings, SMS_TIMEOUT_SECONDS=2, SMS_PROVIDER={
        "account": "AC0123", "secret": "t", "base_url": "http://127.0.0.1:9"})  # nothing listens on port 9
    with pytest.raises(SmsError) as error:
        get_sms_backend(TWILIO).send_messages([SmsMessage(to="+4915112345678", body="Hi", from_="+12025550143")])
    assert error.value.retryable and "no answer from http://127.0.0.1:9" in str(error.value)


def test_missing_credentials_are_a_clear_error(settings, db):
    sms_settings(settings, SMS_PROVIDER={"account": "AC0123"})
    with pytest.raises(SmsError, match="SMS_PROVIDER lacks secret"):
        get_sms_backend(TWILIO)


def test_fail_silently_reports_through_the_count(settings, api, db):
    twilio(settings, api)
    api.answer(401, {"code": 20003, "message": "Authenticate"})
    quiet = get_sms_backend(fail_silently=True)
    assert quiet.send_messages([SmsMessage(to="+4915112345678", body="Hi", from_="+12025550143")]) == 0


# --- numbers and sends that must not happen -----------------------------------------

def test_an_unreadable_number_is_skipped_with_the_reason(flows, settings, api):
    twilio(settings, api)
    flows.contact(JANE, phone="call me maybe", sms_consent="subscribed")
    texting_flow(flows)
    flows.event("go", email=JANE)
    assert api.requests == []
    skip = next(entry for entry in flows.trail(JANE) if entry.kind == "skipped")
    assert skip.detail["reason"] == "invalid phone number"


def test_profile_phones_are_stored_in_e164_read_with_the_address_country(flows, settings):
    sms_settings(settings, PHONE_REGION="US")
    flows.event("checkout_updated", email=JANE, payload={
        "billing_address": {"first_name": "Jane", "phone": "030 1234567", "country": {"code": "DE"}}})
    assert Contact.objects.get(email=JANE).phone == "+49301234567"
    flows.event("checkout_updated", email="ann@example.com", payload={"billing_address": {"phone": "(202) 555-0143"}})
    assert Contact.objects.get(email="ann@example.com").phone == "+12025550143"  # PHONE_REGION
    flows.event("checkout_updated", email="bo@example.com", payload={"billing_address": {"phone": "ext. 12"}})
    assert Contact.objects.get(email="bo@example.com").phone == "ext. 12"  # kept as given, not lost


# --- Vonage ------------------------------------------------------------------------------

def test_vonage_messages_api_request_and_errors(settings, api, db):
    sms_settings(settings, SMS_BACKEND=VONAGE, SMS_FROM="ShopDE",
                 SMS_PROVIDER={"account": "key1", "secret": "sec1", "base_url": api.url})
    api.answer(202, {"message_uuid": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"})
    message = SmsMessage(to="+4915112345678", body="Grüße 😀", send_id="5f0e7c1e-0000-4000-8000-000000000001")
    assert get_sms_backend().send_messages([message]) == 1
    (request,) = api.requests
    assert request.path == "/v1/messages" and request.headers["Authorization"] == basic("key1", "sec1")
    assert request.json() == {"message_type": "text", "channel": "sms", "to": "4915112345678", "from": "ShopDE",
                              "text": "Grüße 😀", "client_ref": "5f0e7c1e-0000-4000-8000-000000000001"}
    assert message.provider_message_id == "aaaaaaaa-bbbb-cccc-dddd-0123456789ab"

    api.answer(422, {"type": "https://developer.vonage.com/api-errors/messages#1150", "title": "Invalid params",
                     "detail": "The value of the `to` parameter is invalid."})
    with pytest.raises(SmsError, match="Invalid params - The value of the `to`") as error:
        get_sms_backend().send_messages([message])
    assert not error.value.retryable and error.value.status == 422
    api.answer(429, {"title": "Rate Limit Hit"})
    with pytest.raises(SmsError) as error:
        get_sms_backend().send_messages([message])
    assert error.value.retryable


# --- AWS End User Messaging SMS -------------------------------------------------------

def test_sigv4_matches_aws_s_published_example():
    """The IAM ListUsers example from AWS's Signature Version 4 documentation."""
    from datetime import datetime, timezone

    headers = sigv4_headers(
        method="GET", url="https://iam.amazonaws.com/", query="Action=ListUsers&Version=2010-05-08",
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}, body=b"",
        key="AKIDEXAMPLE", secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", region="us-east-1", service="iam",
        now=datetime(2015, 8, 30, 12, 36, tzinfo=timezone.utc))
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, "
        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")


def test_aws_send_text_message_request_and_errors(flows, settings, api):
    sms_settings(settings, SMS_BACKEND=AWS, SMS_FROM="+12025550143", SMS_PROVIDER={
        "account": "AKIDEXAMPLE", "secret": "secret", "region": "eu-central-1", "configuration_set": "flows",
        "base_url": api.url})
    api.answer(200, {"MessageId": "msg-0001"})
    flows.contact(JANE, phone="+4915112345678")
    texting_flow(flows, kind="transactional")
    flows.event("go", email=JANE)
    (request,) = api.requests
    message = Message.objects.get()
    assert request.headers["X-Amz-Target"] == "PinpointSMSVoiceV2.SendTextMessage"
    assert request.headers["Content-Type"] == "application/x-amz-json-1.0"
    assert request.headers["X-Amz-Date"] == "20260105T090000Z"  # the flows clock
    assert request.headers["Authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260105/eu-central-1/sms-voice/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=")
    assert request.json() == {"DestinationPhoneNumber": "+4915112345678", "MessageBody": "Hi , your cart is waiting",
                              "MessageType": "TRANSACTIONAL", "OriginationIdentity": "+12025550143",
                              "ConfigurationSetName": "flows", "Context": {"send_id": str(message.send_id)}}
    assert message.provider_message_id == "msg-0001"

    for status, body, retryable in [
            (400, {"__type": "com.amazonaws#ThrottlingException", "Message": "Rate exceeded"}, True),
            (400, {"__type": "ValidationException", "Message": "Invalid number", "Reason": "INVALID_PARAMETER"},
             False),
            (500, {"__type": "InternalServerException", "Message": "oops"}, True)]:
        api.answer(status, body)
        with pytest.raises(SmsError) as error:
            get_sms_backend().send_messages([SmsMessage(to="+4915112345678", body="Hi")])
        assert error.value.retryable is retryable and error.value.code == body["__type"].rpartition("#")[2]
