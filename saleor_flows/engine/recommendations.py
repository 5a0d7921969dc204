"""Product recommendations from the shop's own orders: no outside service, nothing to train.

Counting (``record_order``, while an ``order_created`` event is processed):
each order adds one to every pair of distinct products it holds
(``ProductAffinity``, both directions) and one to each product's orders in
its sales channel (``ProductSales``). One multi-row upsert per table, rows in
a fixed order so two orders sharing products never deadlock.

Choosing (``recommend``), best reason first, until ``limit`` products are found:

1. **bought together**: products that shared at least
   ``RECOMMENDATION_MIN_SUPPORT`` orders with the seed products (what this
   customer just bought, or has in the cart), most shared orders first;
2. **similar**: the catalog's other products from the seeds' categories or
   collections;
3. **best seller**: the catalog's best sellers in the channel, or, when the
   host has no view of its sales, our own order counts in the channel.

Never a seed (what they just bought or have in the cart) and never what the
catalog does not sell in the channel or reports out of stock. Names, prices
and links are the catalog's, in the channel's currency and the contact's
language. The result is plain data (a list of dicts of strings) that the
channels render: ``recommendations(limit=3)`` in templates.
"""

import functools
import logging

from django.db import InterfaceError, OperationalError
from django.db.models import Sum

from ..catalog import RECOMMENDED_FIELDS, shop_catalog
from ..channels.links import shop_link
from ..conf import flows_setting
from ..db import insert_rows
from ..models import Event, ProductAffinity, ProductSales

logger = logging.getLogger(__name__)

# An order's distinct products counted for pairs (n products make n*(n-1) rows).
MAX_PRODUCTS_PER_ORDER = 30
# The most a template can ask for; candidates are over-fetched this many times to survive stock checks.
MAX_RECOMMENDATIONS = 12
OVERFETCH = 3
# Orders looked at for a win-back's seeds (the trigger event has no lines of its own).
SEED_ORDERS = 5
_MAX_ID_CHARS = 100


def product_ids(payload) -> list[str]:
    """The distinct product ids of an order's or a checkout's lines, in line order."""
    lines = payload.get("lines") if isinstance(payload, dict) else None
    found = []
    for line in lines if isinstance(lines, list) else []:
        value = line.get("product_id") if isinstance(line, dict) else None
        if isinstance(value, str) and 0 < len(value) <= _MAX_ID_CHARS and value not in found:
            found.append(value)
    return found


def record_order(event) -> None:
    """Count one order (an ``order_created`` event) into the pair and sales tables."""
    products = sorted(product_ids(event.payload)[:MAX_PRODUCTS_PER_ORDER])
    if not products:
        return
    channel = (event.channel or "")[:_MAX_ID_CHARS]
    insert_rows(ProductSales, [{"channel": channel, "product_id": product, "orders": 1,
                                "last_ordered_at": event.occurred_at} for product in products],
                conflict=["channel", "product_id"],
                update="orders = {table}.orders + 1, last_ordered_at = excluded.last_ordered_at")
    pairs = [{"product_id": a, "other_id": b, "orders": 1} for a in products for b in products if a != b]
    insert_rows(ProductAffinity, pairs, conflict=["product_id", "other_id"], update="orders = {table}.orders + 1")


def bought_together(seeds: list[str], *, exclude: set[str], limit: int) -> list[str]:
    """Products sharing at least the minimum support of orders with ``seeds``, most shared first."""
    if not seeds:
        return []
    support = max(int(flows_setting("RECOMMENDATION_MIN_SUPPORT") or 1), 1)
    rows = (ProductAffinity.objects.filter(product_id__in=seeds).exclude(other_id__in=exclude)
            .values("other_id").annotate(together=Sum("orders")).filter(together__gte=support)
            .order_by("-together", "other_id")[:limit])
    return [row["other_id"] for row in rows]


def own_best_sellers(channel: str, *, exclude: set[str], limit: int) -> list[str]:
    """The channel's most ordered products by our own counts."""
    return list(ProductSales.objects.filter(channel=channel or "").exclude(product_id__in=exclude)
                .order_by("-orders", "product_id").values_list("product_id", flat=True)[:limit])


def recommend(seeds: list[str], *, channel: str, language: str = "", limit: int = 3,
              exclude=()) -> list[dict]:
    """Up to ``limit`` products for someone who bought (or has in the cart) ``seeds``: see the module."""
    limit = max(0, min(int(limit), MAX_RECOMMENDATIONS))
    catalog = shop_catalog()
    if not limit or catalog is None:
        return []  # without a catalog nothing can be shown truthfully (name, price, stock)
    excluded = set(seeds) | set(exclude)
    chosen: list[dict] = []
    wanted = limit * OVERFETCH
    tiers = (
        ("bought_together", lambda: bought_together(seeds, exclude=excluded, limit=wanted)),
        ("similar", lambda: catalog.similar(seeds, channel=channel, limit=wanted + len(excluded)) if seeds else []),
        ("best_seller", lambda: _best_sellers(catalog, channel, excluded, wanted)),
    )
    for reason, candidates in tiers:
        ids = [product for product in dict.fromkeys(candidates() or []) if product not in excluded]
        if not ids:
            continue
        facts = catalog.products(ids, channel=channel, language=language)
        for product in ids:
            item = facts.get(product)
            excluded.add(product)
            if not item or item.get("in_stock") is False or not item.get("product_name"):
                continue
            found = {key: str(item.get(key) or "") for key in RECOMMENDED_FIELDS}
            for key in ("product_url", "thumbnail"):  # links and images only to the shop's own hosts
                found[key] = shop_link(found[key]) or ""
            chosen.append({**found, "product_id": product, "reason": reason})
            if len(chosen) == limit:
                return chosen
    return chosen


def _best_sellers(catalog, channel, excluded, limit):
    found = catalog.best_sellers(channel=channel, limit=limit + len(excluded))
    return own_best_sellers(channel, exclude=excluded, limit=limit) if found is None else found


def seeds_for(contact, payload: dict) -> list[str]:
    """What the message is about: the trigger's lines, else the products of the contact's latest orders."""
    seeds = product_ids(payload)
    if seeds or contact is None or not contact.pk:
        return seeds
    for earlier in (Event.objects.filter(contact_id=contact.pk, name="order_created", status=Event.Status.PROCESSED)
                    .order_by("-occurred_at").values_list("payload", flat=True)[:SEED_ORDERS]):
        seeds += [product for product in product_ids(earlier) if product not in seeds]
    return seeds


def language_of(contact, payload: dict) -> str:
    """The language messages to this contact are written in (as ``channels.delivery`` picks it)."""
    return getattr(contact, "locale", "") or str(payload.get("language_code") or "")


def for_message(contact, payload: dict, channel: str, *, limit: int = MAX_RECOMMENDATIONS) -> list[dict]:
    """Recommendations for one message about ``payload`` (the journey's trigger event)."""
    payload = payload if isinstance(payload, dict) else {}
    return recommend(seeds_for(contact, payload), channel=channel, language=language_of(contact, payload),
                     limit=limit)


def _sources(step: dict) -> list[str]:
    compiled = step.get("compiled") or {}
    variants = [compiled.get("default") or {}, *(compiled.get("translations") or {}).values()]
    sources = [variant.get(key) or "" for variant in variants for key in ("subject", "html", "text")]
    sources += [step.get(key) or "" for key in ("body", "subject")]
    sources += [variant.get("body") or "" for variant in (step.get("translations") or {}).values()
                if isinstance(variant, dict)]
    return [source for source in sources if isinstance(source, str) and "recommendations" in source]


@functools.lru_cache(maxsize=512)
def _reads_recommendations(sources: tuple) -> bool:
    from ..channels.templating import template_roots

    return any("recommendations" in template_roots(source) for source in sources)


def for_step(step: dict, contact, payload: dict, channel: str) -> list[dict] | None:
    """The recommendations a send step's templates can show, or None when they use none (nothing computed)."""
    sources = _sources(step)
    if not sources or not _reads_recommendations(tuple(sources)):
        return None
    try:
        return for_message(contact, payload, channel)
    except (OperationalError, InterfaceError):
        raise  # the database is away: the send is retried like any other
    except Exception:  # noqa: BLE001 - the host's catalog failed: the email goes out without products
        logger.exception("saleor-flows: recommendations failed for contact %s", getattr(contact, "pk", None))
        return []
