"""Saleor-side periodic work: things only Saleor's own tables can tell us.

Imported by ``SaleorFlowsConfig.ready()`` when the plugin is in ``PLUGINS``,
which registers these tasks (and the engine's) on Saleor's Celery app.
"""

from celery import shared_task
from django.db.models import F, Sum
from saleor.core.db.connection import allow_writer

from .. import tasks as engine_tasks  # noqa: F401  (registers the engine's tasks on Saleor's Celery app too)
from ..engine.derived import notify_restocked
from .translate import decode_global_id


def available_quantities(variant_ids: list[str]) -> dict[str, int]:
    """Sellable quantity (stock minus allocations, all warehouses) for Saleor global variant ids."""
    from saleor.warehouse.models import Stock

    by_pk = {}
    for global_id in variant_ids:
        decoded = decode_global_id(global_id)
        if decoded and decoded[0] == "ProductVariant" and decoded[1].isdigit():
            by_pk[int(decoded[1])] = global_id
    rows = (Stock.objects.filter(product_variant_id__in=by_pk)
            .values("product_variant_id")
            .annotate(available=Sum(F("quantity") - F("quantity_allocated"))))
    return {by_pk[row["product_variant_id"]]: max(row["available"] or 0, 0) for row in rows}


@shared_task(name="saleor_flows.check_back_in_stock", ignore_result=True)
def check_back_in_stock():
    """Saleor's back-in-stock signal is a core webhook, not a plugin hook: look at the stock of awaited variants."""
    with allow_writer():
        return notify_restocked(available_quantities)


BEAT_SCHEDULE = {
    "saleor-flows-back-in-stock": {"task": "saleor_flows.check_back_in_stock", "schedule": 300.0},
}
