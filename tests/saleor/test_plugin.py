"""The plugin inside Saleor's plugin manager: activation, at-least-once hooks, failures that stay ours."""

import json
import logging
import re
from urllib.parse import urlsplit

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor.account.models import User  # noqa: E402
from saleor.checkout.models import Checkout  # noqa: E402
from saleor.order.models import Order  # noqa: E402
from saleor.plugins.manager import get_plugins_manager  # noqa: E402

from saleor_flows.models import Contact, Enrolment, Event  # noqa: E402

from .saleor_graphql import (  # noqa: E402
    PLUGIN_UPDATE, complete, create_checkout, mutate, pay, prepare_for_payment, register)

PLUGINS_QUERY = """
query { plugins(first: 50) { edges { node { id name globalConfiguration { active } } } } }
"""


def test_plugin_is_listed_and_active_after_plugin_update(staff_api_client, permission_manage_plugins, flows_plugin,
                                                         client):
    data = staff_api_client.post_graphql(PLUGINS_QUERY, permissions=[permission_manage_plugins],
                                         check_no_permissions=False).json()["data"]
    nodes = {edge["node"]["id"]: edge["node"] for edge in data["plugins"]["edges"]}
    assert nodes["saleor.flows"]["name"] == "Flows"
    assert nodes["saleor.flows"]["globalConfiguration"]["active"] is True
    plugin = get_plugins_manager(allow_replica=False).get_plugin("saleor.flows")
    assert plugin.active and not plugin.CONFIGURATION_PER_CHANNEL

    response = client.get("/plugins/global/saleor.flows/health")  # the plugin's own HTTP endpoint
    assert response.status_code == 200 and response.json() == {"plugin": "saleor.flows", "active": True}


def test_inactive_plugin_records_nothing(api_client, staff_api_client, permission_manage_plugins, channel_USD, flows,
                                        journey):
    journey("welcome")
    mutate(staff_api_client, "pluginUpdate", PLUGIN_UPDATE, {"id": "saleor.flows", "input": {"active": False}},
           permissions=[permission_manage_plugins])

    register(api_client, "quiet@example.com", channel=channel_USD.slug)

    assert User.objects.filter(email="quiet@example.com").exists()
    assert not Event.objects.exists()
    assert flows.outbox == []


def test_same_customer_event_delivered_twice_enrols_once(api_client, channel_USD, flows, journey):
    journey("welcome")
    register(api_client, "twice@example.com", channel=channel_USD.slug)  # delivery 1: Saleor's own hook call
    user = User.objects.get(email="twice@example.com")

    manager = get_plugins_manager(allow_replica=False)
    manager.customer_created(user)  # delivery 2 and 3 of the same occurrence
    manager.customer_created(user)

    assert Event.objects.filter(name="customer_created").count() == 1
    assert Enrolment.objects.filter(flow__slug="welcome").count() == 1
    assert len(flows.emails_to("twice@example.com")) == 1


def test_same_checkout_update_delivered_twice_is_one_event(api_client, channel_USD, shop_variant, flows, journey):
    journey("abandoned_checkout")
    flows.contact("cart@example.com", email_consent="subscribed")
    created = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email="cart@example.com")
    checkout = Checkout.objects.get(token=created["token"])

    manager = get_plugins_manager(allow_replica=False)
    manager.checkout_updated(checkout)
    manager.checkout_updated(checkout)  # the same version of the checkout (same last_change)
    assert Event.objects.filter(name="checkout_updated").count() == 1

    flows.advance(minutes=61)  # idle: abandoned once
    flows.advance(hours=1)  # the journey's first wait
    assert Event.objects.filter(name="checkout_abandoned").count() == 1
    assert len(flows.emails_to("cart@example.com")) == 1


def test_same_paid_order_delivered_twice_sends_one_thank_you(
        user_api_client, customer_user, app_api_client, permission_manage_payments, channel_USD, shop_variant,
        flows, journey):
    # post_purchase re-enters on every paid order ("always"): only the dedupe key stands between a
    # redelivered hook and a second thank-you.
    journey("post_purchase")
    checkout = create_checkout(user_api_client, channel=channel_USD.slug, variant=shop_variant,
                               email=customer_user.email)
    prepare_for_payment(user_api_client, checkout["id"])
    pay(app_api_client, checkout["id"], permission_manage_payments)
    order = Order.objects.get(number=complete(user_api_client, checkout["id"])["number"])
    assert len(flows.emails_to(customer_user.email)) == 1

    manager = get_plugins_manager(allow_replica=False)
    manager.order_fully_paid(order)
    manager.order_fully_paid(order)

    assert Event.objects.filter(name="order_fully_paid").count() == 1
    assert Enrolment.objects.filter(flow__slug="post_purchase").count() == 1
    assert len(flows.emails_to(customer_user.email)) == 1


def _boom(*args, **kwargs):
    raise RuntimeError("boom: payload building failed")


def test_failing_payload_building_never_breaks_the_mutation(api_client, channel_USD, shop_variant, flows, journey,
                                                            monkeypatch, caplog):
    journey("abandoned_checkout")
    monkeypatch.setattr("saleor_flows.saleor_plugin.payloads.build", _boom)
    caplog.set_level(logging.WARNING)

    checkout = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email="x@example.com")

    assert Checkout.objects.filter(token=checkout["token"]).exists()  # Saleor's mutation went through
    event = Event.objects.get(name="checkout_created")  # and the event is kept, dead-lettered with its reason
    assert event.status == Event.Status.DEAD
    assert "boom: payload building failed" in event.error
    assert any("boom: payload building failed" in (r.exc_text or r.getMessage()) for r in caplog.records
               if r.name.startswith("saleor_flows")), [r.getMessage() for r in caplog.records]


@pytest.mark.parametrize("broken", ["saleor_flows.saleor_plugin.payloads.describe",
                                    "saleor_flows.saleor_plugin.plugin.record_event"])
def test_failing_hook_never_breaks_the_mutation(api_client, channel_USD, shop_variant, flows, journey, monkeypatch,
                                               caplog, broken):
    journey("welcome")
    monkeypatch.setattr(broken, _boom)
    caplog.set_level(logging.WARNING)

    register(api_client, "still.works@example.com", channel=channel_USD.slug)
    checkout = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant,
                               email="still.works@example.com")

    assert User.objects.filter(email="still.works@example.com").exists()
    assert Checkout.objects.filter(token=checkout["token"]).exists()
    assert not Event.objects.exists()
    logged = [r.getMessage() for r in caplog.records if r.name == "saleor_flows.saleor_plugin.plugin"]
    assert "saleor-flows: could not record customer_created; the request goes on" in logged
    assert "saleor-flows: could not record checkout_created; the request goes on" in logged


def test_unsubscribe_link_in_a_sent_email_works_in_saleor(api_client, channel_USD, flows, journey, client,
                                                           django_capture_on_commit_callbacks):
    journey("welcome")
    register(api_client, "leaving@example.com", channel=channel_USD.slug)
    html = flows.emails_to("leaving@example.com")[0].alternatives[0][0]
    link = re.search(r'href="([^"]*/plugins/global/saleor\.flows/unsubscribe/[^"]*)"', html).group(1)
    assert link.startswith("https://api.shop.example.com/")  # the plugin's public_url

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(urlsplit(link).path, {"List-Unsubscribe": "One-Click"})  # RFC 8058 one-click

    assert response.status_code == 200, response.content
    assert Contact.objects.get(email="leaving@example.com").email_consent == "unsubscribed"
    # ... and the storefront sees it in Saleor's own metadata key.
    from saleor.account.models import User

    assert User.objects.get(email="leaving@example.com").metadata["marketing_consent"] == "false"
    assert client.get(urlsplit(link).path).status_code == 200  # GET only shows the page


FLOW_SETTINGS_UPDATE = """mutation($input: FlowSettingsInput!) { flowSettingsUpdate(input: $input) {
    errors { field code message } settings { stored { quietHours { sms } } } } }"""


def _flows_api(client, user, query, variables):
    from saleor.core.jwt import create_access_token

    response = client.post("/plugins/global/saleor.flows/graphql/",
                           data=json.dumps({"query": query, "variables": variables}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {create_access_token(user)}")
    assert response.status_code == 200, response.content
    return response.json()["data"]


def test_flow_settings_live_in_the_app_not_on_the_plugin_page(client, staff_api_client, staff_user,
                                                              permission_manage_plugins, flows_plugin):
    """Saleor's plugin page keeps the install-level fields; quiet hours & co. are the App's, checked per field."""
    staff_user.user_permissions.add(permission_manage_plugins)
    data = mutate(staff_api_client, "pluginUpdate", PLUGIN_UPDATE, {"id": "saleor.flows", "input": {
        "configuration": [{"name": "sender_name", "value": "Shop"}]}}, permissions=[permission_manage_plugins])
    names = {item["name"] for item in data["plugin"]["globalConfiguration"]["configuration"]}
    assert {"sender_address", "public_url", "sms_backend"} <= names
    assert not names & {"quiet_hours", "email_quiet_hours", "email_cap_hours", "sms_cap_hours", "channel_senders",
                        "topics"}
    refused = _flows_api(client, staff_user, FLOW_SETTINGS_UPDATE, {"input": {
        "quietHours": {"sms": "9pm-8am"}, "senders": [{"channel": "default-channel", "fromEmail": "{oops"}]}})
    errors = {e["field"]: e for e in refused["flowSettingsUpdate"]["errors"]}
    assert set(errors) == {"quietHours.sms", "senders.0.fromEmail"}
    assert "HH:MM-HH:MM" in errors["quietHours.sms"]["message"] and errors["quietHours.sms"]["code"] == "INVALID"
    saved = _flows_api(client, staff_user, FLOW_SETTINGS_UPDATE, {"input": {"quietHours": {"sms": "22:00-07:00"}}})
    assert saved["flowSettingsUpdate"]["settings"]["stored"]["quietHours"] == {"sms": "22:00-07:00"}


def test_each_channel_sends_as_its_configured_sender(user_api_client, customer_user, app_api_client,
                                                     permission_manage_payments, client, staff_user,
                                                     permission_manage_plugins, channel_USD, shop_variant, flows,
                                                     journey):
    staff_user.user_permissions.add(permission_manage_plugins)
    data = _flows_api(client, staff_user, FLOW_SETTINGS_UPDATE, {"input": {"senders": [
        {"channel": channel_USD.slug, "fromEmail": "US Shop <us@shop.example.com>"}]}})
    assert data["flowSettingsUpdate"]["errors"] == []
    journey("post_purchase")
    checkout = create_checkout(user_api_client, channel=channel_USD.slug, variant=shop_variant,
                               email=customer_user.email)
    prepare_for_payment(user_api_client, checkout["id"])
    pay(app_api_client, checkout["id"], permission_manage_payments)
    complete(user_api_client, checkout["id"])
    (thanks,) = flows.emails_to(customer_user.email)
    assert thanks.from_email == "US Shop <us@shop.example.com>"
