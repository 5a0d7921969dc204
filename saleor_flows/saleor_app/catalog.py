"""Saleor's products, asked through its GraphQL API with the App token, as the catalog storefront events are
checked against (``saleor_flows/catalog.py``): App mode's counterpart of ``saleor_plugin/catalog.py``.

A storefront's ``trackEvent`` names a product or variant by its global id;
what the shop's mail then shows (name, image, price, link) comes from here,
for products published in the event's channel only (the App token sees
unpublished products too, so publication is checked here). Answers, and
"unknown", are cached for ``CACHE_SECONDS``; the call runs in a storefront's
request, so it is tried once with a short timeout, and a Saleor that does not
answer means no product data (the event is kept, showing none), never a
slow or failed request.
"""

import hashlib
import logging
from decimal import Decimal, InvalidOperation

from django.core.cache import cache

from .. import clock
from ..conf import flows_setting
from ..saleor_plugin.translate import decode_global_id
from . import client

logger = logging.getLogger(__name__)

CACHE_SECONDS = 300
FAILURE_CACHE_SECONDS = 30  # a Saleor that is away is not asked again by every storefront request
TIMEOUT_SECONDS = 3
UNKNOWN = "unknown"
PRODUCT = "id name slug thumbnail(size: 256) { url } channelListings { isPublished publishedAt channel { slug } }"
VARIANT_QUERY = ("query FlowsCatalogVariant($id: ID!, $channel: String) { productVariant(id: $id, channel: $channel) "
                 "{ id name pricing { price { gross { amount currency } } } product { " + PRODUCT + " } } }")
PRODUCT_QUERY = ("query FlowsCatalogProduct($id: ID!, $channel: String) { product(id: $id, channel: $channel) { "
                 + PRODUCT + " } }")


def lookup(*, product_id: str = "", variant_id: str = "", channel: str = "") -> dict | None:
    variant_ok = (decode_global_id(variant_id) or ("",))[0] == "ProductVariant"
    product_ok = (decode_global_id(product_id) or ("",))[0] == "Product"
    if not variant_ok and not product_ok:
        return None
    key = "flows:app-catalog:" + hashlib.sha256(
        f"{variant_id if variant_ok else ''}|{product_id if product_ok else ''}|{channel}".encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return None if cached == UNKNOWN else cached
    try:
        if variant_ok:
            variant = client.execute(VARIANT_QUERY, {"id": variant_id, "channel": channel or None},
                                     attempts=1, timeout=TIMEOUT_SECONDS).get("productVariant")
            product = (variant or {}).get("product")
        else:
            variant = None
            product = client.execute(PRODUCT_QUERY, {"id": product_id, "channel": channel or None},
                                     attempts=1, timeout=TIMEOUT_SECONDS).get("product")
    except client.SaleorError as exc:
        logger.warning("saleor-flows: the catalog lookup in Saleor failed: %s", exc)
        cache.set(key, UNKNOWN, FAILURE_CACHE_SECONDS)
        return None
    facts = _facts(product, variant, channel, product_id)
    cache.set(key, facts if facts is not None else UNKNOWN, CACHE_SECONDS)
    return facts


def _published(product: dict, channel: str) -> bool:
    now = clock.now().isoformat()
    for listing in product.get("channelListings") or []:
        if not isinstance(listing, dict) or not listing.get("isPublished"):
            continue
        if channel and (listing.get("channel") or {}).get("slug") != channel:
            continue
        if not listing.get("publishedAt") or str(listing["publishedAt"]) <= now:
            return True
    return False


def _facts(product, variant, channel: str, product_id: str) -> dict | None:
    if not isinstance(product, dict) or not isinstance(product.get("name"), str) or not _published(product, channel):
        return None
    facts = {"product_name": product["name"], "variant_name": str((variant or {}).get("name") or "")}
    template = flows_setting("PRODUCT_URL_TEMPLATE")
    if template and isinstance(product.get("slug"), str):
        facts["product_url"] = template.replace("{slug}", product["slug"]).replace(
            "{id}", product_id or str(product.get("id") or ""))
    thumbnail = (product.get("thumbnail") or {}).get("url")
    if isinstance(thumbnail, str) and thumbnail:
        facts["thumbnail"] = thumbnail
    gross = ((((variant or {}).get("pricing") or {}).get("price") or {}).get("gross")) or {}
    try:
        if channel and gross.get("amount") is not None and isinstance(gross.get("currency"), str):
            facts.update(price=f"{Decimal(str(gross['amount'])):.2f}", currency=gross["currency"])
    except (InvalidOperation, ValueError):
        pass
    return facts
