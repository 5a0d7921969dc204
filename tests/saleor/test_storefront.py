"""Storefront tracking inside Saleor (issue 11, item 1): a product view mails Saleor's own product, whatever
the storefront claimed about it; a product that is not published in the channel starts nothing."""

import json
import re

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor_flows.models import Event  # noqa: E402

from .saleor_graphql import PLUGIN_UPDATE, gid, mutate  # noqa: E402

ENDPOINT = "/plugins/global/saleor.flows/graphql/"
TRACK = """mutation($key: String!, $input: TrackEventInput!) { trackEvent(publicKey: $key, input: $input) {
  errors { field code message } } }"""
HOSTILE = {"product_name": "Your account is locked", "product_url": "https://evil.example/login",
           "thumbnail": "https://tracker.evil.example/p.gif", "price": "0.01", "currency": "USD"}


@pytest.fixture
def storefront(flows_plugin, staff_api_client, permission_manage_plugins):
    mutate(staff_api_client, "pluginUpdate", PLUGIN_UPDATE, {"id": "saleor.flows", "input": {"configuration": [
        {"name": "public_key", "value": "pk_test_saleor"},
        {"name": "product_url_template", "value": "https://shop.example.com/products/{slug}/"},
    ]}}, permissions=[permission_manage_plugins])


def _view(client, variant, channel):
    response = client.post(ENDPOINT, data=json.dumps({"query": TRACK, "variables": {"key": "pk_test_saleor", "input": {
        "event": "PRODUCT_VIEWED", "email": "ann@example.com", "channel": channel.slug, "eventId": "v1",
        "payload": {**HOSTILE, "variant_id": gid(variant)}}}}), content_type="application/json")
    assert response.status_code == 200 and response.json()["data"]["trackEvent"]["errors"] == [], response.content


def test_a_product_view_mails_saleors_product_not_the_storefronts(client, flows, journey, storefront, shop_variant,
                                                                   channel_USD, product_with_image):
    journey("browse_abandonment")
    flows.contact("ann@example.com", email_consent="subscribed")
    _view(client, shop_variant, channel_USD)
    payload = Event.objects.get(name="product_viewed").payload
    assert payload["product_url"] == f"https://shop.example.com/products/{shop_variant.product.slug}/"
    assert (payload["product_name"], payload["price"], payload["currency"]) == ("Linen Summer Shirt", "24.90", "USD")
    media_url = payload["thumbnail"]  # Saleor's own media URL for the product's first image
    assert media_url.startswith("http") and "/products/" in media_url and "evil" not in media_url
    flows.advance(hours=2, minutes=1)
    [message] = flows.emails_to("ann@example.com")
    html = message.alternatives[0][0]
    assert message.subject == "Still thinking about Linen Summer Shirt?"
    assert "$24.90" in html and "evil.example" not in html + message.body and "locked" not in html
    assert f'src="{media_url}"' in html
    images = re.findall(r"""<img\b[^>]*src="([^"]*)""", html)
    assert images and all(url == media_url or "/plugins/global/saleor.flows/o/" in url for url in images), images


def test_a_product_not_published_in_the_channel_starts_nothing(client, flows, journey, storefront, shop_variant,
                                                               channel_USD):
    shop_variant.product.channel_listings.update(is_published=False)
    journey("browse_abandonment")
    flows.contact("ann@example.com", email_consent="subscribed")
    _view(client, shop_variant, channel_USD)
    payload = Event.objects.get(name="product_viewed").payload
    assert "product_name" not in payload and "product_url" not in payload
    flows.advance(hours=2, minutes=1)
    assert flows.emails_to("ann@example.com") == []
