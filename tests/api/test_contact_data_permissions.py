"""A flow that sends contact data out of the shop needs what reading contacts needs (issue 11, item 5).

Over real HTTP with the suite's RS256 tokens: MANAGE_PLUGINS alone builds and
publishes flows, but not one whose staff notification prints contact data or
whose webhook posts the contact somewhere; MANAGE_USERS besides it does.
"""

import json

import pytest

from saleor_flows.api.core import to_global_id
from saleor_flows.engine.definition import create_flow
from saleor_flows.models import Flow
from tests.flowkit import chain, email

LEAK = chain("customer_created", ("tell", {"type": "notify_staff", "to": ["owner@shop.example"],
                                           "subject": "New customer", "body": "{{ contact.email }}", "next": None}))
HOOK = chain("customer_created", ("crm", {"type": "webhook", "url": "https://crm.example.com/hook", "next": None}))
HARMLESS = chain("customer_created", ("tell", {"type": "notify_staff", "to": ["owner@shop.example"],
                                               "subject": "{{ flow.name }}: one more customer", "body": "See the shop.",
                                               "next": None}))

PUBLISH = "mutation($id: ID!) { flowPublish(id: $id) { errors { code message } version { number } } }"
CREATE = "mutation($d: JSON) { flowCreate(input: {name: \"Leak\", definition: $d}) { errors { code } flow { slug } } }"
UPDATE = "mutation($id: ID!, $d: JSON) { flowUpdate(id: $id, input: {definition: $d}) { errors { code } } }"
IMPORT = "mutation($t: String!) { flowsImport(text: $t, publish: true) { errors { code } result { created } } }"


@pytest.fixture(autouse=True)
def staff_address(api_settings, flows):
    api_settings.SALEOR_FLOWS = {**api_settings.SALEOR_FLOWS, "STAFF_NOTIFY_RECIPIENTS": ["owner@shop.example"]}


def denied(response, root):
    body = response.json()
    assert response.status_code == 200 and body["data"][root] is None, body
    (error,) = body["errors"]
    assert error["extensions"]["exception"]["code"] == "PermissionDenied"
    assert error["extensions"]["exception"]["permissions"] == ["MANAGE_PLUGINS", "MANAGE_USERS"]
    return error["message"]


@pytest.mark.parametrize("definition, why", [
    (LEAK, "step 'tell' sends contact data out of the shop: its text uses contact"),
    (HOOK, "step 'crm' sends contact data out of the shop: a webhook posts the contact's email and user id"),
], ids=["notify_staff-with-contact-email", "webhook"])
def test_manage_plugins_alone_cannot_publish_a_flow_that_sends_contact_data(api, tokens, definition, why):
    flow = create_flow("leak", definition)  # e.g. saved earlier by someone who may
    message = denied(api.post(PUBLISH, {"id": to_global_id("Flow", flow.pk)}, token=tokens.staff("MANAGE_PLUGINS")),
                     "flowPublish")
    assert message == f"You need all of these permissions to do this: MANAGE_PLUGINS, MANAGE_USERS ({why})"
    flow.refresh_from_db()
    assert flow.status == "draft" and flow.live_version_id is None


def test_manage_plugins_alone_cannot_save_or_import_such_a_flow(api, tokens, flows):
    only_plugins = tokens.staff("MANAGE_PLUGINS")
    denied(api.post(CREATE, {"d": LEAK}, token=only_plugins), "flowCreate")
    mine = flows.flow(chain("customer_created", ("hello", email("Hello"))), slug="mine")
    denied(api.post(UPDATE, {"id": to_global_id("Flow", mine.pk), "d": LEAK}, token=only_plugins), "flowUpdate")
    text = json.dumps({"format": "saleor-flows/1", "flows": [{"slug": "crm", "definition": HOOK}]})
    denied(api.post(IMPORT, {"t": text}, token=only_plugins), "flowsImport")
    assert sorted(Flow.objects.values_list("slug", flat=True)) == ["mine"]
    mine.refresh_from_db()
    assert "hello" in mine.definition["steps"]


@pytest.mark.parametrize("token", ["staff", "app"])
def test_a_caller_who_may_read_contacts_publishes_it(api, tokens, token):
    flow = create_flow("leak", LEAK)
    data = api(PUBLISH, {"id": to_global_id("Flow", flow.pk)},
               token=getattr(tokens, token)("MANAGE_PLUGINS", "MANAGE_USERS"))
    assert data["flowPublish"] == {"errors": [], "version": {"number": 1}}
    text = json.dumps({"format": "saleor-flows/1", "flows": [{"slug": "crm", "definition": HOOK}]})
    assert api(IMPORT, {"t": text}, token=tokens.staff("MANAGE_PLUGINS", "MANAGE_USERS"))["flowsImport"] == {
        "errors": [], "result": {"created": ["crm"]}}


def test_a_staff_notification_without_contact_data_needs_manage_plugins_only(api, tokens):
    flow = create_flow("count", HARMLESS)
    data = api(PUBLISH, {"id": to_global_id("Flow", flow.pk)}, token=tokens.staff("MANAGE_PLUGINS"))
    assert data["flowPublish"] == {"errors": [], "version": {"number": 1}}


def test_publishing_to_a_non_staff_address_is_refused_with_the_step_named(api, tokens):
    outsider = chain("customer_created", ("tell", {"type": "notify_staff", "to": ["me@gmail.example"],
                                                   "subject": "x", "body": "{{ contact.email }}", "next": None}))
    flow = create_flow("outsider", outsider)
    data = api(PUBLISH, {"id": to_global_id("Flow", flow.pk)}, token=tokens.staff("MANAGE_PLUGINS", "MANAGE_USERS"))
    (error,) = data["flowPublish"]["errors"]
    assert error["code"] == "INVALID_DEFINITION"
    assert error["message"].startswith("not a staff address: me@gmail.example")
