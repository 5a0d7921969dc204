"""Contacts, messages, consent, events and storefront tracking through the API, with their effects."""

import pytest

from saleor_flows.api.core import to_global_id
from saleor_flows.models import ConsentChange, Contact, Enrolment, Event, Message, MessageEvent, Suppression
from saleor_flows.engine.definition import create_flow, publish_flow
from saleor_flows.journeys import JOURNEYS, load_journey
from tests.api.conftest import PUBLIC_KEY
from tests.flowkit import chain, email, nxt

ADMIN = ("MANAGE_PLUGINS", "MANAGE_USERS")


def _welcome(flows):
    return flows.flow(chain("customer_created", ("tag", nxt({"type": "add_tag", "tag": "new"})),
                            ("email_1", email("Welcome {{ contact.first_name }}"))), slug="welcome")


def test_contact_with_consent_tags_journeys_and_why_trail(flows, api, tokens):
    _welcome(flows)
    flows.contact("ann@example.com", first_name="Ann", email_consent="subscribed", email_consent_source="checkout",
                  lists=["vip"])
    flows.contact("bob@example.com", first_name="Bob")
    flows.event("customer_created", email="ann@example.com")
    flows.event("customer_created", email="bob@example.com")
    data = api("""query($email: String) { contact(email: $email) {
        email firstName tags lists consent { email { status source } sms { status } }
        journeys { flow { slug } version { number } status currentStep trail { kind stepId } }
        trail { kind flowSlug stepId text detail } } }""", {"email": "Ann@Example.com"}, token=tokens.staff(*ADMIN))
    ann = data["contact"]
    assert (ann["email"], ann["firstName"], ann["tags"], ann["lists"]) == ("ann@example.com", "Ann", ["new"], ["vip"])
    assert ann["consent"] == {"email": {"status": "SUBSCRIBED", "source": "checkout"}, "sms": {"status": "NEVER"}}
    assert ann["journeys"][0]["flow"] == {"slug": "welcome"} and ann["journeys"][0]["status"] == "COMPLETED"
    assert [e["kind"] for e in ann["trail"]] == ["entered", "add_tag", "sent", "completed"]
    assert ann["trail"][2]["flowSlug"] == "welcome" and "sent" in ann["trail"][2]["text"]

    # Bob never consented: the why-trail says so.
    bob = api("""{ contact(email: "bob@example.com") { trail { kind detail } } }""", token=tokens.app(*ADMIN))
    skipped = next(e for e in bob["contact"]["trail"] if e["kind"] == "skipped")
    assert skipped["detail"]["reason"] == "no email marketing consent (never; policy opt_in)"

    found = api("""{ contacts(first: 10, filter: {emailConsent: SUBSCRIBED, list: "vip"}) {
                     totalCount edges { node { email } } } }""", token=tokens.staff(*ADMIN))
    assert found["contacts"] == {"totalCount": 1, "edges": [{"node": {"email": "ann@example.com"}}]}
    found = api("""{ contacts(first: 10, filter: {tag: "new", search: "bo"}) { edges { node { email } } } }""",
                token=tokens.staff(*ADMIN))
    assert found["contacts"]["edges"] == [{"node": {"email": "bob@example.com"}}]


def test_a_saleor_customer_is_found_by_the_user_id_the_dashboard_passes_to_its_widget(flows, api, tokens):
    """The customer widget's query: the contact whose events carried this Saleor user id, no email needed."""
    _welcome(flows)
    flows.event("customer_created", email="ann@example.com", user_id="VXNlcjo0Mg==")  # the plugin's User:42
    flows.event("customer_created", email="bob@example.com", user_id="VXNlcjo0Mw==")
    query = """query($id: ID!) { contacts(first: 1, filter: {userId: $id}) { totalCount edges { node { email
        journeys { flow { slug } } } } } }"""
    found = api(query, {"id": "VXNlcjo0Mg=="}, token=tokens.app(*ADMIN))["contacts"]
    assert found == {"totalCount": 1, "edges": [{"node": {"email": "ann@example.com",
                                                          "journeys": [{"flow": {"slug": "welcome"}}]}}]}
    assert api(query, {"id": "VXNlcjo5OQ=="}, token=tokens.app(*ADMIN))["contacts"] == {"totalCount": 0, "edges": []}
    assert api(query, {"id": "x" * 5000}, token=tokens.app(*ADMIN))["contacts"]["totalCount"] == 0


def test_messages_with_delivery_and_engagement_events(flows, api, tokens):
    flow = _welcome(flows)
    flows.contact("ann@example.com", first_name="Ann", email_consent="subscribed")
    flows.event("customer_created", email="ann@example.com")
    message = Message.objects.get()
    for kind in ("delivered", "opened"):
        MessageEvent.objects.create(message=message, provider="sendgrid", event_id=f"ev-{kind}", type=kind,
                                    occurred_at=flows.now, received_at=flows.now)
    Message.objects.filter(pk=message.pk).update(delivered_at=flows.now, opened_at=flows.now)
    data = api("""query($flow: ID) { messages(first: 10, filter: {flow: $flow, isTest: false}) { edges { node {
                  to subject status channel kind isTest deliveredAt openedAt contact { email }
                  events { type provider } } } } }""", {"flow": to_global_id("Flow", flow.pk)},
               token=tokens.staff(*ADMIN))
    (node,) = [e["node"] for e in data["messages"]["edges"]]
    assert (node["to"], node["subject"], node["status"], node["channel"]) == (
        "ann@example.com", "Welcome Ann", "SENT", "EMAIL")
    assert node["deliveredAt"] and node["openedAt"] and node["contact"] == {"email": "ann@example.com"}
    assert node["events"] == [{"type": "delivered", "provider": "sendgrid"}, {"type": "opened", "provider": "sendgrid"}]


CONSENT = """mutation($id: ID!, $input: ContactConsentUpdateInput!) { contactConsentUpdate(id: $id, input: $input) {
  errors { field code message } contact { consent { email { status source } } suppressed } } }"""


def test_consent_update_keeps_proof_and_suppresses_on_unsubscribe(flows, api, tokens):
    contact = flows.contact("ann@example.com")
    gid = to_global_id("Contact", contact.pk)
    data = api(CONSENT, {"id": gid, "input": {"channel": "EMAIL", "status": "SUBSCRIBED", "detail": {"form": "crm"}}},
               token=tokens.app(*ADMIN), REMOTE_ADDR="203.0.113.9")
    assert data["contactConsentUpdate"]["contact"]["consent"]["email"] == {"status": "SUBSCRIBED", "source": "api"}
    change = ConsentChange.objects.get()
    assert (change.status, change.source, change.ip) == ("subscribed", "api", "203.0.113.9")
    assert change.detail == {"form": "crm", "by": {"user": "VXNlcjo3", "app": "QXBwOjEy"}}
    data = api(CONSENT, {"id": gid, "input": {"channel": "EMAIL", "status": "UNSUBSCRIBED"}},
               token=tokens.staff(*ADMIN))
    assert data["contactConsentUpdate"]["contact"]["suppressed"] is True
    assert Suppression.objects.filter(channel="email", reason="unsubscribed").exists()
    # SMS consent without a phone number is refused and nothing is logged.
    data = api(CONSENT, {"id": gid, "input": {"channel": "SMS", "status": "SUBSCRIBED"}}, token=tokens.staff(*ADMIN))
    assert data["contactConsentUpdate"]["errors"][0]["field"] == "channel"
    assert ConsentChange.objects.count() == 2


def test_event_record_feeds_the_engine(flows, api, tokens):
    flows.flow(chain("quiz_completed", ("email_1", email("Your result: {{ event.result }}"))),
               slug="quiz", name="Quiz")
    flows.contact("ann@example.com", email_consent="subscribed")
    mutation = """mutation($input: EventRecordInput!) { eventRecord(input: $input) {
                    errors { field code message } event { id duplicate } } }"""
    variables = {"input": {"name": "quiz_completed", "email": "ann@example.com", "payload": {"result": "bold"},
                           "dedupeKey": "quiz:42"}}
    data = api(mutation, variables, token=tokens.staff(*ADMIN))
    assert data["eventRecord"]["event"]["duplicate"] is False
    assert [m.subject for m in flows.emails_to("ann@example.com")] == ["Your result: bold"]
    assert api(mutation, variables, token=tokens.staff(*ADMIN))["eventRecord"]["event"] == {
        "id": None, "duplicate": True}
    assert Event.objects.filter(name="quiz_completed").count() == 1
    data = api(mutation, {"input": {"name": "quiz_completed", "payload": {}}}, token=tokens.staff(*ADMIN))
    assert data["eventRecord"]["errors"] == [
        {"field": "email", "code": "REQUIRED", "message": "Give the contact's email or user id."}]
    data = api(mutation, {"input": {"name": "x", "email": "a@example.com", "payload": [1]}},
               token=tokens.staff(*ADMIN))
    assert data["eventRecord"]["errors"][0]["field"] == "payload"
    assert Event.objects.count() == 1


TRACK = """mutation($key: String!, $input: TrackEventInput!) { trackEvent(publicKey: $key, input: $input) {
  errors { field code message } event { id duplicate } } }"""


def test_track_event_starts_browse_abandonment_anonymously(flows, api):
    publish_flow(create_flow("browse", load_journey("browse_abandonment")))
    flows.contact("ann@example.com", email_consent="subscribed")
    product = {"product_name": "Monospace Tee", "product_url": "https://shop.example.com/p/tee",
               "thumbnail": "https://shop.example.com/tee.png", "price": "20.00", "currency": "USD",
               "consent": {"email": "unsubscribed"}, "billing_address": {"phone": "+15550001111"},
               "timezone": "Pacific/Fiji"}
    data = api(TRACK, {"key": PUBLIC_KEY, "input": {"event": "PRODUCT_VIEWED", "email": "ann@example.com",
                                                    "payload": product, "eventId": "view-1"}})
    assert data["trackEvent"]["errors"] == [] and data["trackEvent"]["event"]["duplicate"] is False
    event = Event.objects.get(name="product_viewed")
    assert "consent" not in event.payload and "billing_address" not in event.payload and "timezone" not in event.payload
    assert event.payload["source"] == "storefront"
    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.email_consent, ann.phone, ann.timezone) == ("subscribed", "", "")
    assert Enrolment.objects.filter(flow__slug="browse", contact=ann).exists()
    flows.advance(hours=2, minutes=1)
    assert [m.subject for m in flows.emails_to("ann@example.com")] == ["Still thinking about Monospace Tee?"]
    # A retry of the same storefront event is dropped.
    again = api(TRACK, {"key": PUBLIC_KEY, "input": {"event": "PRODUCT_VIEWED", "email": "ann@example.com",
                                                     "payload": product, "eventId": "view-1"}})
    assert again["trackEvent"]["event"]["duplicate"] is True


def test_track_event_needs_the_public_key_and_an_allowed_name(flows, api, client):
    data = api(TRACK, {"key": "wrong", "input": {"event": "PAGE_VIEWED", "email": "ann@example.com"}})
    assert data["trackEvent"]["errors"] == [
        {"field": "publicKey", "code": "INVALID_PUBLIC_KEY", "message": "Unknown public key."}]
    response = api.post(TRACK, {"key": PUBLIC_KEY, "input": {"event": "ORDER_CREATED", "email": "ann@example.com"}})
    assert response.status_code == 400 and "ORDER_CREATED" in response.json()["errors"][0]["message"]
    assert not Event.objects.exists()


def test_track_event_is_rate_limited_per_address(flows, api, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "TRACK_RATE_LIMIT_PER_MINUTE": 3}
    variables = {"key": PUBLIC_KEY, "input": {"event": "SEARCH_PERFORMED", "email": "ann@example.com",
                                              "payload": {"query": "tee"}}}
    codes = [api(TRACK, variables, REMOTE_ADDR="198.51.100.7")["trackEvent"]["errors"] for _ in range(4)]
    assert codes[:3] == [[], [], []] and codes[3][0]["code"] == "RATE_LIMITED"
    assert Event.objects.filter(name="search_performed").count() == 3
    # Another address is not affected; the next minute starts a new window.
    assert api(TRACK, variables, REMOTE_ADDR="198.51.100.8")["trackEvent"]["errors"] == []
    flows.advance(minutes=1)
    assert api(TRACK, variables, REMOTE_ADDR="198.51.100.7")["trackEvent"]["errors"] == []


def test_track_event_without_a_configured_key_is_off(flows, api, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "PUBLIC_KEY": ""}
    data = api(TRACK, {"key": "", "input": {"event": "PAGE_VIEWED", "email": "ann@example.com"}})
    assert data["trackEvent"]["errors"][0]["code"] == "INVALID_PUBLIC_KEY"


def test_templates_with_previews_and_create_from_template(flows, api, tokens):
    token = tokens.staff("MANAGE_PLUGINS")
    data = api("""{ flowTemplates { slug name triggerEvent kind graph { nodes { id } }
                    previews { stepId channel subject html text } } }""", token=token)
    templates = {t["slug"]: t for t in data["flowTemplates"]}
    assert list(templates) == JOURNEYS
    checkout = templates["abandoned_checkout"]
    assert checkout["triggerEvent"] == "checkout_abandoned" and checkout["previews"]
    assert all(p["subject"] and p["html"] and p["text"] for t in templates.values() for p in t["previews"])
    assert any("Monospace Tee" in p["html"] for p in checkout["previews"])

    mutation = """mutation($input: FlowCreateFromTemplateInput!) { flowCreateFromTemplate(input: $input) {
                    errors { field code message } flow { slug name status liveVersion { number } } } }"""
    data = api(mutation, {"input": {"template": "welcome", "publish": True}}, token=token)
    assert data["flowCreateFromTemplate"] == {"errors": [], "flow": {
        "slug": "welcome-series", "name": "Welcome series", "status": "LIVE", "liveVersion": {"number": 1}}}
    flows.contact("new@example.com", email_consent="subscribed")
    flows.event("customer_created", email="new@example.com", payload={"first_name": "Nia"})
    assert Enrolment.objects.filter(contact__email="new@example.com").exists()
    data = api(mutation, {"input": {"template": "nope"}}, token=token)
    assert data["flowCreateFromTemplate"]["errors"][0]["code"] == "NOT_FOUND"
    data = api(mutation, {"input": {"template": "welcome", "name": "Second", "slug": "second"}}, token=token)
    assert data["flowCreateFromTemplate"]["flow"] == {"slug": "second", "name": "Second", "status": "DRAFT",
                                                      "liveVersion": None}


@pytest.mark.parametrize("slug", JOURNEYS)
def test_every_template_previews_through_the_send_pipeline(db, slug):
    from saleor_flows.api.templates import _render_previews

    previews = _render_previews(slug, load_journey(slug))
    assert previews and all("{{" not in p.html and p.subject for p in previews)


SUBSCRIBE = """mutation($key: String!, $input: SubscribeInput!) { subscribe(publicKey: $key, input: $input) {
  errors { field code message } confirmationRequired } }"""


def test_subscribe_signs_a_shopper_up_with_proof_and_the_same_answer_for_known_people(flows, api):
    from saleor_flows.models import ConsentChange

    data = api(SUBSCRIBE, {"key": PUBLIC_KEY, "input": {"email": "New@Example.com", "phone": "030 1234567",
                                                        "country": "DE", "language": "de"}},
               REMOTE_ADDR="203.0.113.9", HTTP_USER_AGENT="Firefox/140")
    assert data["subscribe"] == {"errors": [], "confirmationRequired": False}
    contact = Contact.objects.get(email="new@example.com")
    assert (contact.email_consent, contact.sms_consent, contact.phone, contact.locale) == (
        "subscribed", "subscribed", "+49301234567", "de")
    proof = ConsentChange.objects.filter(contact=contact, channel="email").get()
    assert (proof.source, proof.ip, proof.user_agent) == ("storefront_form", "203.0.113.9", "Firefox/140")
    assert Event.objects.filter(name="subscribed", email="new@example.com").exists()
    again = api(SUBSCRIBE, {"key": PUBLIC_KEY, "input": {"email": "new@example.com"}})
    assert again["subscribe"] == data["subscribe"]  # never reveals that the address is known


def test_subscribe_refuses_bad_input_and_a_wrong_key_without_storing_anything(flows, api):
    bad = api(SUBSCRIBE, {"key": PUBLIC_KEY, "input": {"email": "not-an-address", "source": "import"}})
    assert {(e["field"], e["code"]) for e in bad["subscribe"]["errors"]} == {
        ("input.email", "INVALID"), ("input.source", "INVALID")}
    wrong = api(SUBSCRIBE, {"key": "nope", "input": {"email": "ann@example.com"}})
    assert wrong["subscribe"]["errors"][0]["code"] == "INVALID_PUBLIC_KEY"
    assert not Contact.objects.exists() and not Event.objects.exists()


def test_subscribe_with_double_opt_in_asks_for_confirmation_first(flows, api, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "DOUBLE_OPT_IN": True}
    data = api(SUBSCRIBE, {"key": PUBLIC_KEY, "input": {"email": "careful@example.com"}})
    assert data["subscribe"] == {"errors": [], "confirmationRequired": True}
    assert Contact.objects.get(email="careful@example.com").email_consent == "pending"
    (confirmation,) = flows.emails_to("careful@example.com")
    assert "/plugins/global/saleor.flows/confirm/" in confirmation.body
