"""What the Dashboard App's screens ask the API: home, gallery and turn-on, settings, exiting a journey, an
order's attribution. Over real HTTP with real tokens, on real PostgreSQL."""

from datetime import timedelta

import pytest
from django.core import mail

from saleor_flows.api.core import to_global_id
from saleor_flows.conf import flows_setting
from saleor_flows.engine import samples
from saleor_flows.models import Enrolment, Event, Flow, FlowSettings, Message, StepExecution
from tests.flowkit import chain, email, nxt

ADMIN = ("MANAGE_PLUGINS", "MANAGE_USERS")
ORDER = {"total_gross_amount": "40.00", "currency": "EUR"}
pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(api_settings):
    api_settings.SALEOR_FLOWS = {**api_settings.SALEOR_FLOWS, "FROM_EMAIL": "Shop <shop@example.com>",
                                 "PUBLIC_URL": "https://api.example.com",
                                 "CHECKOUT_URL_TEMPLATE": "https://shop.example.com/checkout/{token}"}
    return api_settings


# --- home -----------------------------------------------------------------------------


HOME = """query($days: Int) { dashboardHome(days: $days) { since until
    flows { flow { slug status triggerEvent } activeNow entered sent orders revenue { currency amount }
            days { day sent orders revenue { currency amount } } }
    attention { deadEvents latestDeadEvents { name error } blockedFlows { flow { slug } checks { code severity } } }
} }"""


def test_home_shows_each_flow_with_people_in_it_sends_revenue_per_day_and_what_needs_attention(flows, api, tokens,
                                                                                               shop):
    welcome = flows.flow(chain("signed_up", ("hello", email("Hello", next="wait")),
                               ("wait", nxt({"type": "wait", "duration": {"days": 3}})), ("later", email("Later"))),
                         slug="welcome")
    for address in ("ann@example.com", "bob@example.com"):
        flows.contact(address, email_consent="subscribed")
        flows.event("signed_up", email=address)
    Message.objects.filter(to="ann@example.com").update(clicked_at=flows.now)
    flows.advance(hours=2)
    flows.event("order_created", email="ann@example.com", payload={**ORDER, "id": "T3JkZXI6MQ=="})
    flows.flow(chain("order_created", ("sms", {"type": "send_sms", "body": "Thanks", "next": None})), slug="texts")
    Event.objects.create(name="customer_created", occurred_at=flows.now, received_at=flows.now, status="dead",
                         error="payload is not an object", dedupe_key="bad-1")

    data = api(HOME, {"days": 7}, token=tokens.staff("MANAGE_PLUGINS"))["dashboardHome"]
    assert data["until"] == flows.now.date().isoformat()
    assert data["since"] == (flows.now.date() - timedelta(days=6)).isoformat()
    by_slug = {row["flow"]["slug"]: row for row in data["flows"]}
    row = by_slug["welcome"]
    assert row["flow"] == {"slug": "welcome", "status": "LIVE", "triggerEvent": "signed_up"}
    assert (row["activeNow"], row["entered"], row["sent"], row["orders"]) == (2, 2, 2, 1)
    assert row["revenue"] == [{"currency": "EUR", "amount": "40.00"}]
    assert len(row["days"]) == 7 and row["days"][-1]["day"] == data["until"]
    assert row["days"][-1] == {"day": data["until"], "sent": 2, "orders": 1,
                               "revenue": [{"currency": "EUR", "amount": "40.00"}]}
    assert all(day["sent"] == 0 for day in row["days"][:-1])
    assert by_slug["texts"]["sent"] == 0

    attention = data["attention"]
    assert attention["deadEvents"] == 1
    assert attention["latestDeadEvents"] == [{"name": "customer_created", "error": "payload is not an object"}]
    # The SMS flow cannot send: no SMS sender anywhere.
    assert attention["blockedFlows"] == [{"flow": {"slug": "texts"},
                                          "checks": [{"code": "missing_sms_sender", "severity": "blocking"}]}]
    assert welcome.pk


def test_home_refuses_a_period_out_of_bounds(api, tokens):
    response = api.post(HOME, {"days": 5000}, token=tokens.staff("MANAGE_PLUGINS"))
    assert response.json()["errors"][0]["message"] == "`days` must be between 1 and 366."


# --- gallery --------------------------------------------------------------------------


GALLERY = """query($language: String) { flowTemplate(slug: "abandoned_checkout") { name description languages
    graph { nodes { id type label } edges { source target label } }
    previews(language: $language) { stepId subject html }
    checks { code severity message } } }"""


def test_gallery_shows_steps_as_a_path_and_each_email_in_every_language_with_the_shops_products(api, tokens, shop):
    samples.set_product_source(lambda limit: [
        {"product_name": "Juniper Gin", "variant_name": "70 cl", "price": "31.50", "currency": "EUR",
         "variant_id": "UHJvZHVjdFZhcmlhbnQ6OQ==", "sku": "GIN-70"}])
    try:
        english = api(GALLERY, token=tokens.staff("MANAGE_PLUGINS"))["flowTemplate"]
        german = api(GALLERY, {"language": "de"}, token=tokens.staff("MANAGE_PLUGINS"))["flowTemplate"]
    finally:
        samples.set_product_source(None)
    assert english["languages"] == ["en", "de"]
    assert english["description"].startswith("Brings shoppers back to a checkout")
    labels = [(n["id"], n["label"]) for n in english["graph"]["nodes"]]
    assert labels[:2] == [("wait_1h", "Wait 1 hour"), ("email_reminder", "Email: You left something in your cart")]
    assert {"source": "wait_1h", "target": "email_reminder", "label": "next"} in english["graph"]["edges"]
    reminder = {p["stepId"]: p for p in english["previews"]}["email_reminder"]
    assert reminder["subject"] == "You left something in your cart"
    assert "Juniper Gin" in reminder["html"] and "Monospace Tee" not in reminder["html"]
    assert "31,50" in reminder["html"] or "31.50" in reminder["html"]
    german_reminder = {p["stepId"]: p for p in german["previews"]}["email_reminder"]
    assert german_reminder["subject"] == "Du hast etwas in deinem Warenkorb vergessen"
    assert "Juniper Gin" in german_reminder["html"]
    assert english["checks"] == []

    response = api.post(GALLERY, {"language": "fr"}, token=tokens.staff("MANAGE_PLUGINS"))
    assert "has no 'fr' version" in response.json()["errors"][0]["message"]


def test_without_a_product_source_previews_use_the_built_in_samples(api, tokens, shop):
    data = api(GALLERY, token=tokens.staff("MANAGE_PLUGINS"))["flowTemplate"]
    assert "Monospace Tee" in {p["stepId"]: p for p in data["previews"]}["email_reminder"]["html"]


TURN_ON = """mutation($publish: Boolean) { flowCreateFromTemplate(input: {template: "abandoned_checkout",
    publish: $publish}) { errors { field code message } checks { code severity } flow { slug status } } }"""


def test_turn_on_publishes_in_one_call_and_customize_first_makes_a_draft(api, tokens, shop):
    shop.SALEOR_FLOWS = {**shop.SALEOR_FLOWS, "CHECKOUT_URL_TEMPLATE": ""}
    live = api(TURN_ON, {"publish": True}, token=tokens.app("MANAGE_PLUGINS"))["flowCreateFromTemplate"]
    assert live["errors"] == [] and live["flow"] == {"slug": "abandoned-checkout", "status": "LIVE"}
    assert live["checks"] == [{"code": "missing_checkout_url", "severity": "warning"}]  # sends, with a weaker link
    draft = api(TURN_ON, {"publish": False}, token=tokens.app("MANAGE_PLUGINS"))["flowCreateFromTemplate"]
    assert draft["flow"] == {"slug": "abandoned-checkout-2", "status": "DRAFT"}


def test_a_template_just_turned_on_has_no_unpublished_changes_until_its_draft_is_edited(api, tokens, shop):
    """The live version is the draft, frozen: the flows list must not flag "Unpublished changes"."""
    token = tokens.app("MANAGE_PLUGINS")
    for template in ("abandoned_checkout", "welcome", "post_purchase", "win_back"):
        created = api("""mutation($t: String!) { flowCreateFromTemplate(input: {template: $t, publish: true}) {
            errors { message } flow { id status hasUnpublishedChanges definition } } }""", {"t": template},
                      token=token)["flowCreateFromTemplate"]
        assert created["errors"] == [] and created["flow"]["status"] == "LIVE", created
        flow_id, definition = created["flow"]["id"], created["flow"]["definition"]
        read = api("query($id: ID!) { flow(id: $id) { hasUnpublishedChanges } }", {"id": flow_id}, token=token)
        assert (template, created["flow"]["hasUnpublishedChanges"], read["flow"]["hasUnpublishedChanges"]) == (
            template, False, False)
        first = next(iter(definition["steps"]))
        definition["steps"][first]["subject"] = "Edited"
        edited = api("""mutation($id: ID!, $d: JSON!) { flowUpdate(id: $id, input: {definition: $d}) {
            errors { message } flow { hasUnpublishedChanges } } }""", {"id": flow_id, "d": definition},
                     token=token)["flowUpdate"]
        assert edited == {"errors": [], "flow": {"hasUnpublishedChanges": True}}


def test_turn_on_is_refused_with_the_checks_when_the_journey_could_not_send(api, tokens, shop):
    shop.SALEOR_FLOWS = {**shop.SALEOR_FLOWS, "CONSENT_METADATA_KEY": "", "PUBLIC_URL": "",
                         "SHOP": {**shop.SALEOR_FLOWS["SHOP"], "url": ""}}
    refused = api(TURN_ON, {"publish": True}, token=tokens.staff("MANAGE_PLUGINS"))["flowCreateFromTemplate"]
    assert refused["flow"] is None
    assert {(e["code"], e["field"]) for e in refused["errors"]} == {("NOT_READY", None)}
    assert {c["code"] for c in refused["checks"] if c["severity"] == "blocking"} == {
        "missing_consent_key", "missing_public_url"}
    assert not Flow.objects.exists()


# --- settings -------------------------------------------------------------------------


SETTINGS = """{ flowSettings { updatedAt
    stored { frequencyCapHours { email sms } quietHours { email sms } senders { channel fromEmail smsFrom } topics { key label } }
    effective { frequencyCapHours { email sms } quietHours { email sms } senders { channel fromEmail } topics { key } } } }"""
UPDATE = """mutation($input: FlowSettingsInput!) { flowSettingsUpdate(input: $input) {
    errors { field code message } settings { stored { frequencyCapHours { email sms } quietHours { sms }
    senders { channel fromEmail replyTo smsFrom } topics { key label } } } } }"""


def test_settings_are_stored_in_the_database_and_win_over_the_plugin_configuration(flows, api, tokens, shop):
    shop.SALEOR_FLOWS = {**shop.SALEOR_FLOWS, "SENDERS": {"casa-pt": {"from_email": "old@casa-ana.pt"}},
                         "FREQUENCY_CAP_HOURS": {"email": 16, "sms": 24}}
    before = api(SETTINGS, token=tokens.staff("MANAGE_PLUGINS"))["flowSettings"]
    assert before["stored"] == {"frequencyCapHours": None, "quietHours": None, "senders": None, "topics": None}
    assert before["effective"]["frequencyCapHours"] == {"email": 16, "sms": 24}

    data = api(UPDATE, {"input": {
        "frequencyCapHours": {"email": 48, "sms": 0}, "quietHours": {"sms": "22:00-07:30"},
        "senders": [{"channel": "casa-pt", "fromEmail": "Casa Ana <ola@casa-ana.pt>", "smsFrom": "CasaAna"}],
        "topics": [{"key": "newsletter", "label": {"en": "Newsletter", "de": "Neuigkeiten"}}]}},
        token=tokens.staff("MANAGE_PLUGINS"))["flowSettingsUpdate"]
    assert data["errors"] == []
    assert data["settings"]["stored"] == {
        "frequencyCapHours": {"email": 48, "sms": None}, "quietHours": {"sms": "22:00-07:30"},
        "senders": [{"channel": "casa-pt", "fromEmail": "Casa Ana <ola@casa-ana.pt>", "replyTo": None,
                     "smsFrom": "CasaAna"}],
        "topics": [{"key": "newsletter", "label": {"en": "Newsletter", "de": "Neuigkeiten"}}]}
    assert FlowSettings.objects.count() == 1
    assert flows_setting("FREQUENCY_CAP_HOURS") == {"email": 48, "sms": None}
    assert flows_setting("TOPICS") == [{"key": "newsletter", "label": {"en": "Newsletter", "de": "Neuigkeiten"}}]

    # The engine sends as the sender stored here, not the configuration's.
    flows.flow(chain("order_created", ("receipt", email("Receipt")), kind="transactional"), slug="receipt")
    flows.contact("jane@example.com")
    flows.event("order_created", email="jane@example.com", channel="casa-pt", payload=ORDER)
    (receipt,) = flows.emails_to("jane@example.com")
    assert receipt.from_email == "Casa Ana <ola@casa-ana.pt>"

    # Only the sections named change; null puts one back to the plugin's value.
    data = api(UPDATE, {"input": {"frequencyCapHours": None}}, token=tokens.staff("MANAGE_PLUGINS"))
    stored = data["flowSettingsUpdate"]["settings"]["stored"]
    assert stored["frequencyCapHours"] is None and stored["quietHours"] == {"sms": "22:00-07:30"}
    assert flows_setting("FREQUENCY_CAP_HOURS") == {"email": 16, "sms": 24}


def test_a_frequency_cap_set_in_the_dashboard_holds_the_next_marketing_email(flows, api, tokens, shop):
    api(UPDATE, {"input": {"frequencyCapHours": {"email": 24}}}, token=tokens.staff("MANAGE_PLUGINS"))
    flows.flow(chain("promo", ("mail", email("Sale"))), slug="promo", name="Promo")
    flows.flow(chain("promo2", ("mail", email("More sale"))), slug="promo2", name="Promo 2")
    flows.contact("jane@example.com", email_consent="subscribed")
    flows.event("promo", email="jane@example.com")
    flows.event("promo2", email="jane@example.com")
    assert [m.subject for m in flows.emails_to("jane@example.com")] == ["Sale"]
    held = StepExecution.objects.get(enrolment__flow__slug="promo2")
    assert held.state == "pending" and held.due_at >= flows.now + timedelta(hours=23)


def test_invalid_settings_are_refused_field_by_field_and_nothing_is_stored(api, tokens, shop):
    data = api(UPDATE, {"input": {
        "frequencyCapHours": {"email": -1, "sms": 100000}, "quietHours": {"sms": "9pm-8am", "email": "off"},
        "senders": [{"channel": "casa pt", "fromEmail": "not an address"},
                    {"channel": "de", "smsFrom": "A sender name too long"}, {"channel": "de", "replyTo": "x@y.de"}],
        "topics": [{"key": "News Letter", "label": {"en": ""}}, {"key": "ok", "label": "Newsletter"}]}},
        token=tokens.staff("MANAGE_PLUGINS"))["flowSettingsUpdate"]
    assert data["settings"] is None
    assert {e["field"] for e in data["errors"]} == {
        "frequencyCapHours.email", "frequencyCapHours.sms", "quietHours.sms", "senders.0.channel",
        "senders.0.fromEmail", "senders.1.smsFrom", "senders.2.channel", "topics.0.key", "topics.0.label.en",
        "topics.1.label"}
    assert {e["code"] for e in data["errors"]} == {"INVALID"}
    assert "HH:MM-HH:MM" in next(e["message"] for e in data["errors"] if e["field"] == "quietHours.sms")
    assert not FlowSettings.objects.exists()


def test_too_many_senders_are_refused(api, tokens, shop):
    senders = [{"channel": f"c{i}", "fromEmail": "a@example.com"} for i in range(201)]
    data = api(UPDATE, {"input": {"senders": senders}}, token=tokens.staff("MANAGE_PLUGINS"))
    assert data["flowSettingsUpdate"]["errors"] == [{"field": "senders", "code": "INVALID",
                                                     "message": "At most 200 channels."}]


# --- contacts and orders --------------------------------------------------------------


def test_staff_take_a_contact_out_of_a_flow(flows, api, tokens):
    flows.flow(chain("signed_up", ("wait", nxt({"type": "wait", "duration": {"days": 2}})), ("mail", email("Hi"))),
               slug="welcome")
    flows.contact("ann@example.com", email_consent="subscribed")
    flows.event("signed_up", email="ann@example.com")
    journey = to_global_id("Journey", Enrolment.objects.get().pk)
    query = "mutation($id: ID!) { journeyExit(id: $id) { errors { code field } journey { status exitReason } } }"
    data = api(query, {"id": journey}, token=tokens.staff(*ADMIN))["journeyExit"]
    assert data == {"errors": [], "journey": {"status": "EXITED", "exitReason": "exited_by_staff"}}
    flows.advance(days=3)
    assert flows.emails_to("ann@example.com") == []
    assert flows.trail_kinds("ann@example.com")[-1] == "exited"
    again = api(query, {"id": journey}, token=tokens.staff(*ADMIN))["journeyExit"]
    assert again["errors"] == [{"code": "INVALID_STATUS", "field": "id"}]


def test_an_orders_page_shows_the_flow_message_it_is_attributed_to(flows, api, tokens):
    flows.flow(chain("signed_up", ("hello", email("Hello there"))), slug="welcome")
    flows.contact("ann@example.com", email_consent="subscribed")
    flows.event("signed_up", email="ann@example.com")
    Message.objects.update(clicked_at=flows.now)
    flows.advance(hours=1)
    flows.event("order_created", email="ann@example.com", payload={**ORDER, "id": "T3JkZXI6NDI="})
    query = """query($id: ID!) { orderAttribution(orderId: $id) { flow { slug } stepId touch subject amount
               currency } }"""
    data = api(query, {"id": "T3JkZXI6NDI="}, token=tokens.staff(*ADMIN))
    assert data["orderAttribution"] == {"flow": {"slug": "welcome"}, "stepId": "hello", "touch": "click",
                                        "subject": "Hello there", "amount": "40.00", "currency": "EUR"}
    assert api(query, {"id": "T3JkZXI6NDM="}, token=tokens.staff(*ADMIN))["orderAttribution"] is None
    assert len(mail.outbox) == 1
