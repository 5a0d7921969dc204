"""App mode's subscription queries, run by a real Saleor 3.24 on its own objects (its webhook payload engine, the
App's permissions), then shaped and normalized as the App edge does: the events the plugin records."""

import json

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor.graphql.webhook.subscription_payload import (  # noqa: E402
    generate_payload_from_subscription, initialize_request)
from saleor.warehouse.models import Stock  # noqa: E402

from saleor_flows.saleor_app import shapes  # noqa: E402
from saleor_flows.saleor_app.queries import BY_EVENT  # noqa: E402
from saleor_flows.saleor_plugin.translate import normalize  # noqa: E402


@pytest.fixture
def flows_app(app, permission_manage_users, permission_manage_checkouts, permission_manage_orders,
              permission_manage_products):
    """Saleor's App fixture with the permissions the App's manifest asks for."""
    app.permissions.add(permission_manage_users, permission_manage_checkouts, permission_manage_orders,
                        permission_manage_products)
    return app


def deliver(app, event: str, subscribable_object) -> dict:
    """The payload Saleor would deliver for ``event``, through the JSON text it sends."""
    webhook = BY_EVENT[event]
    request = initialize_request(app=app, event_type=event.lower())
    payload = generate_payload_from_subscription(event.lower(), subscribable_object, webhook.query, request)
    assert payload is not None, f"Saleor could not run the {event} query"
    payload = json.loads(json.dumps(payload, default=str))
    assert payload["__typename"] == webhook.typename and payload["issuedAt"], payload
    return payload


def test_customer_queries_answer_what_the_engine_reads(flows_app, customer_user):
    customer_user.store_value_in_metadata({"marketing_consent": "true", "birthday": "1990-04-02"})
    customer_user.save(update_fields=["metadata"])
    for event in ("CUSTOMER_CREATED", "CUSTOMER_UPDATED", "CUSTOMER_METADATA_UPDATED", "ACCOUNT_CONFIRMED",
                  "CUSTOMER_DELETED", "ACCOUNT_DELETED"):
        # Saleor hands account events their user in a dict (with the channel, token, redirect URL).
        payload = deliver(flows_app, event, {"user": customer_user} if event.startswith("ACCOUNT_") else customer_user)
        data, extra = shapes.legacy_payload(event.lower(), payload)
        normalized = normalize(event.lower(), data, consent_metadata_key="marketing_consent", **extra)
        assert normalized["email"] == customer_user.email and normalized["user_id"] == extra["user_id"]
        assert {key: data["metadata"].get(key) for key in ("marketing_consent", "birthday")} == {
            "marketing_consent": "true", "birthday": "1990-04-02"}
        assert data["first_name"] == customer_user.first_name and data["language_code"]
        assert normalized["payload"]["consent"]["email"] == "subscribed"


def test_checkout_queries_bring_lines_prices_and_the_token(flows_app, checkout_with_item):
    for event in ("CHECKOUT_CREATED", "CHECKOUT_UPDATED", "CHECKOUT_FULLY_PAID", "CHECKOUT_METADATA_UPDATED"):
        payload = deliver(flows_app, event, checkout_with_item)
        data, extra = shapes.legacy_payload(event.lower(), payload)
        normalized = normalize(event.lower(), data, checkout_url_template="https://shop/c/{token}", **extra)
        assert normalized["payload"]["token"] == str(checkout_with_item.token)
        assert normalized["email"] == checkout_with_item.email and normalized["channel"] == \
            checkout_with_item.channel.slug
        line = data["lines"][0]
        first = checkout_with_item.lines.first()
        assert line["product_name"] == first.variant.product.name and line["quantity"] == first.quantity
        assert line["variant_id"] and line["product_slug"] == first.variant.product.slug
        assert line["base_price"] and line["currency"] == checkout_with_item.currency
        assert normalized["payload"]["total_gross_amount"] and normalized["payload"]["checkout_url"]


def test_order_queries_bring_totals_lines_and_the_checkout(flows_app, order_with_lines):
    for event in ("ORDER_CREATED", "ORDER_CONFIRMED", "ORDER_PAID", "ORDER_FULLY_PAID", "ORDER_FULFILLED",
                  "ORDER_CANCELLED", "ORDER_REFUNDED", "ORDER_FULLY_REFUNDED", "ORDER_METADATA_UPDATED"):
        payload = deliver(flows_app, event, order_with_lines)
        data, extra = shapes.legacy_payload(event.lower(), payload)
        normalized = normalize(event.lower(), data, **extra)
        assert normalized["email"] == order_with_lines.user_email
        assert data["total_gross_amount"] == f"{order_with_lines.total_gross_amount:.2f}"
        assert data["currency"] == order_with_lines.currency and data["number"] == order_with_lines.number
        assert [line["product_name"] for line in data["lines"]] == [
            line.product_name for line in order_with_lines.lines.order_by("created_at", "id")] or data["lines"]
        assert all(line["unit_price_gross_amount"] for line in data["lines"])


def test_fulfilment_and_back_in_stock_and_app_deleted(flows_app, fulfilled_order, variant, warehouse):
    fulfillment = fulfilled_order.fulfillments.first()
    payload = deliver(flows_app, "FULFILLMENT_CREATED", {"fulfillment": fulfillment, "notify_customer": True})
    data, extra = shapes.legacy_payload("fulfillment_created", payload)
    normalized = normalize("fulfillment_created", data, **extra)
    assert normalized["email"] == fulfilled_order.user_email and data["lines"]

    stock, _ = Stock.objects.update_or_create(product_variant=variant, warehouse=warehouse,
                                              defaults={"quantity": 7, "quantity_allocated": 2})
    payload = deliver(flows_app, "PRODUCT_VARIANT_BACK_IN_STOCK", stock)
    restocked = shapes.variant_stock(payload["productVariant"])
    assert restocked["variant_id"] and restocked["product_name"] == variant.product.name
    assert restocked["quantity_available"] >= 5  # this warehouse's 7 - 2, and whatever others hold

    payload = deliver(flows_app, "APP_DELETED", flows_app)
    assert payload["app"]["id"]


def test_saleor_answers_the_hourly_token_check_as_the_app_reads_it(app_api_client, app):
    """``tasks.check_token``: our token → the App's id; a deleted token → no App (never mistaken for "installed")."""
    from saleor_flows.saleor_app.tasks import TOKEN_CHECK

    answer = app_api_client.post_graphql(TOKEN_CHECK)
    assert answer.status_code == 200 and answer.json()["data"]["app"]["id"]
    app.tokens.all().delete()  # what uninstalling does to the App's tokens, sooner or later
    answer = app_api_client.post_graphql(TOKEN_CHECK)
    body = answer.json()
    # The shape tasks.check_token reads as "refused" (and tests/test_saleor_app.py's stand-in answers).
    assert answer.status_code == 200 and body["data"] == {"app": None}
    assert [((error.get("extensions") or {}).get("exception") or {}).get("code") for error in body["errors"]] == [
        "PermissionDenied"]
