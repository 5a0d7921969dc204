"""Sample event payloads, one per trigger, for previews when no real event is at hand.

Shaped like the normalized payloads the edges produce (Saleor's webhook field
names; storefront tracking for ``product_viewed``), so a template that renders
with these renders with the real thing.
"""

import copy
import time
from decimal import Decimal, InvalidOperation

_TEE = {"product_name": "Monospace Tee", "variant_name": "M", "variant_id": "UHJvZHVjdFZhcmlhbnQ6Mjk3",
        "product_url": "https://shop.example.com/products/monospace-tee/", "price": "20.00", "currency": "USD",
        "thumbnail": "https://shop.example.com/media/thumbnails/tee.png"}

_CHECKOUT = {
    "id": "Q2hlY2tvdXQ6YWI0Zg==", "token": "ab4f5c3e-sample", "email": "jane.doe@example.com", "currency": "USD",
    "language_code": "en", "checkout_url": "https://shop.example.com/checkout/?checkout=ab4f5c3e-sample",
    "total_gross_amount": "52.00",
    "lines": [
        {"product_name": "Monospace Tee", "variant_name": "M", "full_name": "Monospace Tee (M)", "quantity": 2,
         "base_price": "20.00", "currency": "USD", "sku": "TEE-M", "variant_id": "UHJvZHVjdFZhcmlhbnQ6Mjk3",
         "thumbnail": _TEE["thumbnail"]},
        {"product_name": "Cold Brew", "variant_name": "", "full_name": "Cold Brew", "quantity": 1,
         "base_price": "12.00", "currency": "USD", "sku": "BREW-1", "variant_id": "UHJvZHVjdFZhcmlhbnQ6MTA="},
    ],
}

_ORDER = {
    "id": "T3JkZXI6c2FtcGxl", "number": 1042, "user_email": "jane.doe@example.com", "currency": "USD",
    "language_code": "en", "total_gross_amount": "52.00", "shipping_price_gross_amount": "0.00",
    "lines": [
        {"product_name": "Monospace Tee", "variant_name": "M", "product_sku": "TEE-M", "quantity": 2,
         "currency": "USD", "unit_price_gross_amount": "20.00", "total_price_gross_amount": "40.00",
         "thumbnail": _TEE["thumbnail"]},
        {"product_name": "Cold Brew", "variant_name": "", "product_sku": "BREW-1", "quantity": 1, "currency": "USD",
         "unit_price_gross_amount": "12.00", "total_price_gross_amount": "12.00"},
    ],
}

SAMPLE_EVENTS = {
    "customer_created": {"first_name": "Jane", "last_name": "Doe", "email": "jane.doe@example.com",
                         "language_code": "en"},
    "checkout_abandoned": _CHECKOUT,
    "checkout_created": _CHECKOUT,
    "checkout_updated": _CHECKOUT,
    "order_created": _ORDER,
    "order_fully_paid": _ORDER,
    "order_fulfilled": _ORDER,
    "first_order": _ORDER,
    "customer_lapsed": {"days_since_last_order": 90, "last_order_at": "2026-01-10T10:00:00+00:00", "order_count": 3,
                        "total_spent": "182.40", "currency": "USD"},
    "birthday": {"date": "1990-05-10", "age": 36},
    "product_viewed": _TEE,
    "back_in_stock": {**_TEE, "quantity_available": 3},
}


def sample_event(name: str) -> dict:
    """A copy of the sample payload for ``name`` (an empty payload for events without one).

    When an edge has given a product source (``set_product_source``), carts,
    orders and product events show the shop's own products instead of ours.
    """
    payload = copy.deepcopy(SAMPLE_EVENTS.get(name, {}))
    products = shop_products()
    return with_products(payload, products) if products and payload else payload


# --- the shop's own products, through a seam an edge fills --------------------------------

# Each product: product_name, variant_name, variant_id, sku, price, currency, thumbnail, product_url (strings).
PRODUCT_KEYS = ("product_name", "variant_name", "variant_id", "sku", "price", "currency", "thumbnail", "product_url")
PRODUCTS_CACHE_SECONDS = 60
_products: dict = {"source": None, "at": -1e9, "value": []}


def set_product_source(source):
    """``source(limit)`` returns up to ``limit`` product dicts (the Saleor edge reads its catalogue); None: ours."""
    _products.update(source=source, at=-1e9, value=[])


def shop_products(limit: int = 3) -> list[dict]:
    """The shop's products for samples (cached briefly; [] when there is no source or it fails)."""
    source = _products["source"]
    if source is None:
        return []
    if not 0 <= time.monotonic() - _products["at"] < PRODUCTS_CACHE_SECONDS:
        try:
            found = [{key: str(item.get(key) or "") for key in PRODUCT_KEYS} for item in source(limit) or []]
        except Exception:  # a preview must render even when the catalogue cannot be read
            found = []
        _products.update(at=time.monotonic(), value=[p for p in found if p["product_name"]][:limit])
    return copy.deepcopy(_products["value"])


def with_products(payload: dict, products: list[dict]) -> dict:
    """``payload`` with its lines (carts, orders) or its product (views, stock) replaced by ``products``."""
    first = products[0]
    currency = first["currency"] or payload.get("currency") or "USD"
    if "lines" in payload:
        order = "unit_price_gross_amount" in (payload["lines"][0] if payload["lines"] else {})
        lines, total = [], Decimal("0")
        for product in products:
            price = _amount(product["price"])
            total += price
            line = {"product_name": product["product_name"], "variant_name": product["variant_name"],
                    "quantity": 1, "currency": currency, "thumbnail": product["thumbnail"], "variant_id":
                    product["variant_id"]}
            if order:
                line.update(product_sku=product["sku"], unit_price_gross_amount=str(price),
                            total_price_gross_amount=str(price))
            else:
                full = f"{product['product_name']} ({product['variant_name']})" if product["variant_name"] else \
                    product["product_name"]
                line.update(full_name=full, sku=product["sku"], base_price=str(price))
            lines.append(line)
        return {**payload, "lines": lines, "currency": currency, "total_gross_amount": str(total)}
    if "product_name" in payload:
        return {**payload, **{key: first[key] for key in PRODUCT_KEYS if first[key] or key != "thumbnail"},
                "currency": currency}
    return payload


def _amount(value) -> Decimal:
    try:
        return Decimal(str(value or "0")).quantize(Decimal("0.01"))
    except InvalidOperation:
        return Decimal("0.00")
