"""Subscription payloads (camelCase, shaped by ``queries.py``) → the plugin's payload shape (Saleor's legacy
webhook payloads, snake_case), so ``saleor_plugin.translate.normalize`` and everything after it see the same
events whichever edge fed them.

Pure functions on dicts. Saleor signed what arrives, but its text is what
shoppers typed (names, metadata): lists are cut to ``MAX_LINES``/``MAX_METADATA``
items, strings to ``MAX_TEXT_CHARS`` (metadata values to ``MAX_METADATA_CHARS``),
and anything of an unexpected type is dropped rather than trusted.
"""

from decimal import Decimal, InvalidOperation

from ..saleor_plugin.translate import decode_global_id

MAX_LINES = 200
MAX_METADATA = 100
MAX_METADATA_CHARS = 1000
MAX_TEXT_CHARS = 1000  # any other string (names, URLs, ids): far above what Saleor stores in these fields


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value, limit: int = MAX_LINES) -> list:
    return [item for item in value[:limit] if isinstance(item, dict)] if isinstance(value, list) else []


def _text(value) -> str:
    return value[:MAX_TEXT_CHARS] if isinstance(value, str) else ""


def _amount(value) -> str | None:
    """A GraphQL money amount (a float) as the legacy payloads' two-decimal string."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return f"{Decimal(str(value)):.2f}"
    except (InvalidOperation, ValueError):
        return None


def _language(value) -> str:
    """``"EN_US"`` (LanguageCodeEnum) → ``"en-us"``; legacy payloads say ``"en"``."""
    return _text(value).lower().replace("_", "-")


def metadata(items) -> dict:
    """``[{key, value}]`` → ``{key: value}``."""
    found = {}
    for item in _list(items, MAX_METADATA):
        key, value = item.get("key"), item.get("value")
        if isinstance(key, str) and isinstance(value, str):
            found[key[:200]] = value[:MAX_METADATA_CHARS]
    return found


def address(value) -> dict | None:
    value = _dict(value)
    if not value:
        return None
    return {"first_name": _text(value.get("firstName")), "last_name": _text(value.get("lastName")),
            "phone": _text(value.get("phone")), "city": _text(value.get("city")),
            "postal_code": _text(value.get("postalCode")), "country_area": _text(value.get("countryArea")),
            "country": _text(_dict(value.get("country")).get("code"))}


def _channel(value) -> dict:
    value = _dict(value)
    return {"slug": _text(value.get("slug")), "currency_code": _text(value.get("currencyCode"))}


def user(value) -> dict:
    value = _dict(value)
    return {"type": "User", "id": _text(value.get("id")), "email": _text(value.get("email")),
            "first_name": _text(value.get("firstName")), "last_name": _text(value.get("lastName")),
            "is_active": value.get("isActive") is not False, "date_joined": value.get("dateJoined"),
            "updated_at": value.get("updatedAt"), "language_code": _language(value.get("languageCode")),
            "metadata": metadata(value.get("metadata")),
            "default_billing_address": address(value.get("defaultBillingAddress"))}


def _product_parts(variant: dict) -> dict:
    product = _dict(variant.get("product"))
    return {"product_id": _text(product.get("id")), "product_slug": _text(product.get("slug"))}


def checkout_line(value: dict, currency: str) -> dict:
    variant = _dict(value.get("variant"))
    product = _dict(variant.get("product"))
    price = _dict(value.get("undiscountedUnitPrice"))
    product_name, variant_name = _text(product.get("name")), _text(variant.get("name"))
    return {"variant_id": _text(variant.get("id")), "sku": _text(variant.get("sku")),
            "quantity": value.get("quantity") if isinstance(value.get("quantity"), int) else 0,
            "base_price": _amount(price.get("amount")), "currency": _text(price.get("currency")) or currency,
            "product_name": product_name, "variant_name": variant_name,
            "full_name": f"{product_name} ({variant_name})" if variant_name else product_name,
            "thumbnail": _text(_dict(product.get("thumbnail")).get("url")), **_product_parts(variant)}


def checkout(value) -> dict:
    value = _dict(value)
    channel = _channel(value.get("channel"))
    owner = _dict(value.get("user"))
    discount = _dict(value.get("discount"))
    return {"type": "Checkout", "id": _text(value.get("id")), "token": _text(value.get("token")),
            "email": _text(value.get("email")), "created": value.get("created"),
            "last_change": value.get("lastChange"), "language_code": _language(value.get("languageCode")),
            "channel": channel, "currency": channel["currency_code"],
            "user": {"id": _text(owner.get("id")), "email": _text(owner.get("email"))} if owner else None,
            "metadata": metadata(value.get("metadata")),
            "billing_address": address(value.get("billingAddress")),
            "shipping_address": address(value.get("shippingAddress")),
            "discount_amount": _amount(discount.get("amount")) or "0.00", "voucher_code": value.get("voucherCode"),
            "lines": [checkout_line(line, channel["currency_code"]) for line in _list(value.get("lines"))]}


def order_line(value: dict, currency: str) -> dict:
    unit = _dict(_dict(value.get("unitPrice")).get("gross"))
    total = _dict(_dict(value.get("totalPrice")).get("gross"))
    return {"type": "OrderLine", "id": _text(value.get("id")), "product_name": _text(value.get("productName")),
            "variant_name": _text(value.get("variantName")), "product_sku": _text(value.get("productSku")),
            "product_variant_id": _text(value.get("productVariantId")),
            "quantity": value.get("quantity") if isinstance(value.get("quantity"), int) else 0,
            "currency": _text(unit.get("currency")) or currency,
            "unit_price_gross_amount": _amount(unit.get("amount")),
            "total_price_gross_amount": _amount(total.get("amount")),
            "thumbnail": _text(_dict(value.get("thumbnail")).get("url")),
            **_product_parts(_dict(value.get("variant")))}


def order(value) -> dict:
    value = _dict(value)
    channel = _channel(value.get("channel"))
    total = _dict(value.get("total"))
    gross = _dict(total.get("gross"))
    currency = _text(gross.get("currency")) or channel["currency_code"]
    number = value.get("number")
    return {"type": "Order", "id": _text(value.get("id")), "token": _text(value.get("token")),
            "number": int(number) if isinstance(number, str) and number.isdigit() else number,
            "user_email": _text(value.get("userEmail")), "created": value.get("created"),
            "status": _text(value.get("status")).lower(), "language_code": _language(value.get("languageCodeEnum")),
            "channel": channel, "currency": currency, "metadata": metadata(value.get("metadata")),
            "billing_address": address(value.get("billingAddress")),
            "shipping_address": address(value.get("shippingAddress")), "voucher_code": value.get("voucherCode"),
            "total_gross_amount": _amount(gross.get("amount")),
            "total_net_amount": _amount(_dict(total.get("net")).get("amount")),
            "undiscounted_total_gross_amount": _amount(
                _dict(_dict(value.get("undiscountedTotal")).get("gross")).get("amount")),
            "shipping_price_gross_amount": _amount(
                _dict(_dict(value.get("shippingPrice")).get("gross")).get("amount")),
            "lines": [order_line(line, currency) for line in _list(value.get("lines"))]}


def fulfillment(value, order_value) -> dict:
    value = _dict(value)
    return {"type": "Fulfillment", "id": _text(value.get("id")), "status": _text(value.get("status")).lower(),
            "tracking_number": _text(value.get("trackingNumber")), "created": value.get("created"),
            "lines": [{"id": _text(line.get("id")), "quantity": line.get("quantity"),
                       "order_line_id": _text(_dict(line.get("orderLine")).get("id"))}
                      for line in _list(value.get("lines"))],
            "order": order(order_value)}


def variant_stock(value) -> dict:
    """A variant back in stock: what the back-in-stock journey shows, and how many can be sold."""
    value = _dict(value)
    product = _dict(value.get("product"))
    available = 0
    for stock in _list(value.get("stocks")):
        quantity, allocated = stock.get("quantity"), stock.get("quantityAllocated")
        if isinstance(quantity, int) and isinstance(allocated, int):
            available += max(quantity - allocated, 0)
    return {"variant_id": _text(value.get("id")), "variant_name": _text(value.get("name")),
            "sku": _text(value.get("sku")), "product_name": _text(product.get("name")),
            "thumbnail": _text(_dict(product.get("thumbnail")).get("url")), "quantity_available": available,
            **_product_parts(value)}


def legacy_payload(hook: str, event: dict) -> tuple[dict, dict] | None:
    """``(payload, extra)`` for ``translate.normalize(hook, payload, **extra)``, or None when the delivery
    holds no object (Saleor answers null for an object it could not resolve)."""
    if hook.startswith(("customer_", "account_")):
        if not _dict(event.get("user")):
            return None
        payload = user(event["user"])
        return payload, {"user_id": payload["id"]}
    if hook.startswith("checkout_"):
        if not _dict(event.get("checkout")):
            return None
        payload = checkout(event["checkout"])
        decoded = decode_global_id(payload["id"])
        token = payload["token"] or (decoded[1] if decoded and decoded[0] == "Checkout" else "")
        return payload, {"checkout_token": token, "user_id": (payload["user"] or {}).get("id", "")}
    if hook.startswith("order_"):
        if not _dict(event.get("order")):
            return None
        payload = order(event["order"])
        owner = _dict(event["order"].get("user"))
        checkout_id = decode_global_id(event["order"].get("checkoutId"))
        return payload, {"user_id": _text(owner.get("id")),
                         "checkout_token": checkout_id[1] if checkout_id and checkout_id[0] == "Checkout" else ""}
    if hook == "fulfillment_created":
        if not _dict(event.get("fulfillment")):
            return None
        payload = fulfillment(event["fulfillment"], event.get("order"))
        return payload, {"user_id": _text(_dict(_dict(event.get("order")).get("user")).get("id"))}
    return None
