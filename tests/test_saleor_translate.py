"""Contract tests for the Saleor edge: Saleor's payload shapes (our own fixtures) → normalized events → the engine."""

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from saleor_flows.events import record_event
from saleor_flows.models import Contact, Event, IdleTimer
from saleor_flows.saleor_plugin.config import as_engine_settings
from saleor_flows.saleor_plugin.translate import consent_from_metadata, decode_global_id, normalize

FIXTURES = Path(__file__).parent / "fixtures" / "saleor"
NOW = datetime(2026, 3, 2, 11, 0, tzinfo=timezone.utc)
CHECKOUT_UUID = "3f6c1a9e-2b7d-4c1e-9a55-0d2e8b7f6a41"


def fixture(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def test_customer_created():
    event = normalize("customer_created", fixture("customer_created"), user_id="VXNlcjoxMDE=", now=NOW)
    assert event["name"] == "customer_created"
    assert (event["email"], event["user_id"]) == ("ana.silva@example.org", "VXNlcjoxMDE=")
    assert event["occurred_at"] == datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
    assert event["dedupe_key"] == "saleor:customer_created:VXNlcjoxMDE="
    assert "meta" not in event["payload"] and "private_metadata" not in event["payload"]


def test_consent_read_from_the_configured_metadata_key():
    event = normalize("customer_metadata_updated", fixture("customer_updated"), consent_metadata_key="marketing_consent",
                      now=NOW)
    assert event["name"] == "customer_updated"
    assert event["payload"]["consent"] == {"email": "subscribed", "source": "saleor_user_metadata"}
    assert "consent" not in normalize("customer_updated", fixture("customer_updated"), consent_metadata_key="other",
                                      now=NOW)["payload"]


@pytest.mark.parametrize("value, expected", [("true", "subscribed"), ("False", "unsubscribed"), ("yes", "subscribed"),
                                             ("0", "unsubscribed"), ("maybe", None), ("", None)])
def test_consent_words(value, expected):
    assert consent_from_metadata({"marketing_consent": value}, "marketing_consent") == expected


def test_checkout_gets_its_plain_token_a_lines_total_and_a_link_back():
    event = normalize("checkout_updated", fixture("checkout_updated"), now=NOW,
                      checkout_url_template="https://shop.example.org/checkout?c={token}")
    payload = event["payload"]
    assert payload["token"] == CHECKOUT_UUID
    assert payload["total_gross_amount"] == "70.00" and payload["currency"] == "EUR"
    assert payload["checkout_url"] == f"https://shop.example.org/checkout?c={CHECKOUT_UUID}"
    assert event["channel"] == "eu" and event["email"] == "ana.silva@example.org"
    assert event["occurred_at"] == datetime(2026, 3, 2, 10, 9, 30, tzinfo=timezone.utc)
    assert event["dedupe_key"] == f"saleor:checkout_updated:{CHECKOUT_UUID}:2026-03-02T10:09:30+00:00"


def test_order_gets_currency_from_its_channel_and_the_checkout_token():
    event = normalize("order_created", fixture("order_created"), checkout_token=CHECKOUT_UUID, now=NOW)
    assert event["payload"]["currency"] == "EUR" and event["payload"]["checkout_token"] == CHECKOUT_UUID
    assert event["email"] == "ana.silva@example.org"
    assert event["dedupe_key"].startswith("saleor:order_created:")


def test_fulfillment_finds_the_customer_through_its_order():
    event = normalize("fulfillment_created", fixture("fulfillment_created"), now=NOW)
    assert event["email"] == "ana.silva@example.org" and event["channel"] == "eu"


def test_the_same_saleor_event_twice_has_the_same_dedupe_key():
    for hook, name in [("customer_updated", "customer_updated"), ("checkout_updated", "checkout_updated"),
                       ("order_created", "order_created")]:
        first = normalize(hook, fixture(name), now=NOW)
        again = normalize(hook, fixture(name), now=datetime(2026, 3, 2, 11, 5, tzinfo=timezone.utc))
        assert first["dedupe_key"] == again["dedupe_key"]


def test_unknown_hooks_and_garbage_are_not_recorded():
    assert normalize("product_created", {"id": "x"}, now=NOW) is None
    assert normalize("order_created", "not a dict", now=NOW) is None
    assert decode_global_id("not base64!") is None and decode_global_id("") is None


def test_plugin_configuration_maps_to_engine_settings():
    values = as_engine_settings({"sender_name": "Casa Ana", "sender_address": "ola@casa-ana.pt",
                                 "abandoned_checkout_idle_minutes": "90", "public_url": "https://api.casa-ana.pt/",
                                 "smtp_host": "smtp.casa-ana.pt", "smtp_port": "2525"}, site_name="Casa Ana")
    assert values["FROM_EMAIL"] == "Casa Ana <ola@casa-ana.pt>"
    assert values["ABANDONED_CHECKOUT_IDLE_MINUTES"] == 90
    assert values["PUBLIC_URL"] == "https://api.casa-ana.pt"
    assert values["SMTP"]["port"] == 2525 and values["SHOP"]["name"] == "Casa Ana"
    assert "REPLY_TO" not in values  # unset fields leave the host's settings alone


def test_consent_fields_of_the_plugin_configuration():
    values = as_engine_settings({"public_key": " pk_live_1 ", "subscribe_allowed_origins": "https://a.example, https://b.example",
                                 "double_opt_in": True, "new_subscriber_notify": "ana@casa-ana.pt",
                                 "unsubscribe_mailto": "sair@casa-ana.pt", "default_language": "DE",
                                 "topics": "newsletter | Newsletter | de: Neuigkeiten\n\noffers|Offers|nonsense\n"})
    assert values["PUBLIC_KEY"] == "pk_live_1"
    assert values["SUBSCRIBE_ALLOWED_ORIGINS"] == ["https://a.example", "https://b.example"]
    assert values["DOUBLE_OPT_IN"] is True and values["NEW_SUBSCRIBER_NOTIFY"] == ["ana@casa-ana.pt"]
    assert values["UNSUBSCRIBE_MAILTO"] == "sair@casa-ana.pt" and values["DEFAULT_LANGUAGE"] == "de"
    assert values["TOPICS"] == [{"key": "newsletter", "label": {"en": "Newsletter", "de": "Neuigkeiten"}},
                                {"key": "offers", "label": {"en": "Offers"}}]
    assert as_engine_settings({"double_opt_in": False})["DOUBLE_OPT_IN"] is False
    assert "TOPICS" not in as_engine_settings({"topics": ""})  # unset: the host's settings apply


def test_saleor_sequence_drives_the_engine(flows):
    """customer registers → consent via metadata → checkout idles → order: the engine sees it right."""
    flows.travel_to(NOW)
    for hook, name, extra in [("customer_created", "customer_created", {"user_id": "VXNlcjoxMDE="}),
                              ("customer_metadata_updated", "customer_updated", {"user_id": "VXNlcjoxMDE="}),
                              ("checkout_updated", "checkout_updated", {}),
                              ("checkout_updated", "checkout_updated", {})]:  # delivered twice
        record_event(**normalize(hook, fixture(name), consent_metadata_key="marketing_consent", now=flows.now, **extra))
    contact = Contact.objects.get()
    assert (contact.first_name, contact.locale, contact.email_consent) == ("Ana", "pt", "subscribed")
    assert IdleTimer.objects.get().key == f"checkout:{CHECKOUT_UUID}"
    record_event(**normalize("order_created", fixture("order_created"), checkout_token=CHECKOUT_UUID, now=flows.now))
    assert IdleTimer.objects.get().state == "cancelled"
    contact.refresh_from_db()
    assert (contact.order_count, str(contact.total_spent), contact.currency) == (1, "74.90", "EUR")
    assert Event.objects.filter(name="checkout_updated").count() == 1
    assert not Event.objects.filter(status="dead").exists()


def test_plugin_configuration_sets_the_api_public_key_and_origins():
    values = as_engine_settings({"public_key": " pk_live_1 ",
                                 "api_allowed_origins": "https://flows.example.com/, https://dash.example.com"})
    assert values["PUBLIC_KEY"] == "pk_live_1"
    assert values["API_ALLOWED_ORIGINS"] == ["https://flows.example.com", "https://dash.example.com"]
    assert "PUBLIC_KEY" not in as_engine_settings({}) and "API_ALLOWED_ORIGINS" not in as_engine_settings({})


def _checkout_with_box(ticked: str | None, created="2026-03-02T10:05:00.000Z"):
    payload = fixture("checkout_updated")
    payload["created"] = created
    payload["metadata"] = {} if ticked is None else {"marketing_consent": ticked}
    return payload


def test_the_checkout_box_gives_a_guest_consent_with_its_proof(flows):
    """A guest ticks "email me news" at checkout (checkout metadata), leaves, and gets the cart reminder."""
    from saleor_flows.journeys import load_journey
    from saleor_flows.models import ConsentChange

    flows.travel_to(NOW)
    flows.flow(load_journey("abandoned_checkout"), slug="abandoned_checkout")
    record_event(**normalize("checkout_metadata_updated", _checkout_with_box("true"),
                             consent_metadata_key="marketing_consent", now=flows.now))
    contact = Contact.objects.get(email="ana.silva@example.org")
    assert (contact.user_id, contact.email_consent, contact.email_consent_source) == (
        None, "subscribed", "saleor_checkout_metadata")
    proof = ConsentChange.objects.get(contact=contact)
    assert proof.detail == {"checkout": CHECKOUT_UUID}
    assert proof.at == datetime(2026, 3, 2, 10, 9, 30, tzinfo=timezone.utc)  # the checkout's last change
    record_event(**normalize("checkout_updated", _checkout_with_box("true"), consent_metadata_key="marketing_consent",
                             now=flows.now))
    flows.advance(hours=1, minutes=1)  # idle for an hour: abandoned
    flows.advance(hours=1)  # the journey's first wait
    [reminder] = flows.emails_to("ana.silva@example.org")
    assert reminder.subject == "You left something in your cart"


def test_an_unticked_box_revokes_nothing_and_an_old_tick_never_overrides_a_later_unsubscribe(flows):
    from saleor_flows.engine.contacts import set_consent

    flows.travel_to(NOW)
    flows.contact("ana.silva@example.org", email_consent="subscribed")
    record_event(**normalize("checkout_updated", _checkout_with_box("false"), consent_metadata_key="marketing_consent",
                             now=flows.now))
    assert Contact.objects.get().email_consent == "subscribed"

    contact = Contact.objects.get()
    contact.save(update_fields=set_consent(contact, "email", "unsubscribed", source="unsubscribe_link", at=flows.now))
    flows.advance(minutes=5)
    # The same checkout (created before the unsubscribe) is updated again and still carries the tick.
    record_event(**normalize("checkout_updated", _checkout_with_box("true"), consent_metadata_key="marketing_consent",
                             now=flows.now))
    assert Contact.objects.get().email_consent == "unsubscribed"
    # A new checkout, ticked after the unsubscribe, is a new choice.
    later = _checkout_with_box("true", created=flows.now.isoformat())
    later["id"] = "Q2hlY2tvdXQ6YjI5ZDI4ZGMtMGI1Ny00ZDJkLTk0YjUtNjBhNmZhZTg2YTAx"
    record_event(**normalize("checkout_updated", later, consent_metadata_key="marketing_consent", now=flows.now))
    assert Contact.objects.get().email_consent == "subscribed"


def test_the_order_carries_the_checkout_box_too(flows):
    flows.travel_to(NOW)
    payload = fixture("order_created")
    payload["metadata"] = {"marketing_consent": "yes"}
    event = normalize("order_created", payload, consent_metadata_key="marketing_consent", now=flows.now)
    assert event["payload"]["consent"]["source"] == "saleor_order_metadata"
    record_event(**event)
    assert Contact.objects.get().email_consent_source == "saleor_order_metadata"
