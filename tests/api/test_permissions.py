"""The permission matrix: every operation × every kind of caller, over real HTTP with real tokens.

Levels: ``public`` (storefront, no token needed), ``flows`` (MANAGE_PLUGINS),
``contacts`` (MANAGE_PLUGINS + MANAGE_USERS: personal data and why-trails).
"""

import pytest

from saleor_flows.api.core import to_global_id
from saleor_flows.engine.definition import create_flow
from saleor_flows.models import (Attribution, Contact, Enrolment, Event, Flow, FlowSettings, Message,
                                 Simulation)
from tests.api.conftest import PUBLIC_KEY
from tests.flowkit import chain, email, nxt

CALLERS = {
    "anonymous": lambda t: None,
    "staff-without-permissions": lambda t: t.staff(),
    "staff-manage-plugins": lambda t: t.staff("MANAGE_PLUGINS"),
    "staff-manage-plugins-users": lambda t: t.staff("MANAGE_PLUGINS", "MANAGE_USERS"),
    "app-token": lambda t: t.app("MANAGE_PLUGINS", "MANAGE_USERS"),
    "expired-token": lambda t: t.staff("MANAGE_PLUGINS", "MANAGE_USERS", ttl=-60),
    "forged-signature": lambda t: t.staff("MANAGE_PLUGINS", "MANAGE_USERS", key=_forger()),
    "wrong-issuer": lambda t: t.staff("MANAGE_PLUGINS", "MANAGE_USERS", issuer="https://evil.example.com/graphql/"),
}
_forger_key = []


def _forger():
    from tests.api.conftest import new_key

    if not _forger_key:
        _forger_key.append(new_key())
    return _forger_key[0]


ALLOWED = {
    "public": {"anonymous", "staff-without-permissions", "staff-manage-plugins", "staff-manage-plugins-users",
               "app-token"},
    "flows": {"staff-manage-plugins", "staff-manage-plugins-users", "app-token"},
    "contacts": {"staff-manage-plugins-users", "app-token"},
}
BAD_TOKENS = {"expired-token", "forged-signature", "wrong-issuer"}

# name, level, root field, document (ids filled from the world below)
OPERATIONS = [
    ("flows", "flows", "flows", "{ flows(first: 5) { totalCount } }"),
    ("flow", "flows", "flow", "{ flow(id: \"%(flow)s\") { name metrics { entered } } }"),
    ("flowTemplates", "flows", "flowTemplates", "{ flowTemplates { slug } }"),
    ("flowTemplate", "flows", "flowTemplate", "{ flowTemplate(slug: \"welcome\") { previews { subject } } }"),
    ("contacts", "contacts", "contacts", "{ contacts(first: 5) { totalCount } }"),
    ("contact", "contacts", "contact", "{ contact(id: \"%(contact)s\") { email trail { kind } } }"),
    ("messages", "contacts", "messages", "{ messages(first: 5) { totalCount } }"),
    ("message", "contacts", "message", "{ message(id: \"%(message)s\") { to } }"),
    ("messagePreview-sample", "flows", "messagePreview",
     "{ messagePreview(flowId: \"%(flow)s\", stepId: \"email_1\") { preview { subject } } }"),
    ("messagePreview-contact", "contacts", "messagePreview",
     "{ messagePreview(flowId: \"%(flow)s\", stepId: \"email_1\", contactId: \"%(contact)s\") { preview { subject } } }"),
    ("flowCreate", "flows", "flowCreate", "mutation { flowCreate(input: {name: \"New\"}) { errors { code } } }"),
    ("flowUpdate", "flows", "flowUpdate",
     "mutation { flowUpdate(id: \"%(flow)s\", input: {name: \"Renamed\"}) { errors { code } } }"),
    ("flowValidate", "flows", "flowValidate", "mutation { flowValidate(id: \"%(flow)s\") { valid } }"),
    ("flowPublish", "flows", "flowPublish", "mutation { flowPublish(id: \"%(flow)s\") { errors { code } } }"),
    # A flow that sends contact data out of the shop (staff mail printing it, a webhook) reads contacts.
    ("flowPublish-contact-data", "contacts", "flowPublish",
     "mutation { flowPublish(id: \"%(leak)s\") { errors { code } } }"),
    ("flowCreate-webhook", "contacts", "flowCreate",
     "mutation { flowCreate(input: {name: \"Crm\", definition: {trigger: {event: \"order_created\"}, start: \"crm\", "
     "steps: {crm: {type: \"webhook\", url: \"https://crm.example.com/hook\"}}}}) { errors { code } } }"),
    ("flowPause", "flows", "flowPause", "mutation { flowPause(id: \"%(flow)s\") { errors { code } } }"),
    ("flowResume", "flows", "flowResume", "mutation { flowResume(id: \"%(flow)s\") { errors { code } } }"),
    ("flowArchive", "flows", "flowArchive", "mutation { flowArchive(id: \"%(other)s\") { errors { code } } }"),
    ("flowEnrolmentsMigrate", "flows", "flowEnrolmentsMigrate",
     "mutation { flowEnrolmentsMigrate(id: \"%(flow)s\", strategy: FINISH_ON_OLD) { errors { code } } }"),
    ("flowCreateFromTemplate", "flows", "flowCreateFromTemplate",
     "mutation { flowCreateFromTemplate(input: {template: \"welcome\"}) { errors { code } } }"),
    ("flowTestSend-sample", "flows", "flowTestSend",
     "mutation { flowTestSend(input: {flowId: \"%(flow)s\", stepId: \"email_1\", to: \"qa@example.com\"}) "
     "{ errors { code } } }"),
    ("flowTestSend-contact", "contacts", "flowTestSend",
     "mutation { flowTestSend(input: {flowId: \"%(flow)s\", stepId: \"email_1\", to: \"qa@example.com\", "
     "contactId: \"%(contact)s\"}) { errors { code } } }"),
    ("eventRecord", "contacts", "eventRecord",
     "mutation { eventRecord(input: {name: \"quiz_completed\", email: \"ann@example.com\"}) { errors { code } } }"),
    ("contactConsentUpdate", "contacts", "contactConsentUpdate",
     "mutation { contactConsentUpdate(id: \"%(contact)s\", input: {channel: EMAIL, status: SUBSCRIBED}) "
     "{ errors { code } } }"),
    ("flowReport", "flows", "flowReport", "{ flowReport(id: \"%(flow)s\") }"),
    ("flowSplitReport", "flows", "flowSplitReport", "{ flowSplitReport(id: \"%(ab)s\", stepId: \"ab\") }"),
    ("flowHoldoutReport", "flows", "flowHoldoutReport", "{ flowHoldoutReport(id: \"%(flow)s\") }"),
    ("flowsExport", "flows", "flowsExport", "{ flowsExport(slugs: [\"welcome\"]) }"),
    ("flowsImport", "flows", "flowsImport",
     "mutation { flowsImport(text: \"format: saleor-flows/1\\nflows: []\\n\", dryRun: true) { errors { code } } }"),
    ("flowSimulate", "flows", "flowSimulate",
     "mutation { flowSimulate(id: \"%(flow)s\", days: 7) { errors { code } } }"),
    ("flowSimulation", "flows", "flowSimulation", "{ flowSimulation(id: \"%(simulation)s\") { status } }"),
    ("dashboardHome", "flows", "dashboardHome", "{ dashboardHome(days: 7) { flows { sent } } }"),
    ("orderAttribution", "contacts", "orderAttribution",
     "{ orderAttribution(orderId: \"%(order)s\") { flow { slug } } }"),
    ("flowSettings", "flows", "flowSettings", "{ flowSettings { effective { frequencyCapHours { email } } } }"),
    ("flowSettingsUpdate", "flows", "flowSettingsUpdate",
     "mutation { flowSettingsUpdate(input: {quietHours: {sms: \"22:00-07:00\"}}) { errors { code } } }"),
    ("journeyExit", "contacts", "journeyExit", "mutation { journeyExit(id: \"%(journey)s\") { errors { code } } }"),
    ("subscribe", "public", "subscribe",
     "mutation { subscribe(publicKey: \"%(public_key)s\", input: {email: \"new@example.com\"}) "
     "{ errors { code } } }"),
    ("trackEvent", "public", "trackEvent",
     "mutation { trackEvent(publicKey: \"%(public_key)s\", input: {event: PAGE_VIEWED, email: \"ann@example.com\"}) "
     "{ errors { code } } }"),
]


def test_every_field_of_the_schema_is_in_the_matrix():
    from saleor_flows.api.schema import schema

    fields = set(schema.get_query_type().fields) | set(schema.get_mutation_type().fields)
    assert fields == {root for _, _, root, _ in OPERATIONS}


@pytest.fixture
def world(flows, api_settings):
    api_settings.SALEOR_FLOWS = {**api_settings.SALEOR_FLOWS, "STAFF_NOTIFY_RECIPIENTS": ["owner@shop.example"]}
    definition = chain("customer_created", ("wait_1d", nxt({"type": "wait", "duration": {"days": 1}})),
                       ("email_1", email("Welcome {{ contact.first_name }}")))
    flow = flows.flow(definition, slug="welcome")
    other = flows.flow({**definition, "trigger": {"event": "order_created"}}, slug="other")
    flows.contact("ann@example.com", first_name="Ann", email_consent="subscribed")
    flows.event("customer_created", email="ann@example.com")
    flows.advance(days=1, minutes=1)
    contact, message = Contact.objects.get(email="ann@example.com"), Message.objects.get()
    from saleor_flows.engine.simulation import start_simulation

    simulation = start_simulation(flow, days=3)
    Message.objects.filter(pk=message.pk).update(clicked_at=flows.now)
    flows.event("order_created", email="ann@example.com", payload={"id": "T3JkZXI6Nw==", "total_gross_amount": "9.00",
                                                                   "currency": "EUR"})
    assert Attribution.objects.filter(order_key="order:T3JkZXI6Nw==").exists()
    flows.contact("cy@example.com")
    flows.event("customer_created", email="cy@example.com")  # an active journey to exit
    ab = flows.flow(chain("order_created", ("ab", {"type": "random_split", "variants": [
        {"name": "a", "weight": 1, "next": "mail_a"}, {"name": "b", "weight": 1, "next": "mail_b"}]}),
        ("mail_a", email("A")), ("mail_b", email("B"))), slug="ab")
    leak = create_flow("leak", chain("customer_created", ("tell", {
        "type": "notify_staff", "to": ["owner@shop.example"], "subject": "New customer", "body": "{{ contact.email }}",
        "next": None})))
    return {"flow": to_global_id("Flow", flow.pk), "other": to_global_id("Flow", other.pk),
            "leak": to_global_id("Flow", leak.pk),
            "contact": to_global_id("Contact", contact.pk), "message": to_global_id("Message", message.pk),
            "simulation": to_global_id("Simulation", simulation.pk), "ab": to_global_id("Flow", ab.pk), "public_key": PUBLIC_KEY,
            "order": "T3JkZXI6Nw==", "journey": to_global_id("Journey", Enrolment.objects.filter(
                status="active").get(flow=flow).pk)}


@pytest.mark.parametrize("name, level, root, document", OPERATIONS, ids=[op[0] for op in OPERATIONS])
def test_permission_matrix(world, api, tokens, name, level, root, document):
    query = document % world
    for caller, make_token in CALLERS.items():
        before = _state()
        response = api.post(query, token=make_token(tokens))
        body = response.json()
        if caller in BAD_TOKENS:
            assert response.status_code == 401, (caller, body)
            assert body["errors"][0]["extensions"]["exception"]["code"] in (
                "ExpiredSignatureError", "InvalidSignatureError", "InvalidTokenError"), (caller, body)
            assert _state() == before, caller
        elif caller in ALLOWED[level]:
            assert response.status_code == 200 and not body.get("errors"), (caller, body)
            assert body["data"][root] is not None, (caller, body)
        else:
            assert response.status_code == 200, (caller, body)
            assert body["data"][root] is None, (caller, body)
            (error,) = body["errors"]
            assert error["extensions"]["exception"]["code"] == "PermissionDenied", (caller, body)
            assert error["path"] == [root]
            assert _state() == before, caller


def _state():
    """What a refused call must not have changed."""
    return (list(Flow.objects.order_by("pk").values_list("slug", "name", "status", "live_version_id")),
            list(Contact.objects.order_by("pk").values_list("email", "email_consent")),
            Message.objects.count(), Event.objects.count(), Simulation.objects.count(),
            list(Enrolment.objects.order_by("pk").values_list("status", flat=True)),
            list(FlowSettings.objects.values_list("quiet_hours", flat=True)))
