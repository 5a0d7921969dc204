"""Saleor's payloads → our normalized events. Pure functions: no Saleor import.

The in-process plugin and (later) the App webhook edge both get Saleor's
legacy webhook payload shape; this module turns either into the arguments
of ``record_event``: a name from our vocabulary, the contact's identity, a
dedupe key that is the same for every delivery of one Saleor event, and the
payload with the few fields the engine relies on filled in (``currency`` on
orders, the checkout's plain UUID ``token``, a lines total on checkouts).
"""

import base64
import binascii
import hashlib
import json
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.dateparse import parse_datetime

# Saleor hook name → our event name. Hooks not listed here are not recorded.
EVENT_NAMES = {
    "customer_created": "customer_created",
    "customer_updated": "customer_updated",
    "customer_metadata_updated": "customer_updated",
    "account_confirmed": "customer_confirmed",
    "customer_deleted": "customer_deleted",
    "account_deleted": "customer_deleted",
    "checkout_created": "checkout_created",
    "checkout_updated": "checkout_updated",
    "checkout_fully_paid": "checkout_fully_paid",
    "checkout_metadata_updated": "checkout_metadata_updated",
    "order_created": "order_created",
    "order_confirmed": "order_confirmed",
    "order_paid": "order_paid",
    "order_fully_paid": "order_fully_paid",
    "order_fulfilled": "order_fulfilled",
    "order_cancelled": "order_cancelled",
    "order_refunded": "order_refunded",
    "order_fully_refunded": "order_fully_refunded",
    "order_metadata_updated": "order_metadata_updated",
    "fulfillment_created": "fulfillment_created",
}

# Hooks that happen once per object: the object's id alone identifies the occurrence.
ONCE_PER_OBJECT = {"customer_created", "customer_confirmed", "customer_deleted", "order_created", "order_confirmed",
                   "order_fully_paid", "order_fulfilled", "order_cancelled", "order_fully_refunded",
                   "fulfillment_created", "checkout_fully_paid"}


def decode_global_id(value) -> tuple[str, str] | None:
    """``"Q2hlY2tvdXQ6…"`` → ``("Checkout", "<uuid>")``; None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    type_name, sep, pk = decoded.partition(":")
    return (type_name, pk) if sep and type_name.isalnum() else None


def _when(value) -> datetime | None:
    parsed = parse_datetime(value) if isinstance(value, str) else None
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, timezone.utc)
    return parsed


def _content_hash(payload: dict) -> str:
    stable = {k: v for k, v in payload.items() if k != "meta"}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _lines_total(lines) -> str | None:
    try:
        total = sum(Decimal(str(line["base_price"])) * int(line["quantity"]) for line in lines)
    except (KeyError, TypeError, ValueError, InvalidOperation):
        return None
    return f"{total:.2f}"


def normalize(hook: str, payload: dict, *, user_id: str = "", checkout_token: str = "",
              checkout_url_template: str = "", consent_metadata_key: str = "",
              now: datetime | None = None) -> dict | None:
    """The ``record_event`` keyword arguments for one Saleor hook, or None if we do not record it."""
    name = EVENT_NAMES.get(hook)
    if name is None or not isinstance(payload, dict):
        return None
    payload = {k: v for k, v in payload.items() if k not in ("meta", "private_metadata")}
    channel = (payload.get("channel") or {}).get("slug", "") if isinstance(payload.get("channel"), dict) else ""
    occurred_at = None
    email = payload.get("email") or payload.get("user_email") or ""
    object_id = payload.get("id", "")

    if name.startswith("customer_"):
        user_id = user_id or payload.get("id", "")
        occurred_at = _when(payload.get("date_joined")) if name == "customer_created" else None
        consent = consent_from_metadata(payload.get("metadata"), consent_metadata_key)
        if consent:
            payload["consent"] = {"email": consent, "source": "saleor_user_metadata"}
    elif name.startswith("checkout_"):
        user = payload.get("user") if isinstance(payload.get("user"), dict) else {}
        email = email or user.get("email", "")
        user_id = user_id or user.get("id", "")
        decoded = decode_global_id(payload.get("id"))
        token = checkout_token or (decoded[1] if decoded and decoded[0] == "Checkout" else payload.get("token", ""))
        payload["token"] = str(token)
        payload.setdefault("currency", (payload.get("channel") or {}).get("currency_code", ""))
        if "total_gross_amount" not in payload and isinstance(payload.get("lines"), list):
            payload["total_gross_amount"] = _lines_total(payload["lines"])  # lines before shipping and discounts
        if checkout_url_template and token:
            payload["checkout_url"] = checkout_url_template.replace("{token}", str(token))
        occurred_at = _when(payload.get("last_change"))
        object_id = str(token)
        _consent_from_box(payload, consent_metadata_key, "saleor_checkout_metadata", {"checkout": str(token)})
    elif name.startswith("order_"):
        payload.setdefault("currency", (payload.get("channel") or {}).get("currency_code", "")
                           or next((line.get("currency") for line in payload.get("lines") or [] if isinstance(line, dict)), ""))
        if checkout_token:
            payload["checkout_token"] = str(checkout_token)
        occurred_at = _when(payload.get("created")) if name == "order_created" else None
        _consent_from_box(payload, consent_metadata_key, "saleor_order_metadata", {"order": str(object_id)})
    elif name == "fulfillment_created":
        order = payload.get("order") if isinstance(payload.get("order"), dict) else {}
        email = email or order.get("user_email", "")
        channel = channel or (order.get("channel") or {}).get("slug", "")

    if name in ONCE_PER_OBJECT:
        dedupe_key = f"saleor:{name}:{object_id}"
    elif occurred_at is not None:
        dedupe_key = f"saleor:{name}:{object_id}:{occurred_at.isoformat()}"
    else:
        dedupe_key = f"saleor:{name}:{object_id}:{_content_hash(payload)}"
    return {
        "name": name, "email": email, "user_id": user_id or None, "channel": channel,
        "payload": payload, "occurred_at": occurred_at or now, "dedupe_key": dedupe_key,
    }


def _consent_from_box(payload: dict, key: str, source: str, detail: dict):
    """The "email me news and offers" box a storefront stored on a checkout (and Saleor copied to its order).

    It can only grant consent: an unticked box means the shopper was not asked
    to change anything, not that they withdrew. ``as_of`` is when the checkout
    or order was created, so a choice the person made later (an unsubscribe
    link, the preference centre) is never overridden by an old tick.
    """
    if consent_from_metadata(payload.get("metadata"), key) == "subscribed":
        payload["consent"] = {"email": "subscribed", "source": source, "as_of": payload.get("created"),
                              "detail": detail}


TRUE_WORDS = {"true", "yes", "1", "subscribed", "granted", "on"}
FALSE_WORDS = {"false", "no", "0", "unsubscribed", "denied", "off"}


def consent_from_metadata(metadata, key: str) -> str | None:
    """The consent a storefront stored in a user's metadata key: "subscribed", "unsubscribed" or None."""
    if not key or not isinstance(metadata, dict) or key not in metadata:
        return None
    value = str(metadata[key]).strip().lower()
    if value in TRUE_WORDS:
        return "subscribed"
    if value in FALSE_WORDS:
        return "unsubscribed"
    return None
