"""Recommendations inside Saleor (issue 13, item 1): Saleor's catalog answers from real products: the same
category when nothing was bought together, the channel's price, the product's translation, stock in the
channel's warehouses, and order lines that name their product and its page."""

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor_flows.engine.recommendations import recommend  # noqa: E402

from .saleor_graphql import PLUGIN_UPDATE, gid, mutate  # noqa: E402


@pytest.fixture
def product_pages(flows_plugin, staff_api_client, permission_manage_plugins):
    mutate(staff_api_client, "pluginUpdate", PLUGIN_UPDATE, {"id": "saleor.flows", "input": {"configuration": [
        {"name": "product_url_template", "value": "https://shop.example.com/products/{slug}/"},
    ]}}, permissions=[permission_manage_plugins])


def test_saleors_catalog_recommends_the_same_category_in_stock_priced_in_the_channel(
        flows, product_pages, product_list, channel_USD):
    from saleor.product.models import ProductTranslation
    from saleor.warehouse.models import Stock

    first, second, third = product_list
    Stock.objects.filter(product_variant__product=third).update(quantity=0)  # sold out
    ProductTranslation.objects.create(product=second, language_code="de", name="Testprodukt Zwei")

    picks = recommend([gid(first)], channel=channel_USD.slug, limit=3)
    print("recommended:", picks)
    assert [(p["product_id"], p["reason"], p["price"], p["currency"]) for p in picks] == [
        (gid(second), "similar", "20.00", "USD")]
    assert picks[0]["product_url"] == "https://shop.example.com/products/test-product-b/"
    assert [p["product_name"] for p in recommend([gid(first)], channel=channel_USD.slug, language="de")] == [
        "Testprodukt Zwei"]

    Stock.objects.filter(product_variant__product=third).update(quantity=5)
    assert {p["product_id"] for p in recommend([gid(first)], channel=channel_USD.slug, limit=3)} == {
        gid(second), gid(third)}  # back in stock (newest first: both were created together)
    second.channel_listings.update(is_published=False)  # not for sale in the channel: never shown
    assert [p["product_id"] for p in recommend([gid(first)], channel=channel_USD.slug, limit=3)] == [gid(third)]


def test_order_lines_name_their_product_and_its_page(flows, product_pages, product_list):
    from saleor_flows.saleor_plugin.payloads import with_products

    variant = product_list[1].variants.get()
    payload = {"lines": [{"product_variant_id": gid(variant), "product_name": "Test product 2"},
                         {"product_variant_id": "not-an-id"}]}
    with_products(payload)
    assert payload["lines"][0]["product_id"] == gid(product_list[1])
    assert payload["lines"][0]["product_url"] == "https://shop.example.com/products/test-product-b/"
    assert "product_id" not in payload["lines"][1]
