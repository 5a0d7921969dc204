"""Sample event payloads, one per trigger, for previews when no real event is at hand.

Shaped like the normalized payloads the edges produce (Saleor's webhook field
names; storefront tracking for ``product_viewed``), so a template that renders
with these renders with the real thing.
"""

import copy

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
    """A copy of the sample payload for ``name`` (an empty payload for events without one)."""
    return copy.deepcopy(SAMPLE_EVENTS.get(name, {}))
