"""SMS: segment counting, previews, E.164 numbers, the console and in-memory backends. No database."""

import io

import pytest
from django.test import override_settings

from saleor_flows.channels.sms import SmsMessage, get_sms_backend, preview_sms, segments
from saleor_flows.channels.sms import locmem
from saleor_flows.channels.sms.base import BaseSmsBackend
from saleor_flows.phone import to_e164


@pytest.mark.parametrize("body, expected", [
    ("", ("GSM-7", 1)),
    ("a" * 160, ("GSM-7", 1)),
    ("a" * 161, ("GSM-7", 2)),
    ("a" * 306, ("GSM-7", 2)),
    ("a" * 307, ("GSM-7", 3)),
    ("Grüße, Señor! @£$¥ ÄÖÑÜ§¿", ("GSM-7", 1)),
    ("€" * 80, ("GSM-7", 1)),  # extension characters take two septets
    ("€" * 81, ("GSM-7", 2)),
    ("a" * 159 + "€", ("GSM-7", 2)),  # 161 septets
    ("a" * 152 + "€" + "a" * 152, ("GSM-7", 3)),  # ...and the € is not split across parts
    ("😀" * 35, ("UCS-2", 1)),  # an emoji is two UTF-16 units
    ("😀" * 36, ("UCS-2", 2)),
    ("ç" * 70, ("UCS-2", 1)),  # only the capital Ç is in the GSM alphabet
    ("ç" * 71, ("UCS-2", 2)),
    ("ç" * 134, ("UCS-2", 2)),
    ("ç" * 135, ("UCS-2", 3)),
    ("a" * 66 + "😀" + "a" * 66, ("UCS-2", 3)),  # the emoji does not fit in what is left of part one
])
def test_segments(body, expected):
    assert segments(body) == expected


def test_locmem_backend_keeps_messages_in_outbox():
    locmem.outbox.clear()
    backend = get_sms_backend()  # tests/settings.py configures locmem
    assert isinstance(backend, locmem.SmsBackend)
    messages = [SmsMessage(to="+4915112345678", body="Your cart misses you", send_id="s-1"),
                SmsMessage(to="+4915187654321", body="Hi", from_="Shop", send_id="s-2")]
    assert backend.send_messages(messages) == 2
    assert [(m.to, m.body, m.from_, m.send_id) for m in locmem.outbox] == [
        ("+4915112345678", "Your cart misses you", "", "s-1"), ("+4915187654321", "Hi", "Shop", "s-2")]
    messages[0].body = "changed later"
    assert locmem.outbox[0].body == "Your cart misses you"
    locmem.outbox.clear()


def test_console_backend_writes_to_its_stream():
    stream = io.StringIO()
    backend = get_sms_backend("saleor_flows.channels.sms.console.SmsBackend", stream=stream)
    with override_settings(SALEOR_FLOWS={"SMS_FROM": "TestShop"}):
        assert backend.send_messages([SmsMessage(to="+15550001", body="€ off today", send_id="s-3")]) == 1
    output = stream.getvalue()
    assert "SMS to +15550001 from TestShop (send s-3, 1 x GSM-7)" in output
    assert "€ off today" in output


class BrokenStream(io.StringIO):
    def write(self, text):
        raise OSError("stream closed")


def test_console_backend_fail_silently():
    message = SmsMessage(to="+15550001", body="x")
    with pytest.raises(OSError):
        get_sms_backend("saleor_flows.channels.sms.console.SmsBackend", stream=BrokenStream()).send_messages([message])
    quiet = get_sms_backend("saleor_flows.channels.sms.console.SmsBackend", stream=BrokenStream(), fail_silently=True)
    assert quiet.send_messages([message]) == 0


def test_base_backend_must_be_subclassed():
    with pytest.raises(NotImplementedError):
        BaseSmsBackend().send_messages([])


# --- previews and numbers ---------------------------------------------------------------

def test_preview_shows_encoding_parts_length_and_room_per_part():
    assert preview_sms("Hi Jane, 20 € off") == {
        "encoding": "GSM-7", "segments": 1, "characters": 18, "per_segment": 160, "ucs2_characters": []}
    assert preview_sms("a" * 161)["per_segment"] == 153  # once split, each part holds less
    long_quote = preview_sms("It’s here " + "x" * 70)
    assert (long_quote["encoding"], long_quote["segments"], long_quote["per_segment"]) == ("UCS-2", 2, 67)
    assert long_quote["ucs2_characters"] == ["’"]  # the curly quote doubles the cost


@pytest.mark.parametrize("raw, region, expected", [
    ("+49 151 12345678", None, "+4915112345678"),
    ("0151 12345678", "DE", "+4915112345678"),
    ("0151 12345678", "de", "+4915112345678"),
    ("(202) 555-0143", "US", "+12025550143"),
    ("+1 202 555 0143", "DE", "+12025550143"),  # an international number ignores the region
])
def test_to_e164(raw, region, expected):
    assert to_e164(raw, region) == expected


@pytest.mark.parametrize("raw, region", [("", None), ("call me", "DE"), ("0151 12345678", None), ("+1555", None)])
def test_to_e164_refuses_what_is_not_a_number(raw, region):
    with pytest.raises(ValueError):
        to_e164(raw, region)


def test_plugin_sms_fields_map_to_engine_settings():
    from saleor_flows.saleor_plugin.config import as_engine_settings

    values = as_engine_settings({
        "sms_backend": "Twilio", "sms_account": "AC0123", "sms_secret": "token", "sms_sender": "+12025550143",
        "sms_senders": "default-channel=+12025550143, shop-de = ShopDE, broken", "phone_region": "de",
        "sms_sns_topic_arns": ""})
    assert values["SMS_BACKEND"] == "saleor_flows.channels.sms.twilio.SmsBackend"
    assert values["SMS_PROVIDER"] == {"account": "AC0123", "secret": "token"}
    assert values["SMS_SENDERS"] == {"default-channel": "+12025550143", "shop-de": "ShopDE"}
    assert (values["SMS_FROM"], values["PHONE_REGION"]) == ("+12025550143", "DE")
    assert "SMS_BACKEND" not in as_engine_settings({})  # unset: the host's settings apply
