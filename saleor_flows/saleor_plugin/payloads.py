"""Saleor objects → Saleor's own webhook payloads (the shape App webhooks get), plus the ids translate needs."""

import json
import logging

logger = logging.getLogger(__name__)


def _first(serialized: str) -> dict:
    data = json.loads(serialized)
    return data[0] if isinstance(data, list) and data else {}


def _global_id(type_name: str, pk) -> str:
    import graphene

    return graphene.Node.to_global_id(type_name, pk) if pk else ""


def build(hook: str, instance, requestor=None) -> tuple[dict, dict]:
    """``(payload, extra)``: Saleor's legacy payload for ``instance`` and keyword args for ``translate.normalize``."""
    from saleor.webhook import payloads

    kind = type(instance).__name__
    if kind == "User":
        return _first(payloads.generate_customer_payload(instance, requestor)), {
            "user_id": _global_id("User", instance.pk)}
    if kind == "Checkout":
        return _first(payloads.generate_checkout_payload(instance, requestor)), {
            "checkout_token": str(instance.token), "user_id": _global_id("User", instance.user_id)}
    if kind == "Order":
        return _first(payloads.generate_order_payload(instance, requestor)), {
            "checkout_token": str(instance.checkout_token or ""), "user_id": _global_id("User", instance.user_id)}
    if kind == "Fulfillment":
        order = instance.order
        return _first(payloads.generate_fulfillment_payload(instance, requestor)), {
            "user_id": _global_id("User", order.user_id)}
    raise TypeError(f"no payload for {kind} ({hook})")
