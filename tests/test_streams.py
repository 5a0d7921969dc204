"""Who a message comes from (per Saleor channel) and which stream it goes out on (per kind)."""

import pytest
from django.core import mail

from saleor_flows.channels.sms import locmem
from saleor_flows.engine.suppression import suppress
from saleor_flows.models import Message

from .flowkit import chain, email

JANE = "jane@example.com"
ORDER = {"total_gross_amount": "25", "currency": "EUR"}
SENDERS = {"casa-pt": {"from_email": "Casa Ana <ola@casa-ana.pt>", "reply_to": "apoio@casa-ana.pt",
                       "sms_from": "CasaAna"}}


@pytest.fixture
def shop(flows, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "FROM_EMAIL": "Test Shop <shop@example.com>",
                             "REPLY_TO": "help@example.com", "SMS_FROM": "+15550199", "SENDERS": SENDERS}
    flows.contact(JANE, email_consent="subscribed", sms_consent="subscribed", phone="+351910000000")
    flows.flow(chain("promo", ("mail", email("Spring sale"))), slug="promo")
    flows.flow(chain("order_created", ("receipt", email("Your receipt")), kind="transactional",
                     reentry={"mode": "always"}), slug="receipt")
    locmem.outbox.clear()
    yield settings
    locmem.outbox.clear()


def test_each_saleor_channel_sends_as_its_own_brand_and_others_as_the_shop(flows, shop):
    flows.flow(chain("shipped", ("text", {"type": "send_sms", "body": "Shipped", "next": None}),
                     kind="transactional", reentry={"mode": "always"}), slug="shipped")
    flows.event("order_created", email=JANE, channel="casa-pt", payload=ORDER, dedupe_key="pt")
    flows.event("order_created", email=JANE, channel="default-channel", payload=ORDER, dedupe_key="us")
    flows.event("shipped", email=JANE, channel="casa-pt", dedupe_key="pt-sms")
    flows.event("shipped", email=JANE, channel="default-channel", dedupe_key="us-sms")
    portuguese, default = flows.emails_to(JANE)
    assert (portuguese.from_email, portuguese.reply_to) == ("Casa Ana <ola@casa-ana.pt>", ["apoio@casa-ana.pt"])
    assert (default.from_email, default.reply_to) == ("Test Shop <shop@example.com>", ["help@example.com"])
    assert [m.from_ for m in locmem.outbox] == ["CasaAna", "+15550199"]


def test_a_channel_sender_may_set_only_some_fields(flows, shop):
    shop.SALEOR_FLOWS = {**shop.SALEOR_FLOWS, "SENDERS": {"casa-pt": {"from_email": "ola@casa-ana.pt"}}}
    flows.event("order_created", email=JANE, channel="casa-pt", payload=ORDER)
    (receipt,) = flows.emails_to(JANE)
    assert (receipt.from_email, receipt.reply_to) == ("ola@casa-ana.pt", ["help@example.com"])


def test_marketing_and_transactional_mail_go_out_on_different_streams(flows, shop):
    shop.EMAIL_BACKEND = "anymail.backends.test.EmailBackend"
    shop.SALEOR_FLOWS = {**shop.SALEOR_FLOWS, "MESSAGE_STREAMS": {
        "marketing": {"esp_extra": {"MessageStream": "broadcast"}, "tags": ["bulk"],
                      "from_email": "Test Shop <news@mail.example.com>", "headers": {"X-PM-Message-Stream": "broadcast"}},
        "transactional": {"esp_extra": {"MessageStream": "outbound"}},
    }}
    flows.event("promo", email=JANE)
    flows.event("order_created", email=JANE, payload=ORDER)
    promo, receipt = flows.emails_to(JANE)
    promo_params, receipt_params = promo.anymail_test_params, receipt.anymail_test_params
    assert promo_params["MessageStream"] == "broadcast" and receipt_params["MessageStream"] == "outbound"
    assert promo_params["tags"] == ["flow:promo", "marketing", "bulk"]
    assert receipt_params["tags"] == ["flow:receipt", "transactional"]
    assert promo_params["metadata"]["stream"] == "marketing" and receipt_params["metadata"]["stream"] == "transactional"
    assert promo.extra_headers["X-Flows-Stream"] == "marketing" and promo.extra_headers["X-PM-Message-Stream"] == "broadcast"
    assert receipt.extra_headers["X-Flows-Stream"] == "transactional" and "X-PM-Message-Stream" not in receipt.extra_headers
    # The stream's own sender (a marketing subdomain) applies where no channel sender is set.
    assert promo.from_email == "Test Shop <news@mail.example.com>" and receipt.from_email == "Test Shop <shop@example.com>"
    assert {m.kind for m in Message.objects.all()} == {"marketing", "transactional"}


def test_a_complaint_about_marketing_never_blocks_an_order_confirmation(flows, shop):
    suppress("email", JANE, "complaint", source="esp_webhook")
    flows.event("promo", email=JANE)
    flows.event("order_created", email=JANE, payload=ORDER)
    assert [m.subject for m in flows.emails_to(JANE)] == ["Your receipt"]
    skipped = [e.detail["reason"] for e in flows.trail(JANE) if e.kind == "skipped"]
    assert skipped == ["suppressed (complaint)"]


def test_staff_notifications_are_their_own_stream(flows, shop, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "STAFF_NOTIFY_RECIPIENTS": ["ops@example.com"]}
    flows.flow(chain("order_created", ("tell", {"type": "notify_staff", "to": ["ops@example.com"], "subject": "New order",
                                                 "body": "An order came in", "next": None}),
                     kind="transactional", reentry={"mode": "always"}), slug="ops")
    flows.event("order_created", email=JANE, payload=ORDER)
    (staff,) = [m for m in mail.outbox if m.to == ["ops@example.com"]]
    assert staff.extra_headers["X-Flows-Stream"] == "staff"
    assert Message.objects.get(step_id="tell").kind == "staff"


def test_plugin_configuration_maps_quiet_hours_caps_and_channel_senders():
    from saleor_flows.saleor_plugin.config import as_engine_settings, configuration_errors

    config = {"quiet_hours": "21:00-08:00", "email_quiet_hours": "", "email_cap_hours": "12", "sms_cap_hours": "0",
              "channel_senders": '{"casa-pt": {"from_email": "Casa Ana <ola@casa-ana.pt>", "sms_from": "CasaAna"}}'}
    values = as_engine_settings(config)
    assert values["QUIET_HOURS"] == {"sms": "21:00-08:00", "email": None}
    assert values["FREQUENCY_CAP_HOURS"] == {"email": 12, "sms": None}
    assert values["SENDERS"] == {"casa-pt": {"from_email": "Casa Ana <ola@casa-ana.pt>", "sms_from": "CasaAna"}}
    assert configuration_errors(config) == {}
    assert "QUIET_HOURS" not in as_engine_settings({})  # unset: the host's settings apply


def test_bad_plugin_values_are_named_when_saved_and_never_break_sending(caplog):
    from saleor_flows.saleor_plugin.config import as_engine_settings, configuration_errors

    config = {"quiet_hours": "9pm-8am", "email_cap_hours": "sixteen", "sms_cap_hours": "24",
              "channel_senders": '{"casa-pt": {"from": "x@example.com"}}'}
    errors = configuration_errors(config)
    assert errors["quiet_hours"] == "quiet hours '9pm-8am': expected 'HH:MM-HH:MM'"
    assert errors["email_cap_hours"] == "a whole number of hours (0 for no limit), got 'sixteen'"
    assert errors["channel_senders"].startswith('expected {"channel-slug"')
    assert "not valid JSON" in configuration_errors({"channel_senders": "{casa-pt"})["channel_senders"]
    values = as_engine_settings(config)  # stored anyway (e.g. by a migration): the rest still applies
    assert values["FREQUENCY_CAP_HOURS"] == {"email": None, "sms": 24} and "SENDERS" not in values
    assert "quiet_hours ignored" in caplog.text


@pytest.mark.parametrize("address, accepted", [
    ("hello@shop.example", True), ("Casa Ana <ola@casa-ana.pt>", True), ('"Shop, Inc." <news@shop.example>', True),
    ("Bücher <info@bücher.de>", True), ("news+de@mail.shop.co.uk", True),
    # What Django's validate_email let through before, but no shop sends from (receivers refuse it):
    ("shop@localhost", False), ("Shop <shop@[127.0.0.1]>", False), ("shop@mailhost", False),
    ("Shop", False), ("shop@example.com\nBcc: all@example.com", False),
])
def test_sender_addresses_are_checked_like_every_other_address(address, accepted):
    """Settings' senders use events.valid_email, the one address check of every door."""
    from saleor_flows.flow_settings import SettingsError, clean_senders

    entry = [{"channel": "casa-pt", "from_email": address}]
    if accepted:
        assert clean_senders(entry) == {"casa-pt": {"from_email": address}}
    else:
        with pytest.raises(SettingsError) as refused:
            clean_senders(entry)
        assert refused.value.errors[0][0] == "senders.0.fromEmail"
