"""Saleor objects → events, in two halves.

``describe()`` runs in the shopper's request: it reads only fields the hook's
object already holds (no queries) and returns a reference event — identity,
dedupe key, ``{"$ref": …}``. ``resolve()`` runs in the worker: it loads the
object and builds the payload with Saleor's own payload functions, so the
event has the same shape as Saleor's App webhooks.
"""

import hashlib
import json

from .translate import EVENT_NAMES, ONCE_PER_OBJECT, normalize

MODELS = {"User": "saleor.account.models.User", "Checkout": "saleor.checkout.models.Checkout",
          "Order": "saleor.order.models.Order", "Fulfillment": "saleor.order.models.Fulfillment"}


def _global_id(type_name: str, pk) -> str:
    import graphene

    return graphene.Node.to_global_id(type_name, pk) if pk else ""


def describe(hook: str, instance, *, now) -> dict | None:
    """``record_event`` keyword arguments for a hook, from the instance's own fields only."""
    name = EVENT_NAMES.get(hook)
    kind = type(instance).__name__
    if name is None or kind not in MODELS:
        return None
    version = None
    if kind == "User":
        pk, email, user_id = instance.pk, instance.email, _global_id("User", instance.pk)
        version = getattr(instance, "updated_at", None)
    elif kind == "Checkout":
        pk, email, user_id = str(instance.token), instance.email or "", _global_id("User", instance.user_id)
        version = instance.last_change
    elif kind == "Order":
        pk, email, user_id = str(instance.pk), instance.user_email or "", _global_id("User", instance.user_id)
    else:  # Fulfillment: the customer is found through its order when resolved
        pk, email, user_id = instance.pk, "", ""
    object_id = pk if kind == "Checkout" else _global_id(kind, pk)
    if hook.endswith("_metadata_updated") and kind != "User":
        # A metadata change leaves the object's version alone: the metadata itself tells one change from the next.
        # (A checkout keeps its metadata in a separate row, ``metadata_storage``.)
        holder = getattr(instance, "metadata_storage", None) if kind == "Checkout" else instance
        metadata = getattr(holder, "metadata", None) or {}
        version_key = hashlib.sha256(json.dumps(metadata, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return _reference(name, hook, kind, pk, email, user_id, now, f"saleor:{name}:{object_id}:{version_key}")
    if name in ONCE_PER_OBJECT or version is None and kind != "User":
        dedupe_key = f"saleor:{name}:{object_id}"
    else:
        dedupe_key = f"saleor:{name}:{object_id}:{(version or now).isoformat()}"
    return _reference(name, hook, kind, pk, email, user_id, now, dedupe_key)


def _reference(name, hook, kind, pk, email, user_id, now, dedupe_key) -> dict:
    return {
        "name": name, "email": email or "", "user_id": user_id or None, "occurred_at": now,
        "payload": {"$ref": {"source": "saleor", "hook": hook, "model": kind, "pk": str(pk),
                             "email": email or ""}},
        "dedupe_key": dedupe_key,
    }


def _first(serialized: str) -> dict:
    data = json.loads(serialized)
    return data[0] if isinstance(data, list) and data else {}


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
        return _first(payloads.generate_fulfillment_payload(instance, requestor)), {
            "user_id": _global_id("User", instance.order.user_id)}
    raise TypeError(f"no payload for {kind} ({hook})")


def resolve(reference: dict, event, *, checkout_url_template: str = "", consent_metadata_key: str = "") -> dict:
    """Load the referenced object and build the event's real payload (in the worker)."""
    from django.utils.module_loading import import_string

    from ..engine.resolvers import Unresolvable

    model = import_string(MODELS[reference["model"]])
    instance = model.objects.filter(pk=reference["pk"]).first()
    hook = reference["hook"]
    if instance is None:
        if reference["model"] == "Checkout":
            # Completed or expired and deleted by Saleor: nothing left to abandon.
            return {"payload": {"token": reference["pk"], "lines": [], "deleted": True}}
        if reference["model"] == "User":
            return {"payload": {"email": reference.get("email", ""), "deleted": True}}
        raise Unresolvable(f"Saleor {reference['model']} {reference['pk']} no longer exists")
    payload, extra = build(hook, instance)
    normalized = normalize(hook, payload, checkout_url_template=checkout_url_template,
                           consent_metadata_key=consent_metadata_key, now=event.occurred_at, **extra)
    with_products(normalized["payload"])
    return {"payload": normalized["payload"], "email": normalized["email"],
            "user_id": normalized["user_id"], "channel": normalized["channel"]}


def with_products(payload: dict) -> None:
    """Each line gets its product's global id and storefront page (``product_id``, ``product_url``).

    Saleor's line payloads name only the variant; recommendations count and
    exclude products, and a review request links to each product's page.
    """
    from saleor.product.models import ProductVariant

    from .catalog import _pk, product_url

    lines = [line for line in payload.get("lines") or [] if isinstance(line, dict)]
    variant_pks = {}
    for line in lines:
        pk = _pk(str(line.get("product_variant_id") or line.get("variant_id") or ""), "ProductVariant")
        if pk is not None:
            variant_pks[id(line)] = pk
    if not variant_pks:
        return
    products = {row[0]: (row[1], row[2]) for row in ProductVariant.objects.filter(
        pk__in=set(variant_pks.values())).values_list("pk", "product_id", "product__slug")}
    for line in lines:
        product = products.get(variant_pks.get(id(line)))
        if product is None:
            continue
        line["product_id"] = _global_id("Product", product[0])
        url = product_url(product[1], line["product_id"])
        if url:
            line.setdefault("product_url", url)
