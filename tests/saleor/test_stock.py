"""A variant out of stock, a shopper who asked to be told, a staff restock in Saleor → one back-in-stock email."""

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor.warehouse.models import Stock  # noqa: E402

from saleor_flows.models import Event, StockAlert  # noqa: E402

from .saleor_graphql import gid, restock  # noqa: E402

WAITING = "waiting.for.it@example.com"


def test_restocked_variant_tells_the_requester_once(staff_api_client, permission_manage_products, shop_variant,
                                                    warehouse, flows, journey):
    from saleor_flows.saleor_plugin.tasks import check_back_in_stock

    journey("back_in_stock")
    Stock.objects.filter(product_variant=shop_variant).update(quantity=0)
    # The storefront's "notify me" button (an event the storefront records; Saleor has no such hook).
    flows.event("back_in_stock_requested", email=WAITING, payload={
        "variant_id": gid(shop_variant), "product_name": "Linen Summer Shirt", "variant_name": "M",
        "price": "24.90", "currency": "USD"})
    assert StockAlert.objects.filter(contact__email=WAITING, notified_at=None).count() == 1

    # The periodic task, run through Saleor's Celery app (eager in Saleor's test settings).
    assert check_back_in_stock.delay().get() == 0  # still sold out
    assert flows.emails_to(WAITING) == []

    restock(staff_api_client, shop_variant, warehouse, 5, permission_manage_products)  # staff, in the dashboard
    assert check_back_in_stock.delay().get() == 1
    assert [m.subject for m in flows.emails_to(WAITING)] == ["Linen Summer Shirt is back in stock"]
    assert "$24.90" in flows.emails_to(WAITING)[0].alternatives[0][0]
    assert Event.objects.get(name="back_in_stock").payload["quantity_available"] == 5

    flows.advance(hours=1)
    assert check_back_in_stock.delay().get() == 0  # told once
    assert len(flows.emails_to(WAITING)) == 1
