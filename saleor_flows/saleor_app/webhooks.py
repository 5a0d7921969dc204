"""Saleor's signed webhook deliveries → one recorded event each.

Every delivery, in this order: a bounded body (``APP_WEBHOOK_MAX_BYTES``),
from the instance this deployment serves (``Saleor-Api-Url`` and
``Saleor-Domain`` against ``APP_SALEOR_API_URL``), signed by it (detached
JWS over the raw body, ``signature.py``), of the event its URL names, not
stale (``issuedAt`` within ``APP_WEBHOOK_MAX_AGE_SECONDS``). Then one INSERT
through ``events.record_event`` and a 200; the payload is turned into the
plugin's shape here (pure, microseconds) and normalized with the shop's
settings in the worker (``resolve``), as the plugin's references are.

Saleor retries a delivery answered with a 5xx or not answered, and gives up
on a 3xx/4xx (``saleor/webhook/transport/utils.py: handle_webhook_retry``).
So what a retry cannot fix is a 4xx: a foreign instance (403), a bad or
missing signature (401), a stale or malformed delivery (400), a body too
large (413). What may pass later is a 503: the instance's keys could not be
fetched, or name a key id we fetched too recently to fetch again.

A retry carries the same body, so the dedupe key is the body's digest (the
delivery's own identity: Saleor sends no delivery id); events that happen
once per object keep the plugin's key (``saleor:order_created:<id>``), so
even two deliveries of one order enrol it once.
"""

import hashlib
import logging
from datetime import timedelta
from urllib.parse import urlsplit

from django.http import JsonResponse
from django.utils.dateparse import parse_datetime

from .. import clock
from ..conf import flows_setting
from ..dashboard.register import Refused, own_saleor_api_url, same_url
from ..engine import dispatch
from ..events import record_event
from ..saleor_plugin.translate import ONCE_PER_OBJECT, normalize
from ..web.untrusted import BadJson, malformed_is_400, read_json
from . import installation, shapes, signature
from .queries import BY_EVENT

logger = logging.getLogger(__name__)

SOURCE = "saleor_app"
FUTURE_SKEW = timedelta(minutes=5)  # clocks differ; a delivery from further ahead is not Saleor's
MAX_JSON_DEPTH = 20  # our queries nest 7 levels deep


def _answer(status: int, **body) -> JsonResponse:
    return JsonResponse(body, status=status)


@malformed_is_400("Saleor")
def receive(request, event: str):
    webhook = BY_EVENT.get(event.upper()) if event.isascii() and event.replace("_", "").isalpha() else None
    if webhook is None or event != event.lower():
        return _answer(404, error={"code": "UNKNOWN_EVENT", "message": "No such webhook."})
    try:
        if request.method != "POST":
            raise Refused(405, "METHOD_NOT_ALLOWED", "Saleor delivers webhooks with a POST.")
        delivery = _verified(request, webhook)
    except Refused as exc:
        if exc.status >= 500:
            logger.warning("saleor-flows: Saleor %s delivery deferred: %s", webhook.event, exc.message)
        elif exc.status != 405:
            logger.warning("saleor-flows: Saleor %s delivery refused (%s): %s", webhook.event, exc.code, exc.message)
        response = _answer(exc.status, error={"code": exc.code, "message": exc.message})
        if exc.status == 405:
            response["Allow"] = "POST"
        return response
    body, payload = delivery
    if webhook.event == "APP_DELETED":
        return _app_deleted(payload)
    if webhook.event == "PRODUCT_VARIANT_BACK_IN_STOCK":
        return _back_in_stock(payload)
    return _record(webhook.hook, body, payload)


def _verified(request, webhook) -> tuple[bytes, dict]:
    limit = flows_setting("APP_WEBHOOK_MAX_BYTES")
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit() or int(declared) > limit:
        raise Refused(413, "REQUEST_TOO_LARGE", f"Deliveries are limited to {limit} bytes.")
    body = request.body
    if len(body) > limit:
        raise Refused(413, "REQUEST_TOO_LARGE", f"Deliveries are limited to {limit} bytes.")
    api_url = own_saleor_api_url()
    if not api_url:
        raise Refused(503, "NOT_CONFIGURED", "This App does not know which Saleor it serves: set "
                                             "APP_SALEOR_API_URL to the store's /graphql/ URL.")
    given_url = request.headers.get("Saleor-Api-Url", "")
    given_domain = request.headers.get("Saleor-Domain") or request.headers.get("X-Saleor-Domain", "")
    if not given_url:
        raise Refused(400, "MISSING_SALEOR_API_URL", "The Saleor-Api-Url header is missing.")
    if not same_url(given_url, api_url) or (given_domain and given_domain.lower() != urlsplit(api_url).netloc.lower()):
        raise Refused(403, "FOREIGN_SALEOR", f"Flows serves the Saleor at {api_url}, not {given_url[:200]}.")
    given_event = request.headers.get("Saleor-Event") or request.headers.get("X-Saleor-Event", "")
    if given_event.lower() != webhook.hook:
        raise Refused(400, "WRONG_EVENT", f"This URL receives {webhook.event}, not {given_event[:100]!r}.")
    try:
        signature.verify(body, request.headers.get("Saleor-Signature") or "", api_url)
    except signature.KeysUnavailable as exc:
        raise Refused(503, "KEYS_UNAVAILABLE", str(exc)) from exc
    except signature.BadSignature as exc:
        raise Refused(401, "INVALID_SIGNATURE", str(exc)) from exc
    try:
        payload = read_json(body, max_depth=MAX_JSON_DEPTH)
    except BadJson as exc:
        raise Refused(400, "MALFORMED", str(exc)) from exc
    if not isinstance(payload, dict) or payload.get("__typename") != webhook.typename:
        raise Refused(400, "WRONG_PAYLOAD", f"Expected a {webhook.typename} subscription payload (is the App's "
                                            "manifest installed as it is served?).")
    issued_at = parse_datetime(payload["issuedAt"]) if isinstance(payload.get("issuedAt"), str) else None
    if issued_at is None or issued_at.tzinfo is None:
        raise Refused(400, "MISSING_ISSUED_AT", "The delivery has no issuedAt.")
    now = clock.now()
    if issued_at > now + FUTURE_SKEW or now - issued_at > timedelta(seconds=flows_setting(
            "APP_WEBHOOK_MAX_AGE_SECONDS")):
        raise Refused(400, "STALE_DELIVERY", f"The delivery was issued at {issued_at.isoformat()}: too old (or "
                                             "from the future) to be acted on now.")
    return body, payload


def _record(hook: str, body: bytes, payload: dict):
    shaped = shapes.legacy_payload(hook, payload)
    if shaped is None:
        # Saleor resolved the object to null (deleted meanwhile, or a permission the App lacks): nothing to act on,
        # and a retry would not bring it back.
        logger.warning("saleor-flows: Saleor %s delivery without its object; ignored", hook)
        return _answer(200, recorded=False, reason="no object in the delivery")
    data, extra = shaped
    issued_at = parse_datetime(payload["issuedAt"])
    event = normalize(hook, data, now=issued_at, **extra)  # identity and timing; the shop's settings come later
    digest = hashlib.sha256(body).hexdigest()[:40]
    dedupe_key = event["dedupe_key"] if event["name"] in ONCE_PER_OBJECT else f"saleor-app:{hook}:{digest}"
    recorded = record_event(
        event["name"], email=event["email"], user_id=event["user_id"], channel=event["channel"],
        occurred_at=event["occurred_at"], dedupe_key=dedupe_key,
        payload={"$ref": {"source": SOURCE, "hook": hook, "data": data, "extra": extra,
                          "issued_at": payload["issuedAt"]}})
    return _answer(200, recorded=not recorded.duplicate)


def resolve(reference: dict, event) -> dict:
    """The worker's half (registered with ``engine.resolvers``): the shop's consent key and checkout link applied."""
    from ..engine.resolvers import Unresolvable

    data, extra = reference.get("data"), reference.get("extra")
    if not isinstance(data, dict) or not isinstance(extra, dict):
        raise Unresolvable("the recorded Saleor App delivery holds no payload")
    normalized = normalize(reference.get("hook", ""), data, now=event.occurred_at,
                           checkout_url_template=flows_setting("CHECKOUT_URL_TEMPLATE"),
                           consent_metadata_key=flows_setting("CONSENT_METADATA_KEY"),
                           **{key: str(value) for key, value in extra.items() if key in ("user_id", "checkout_token")})
    if normalized is None:
        raise Unresolvable(f"no event for Saleor's {reference.get('hook')!r}")
    return {"payload": normalized["payload"], "email": normalized["email"], "user_id": normalized["user_id"],
            "channel": normalized["channel"]}


def _app_deleted(payload: dict):
    app = payload.get("app") if isinstance(payload.get("app"), dict) else {}
    row = installation.current()
    ours = row is not None and (not row.app_id or app.get("id") in (None, row.app_id))
    if ours and installation.mark_removed("app_deleted"):
        logger.warning("saleor-flows: the Saleor App was removed; all sending is held until it is installed again")
    return _answer(200, held=ours)


def _back_in_stock(payload: dict):
    """Saleor says a variant can be sold again: tell the shoppers waiting for it (in a task, off this request)."""
    from . import tasks

    variant = shapes.variant_stock(payload.get("productVariant"))
    if not variant["variant_id"]:
        return _answer(200, recorded=False, reason="no variant in the delivery")
    quantity = variant["quantity_available"] or 1  # Saleor says "back in stock": at least one can be sold
    if dispatch.mode() == "inline":
        tasks.notify_back_in_stock(variant["variant_id"], quantity)
    else:
        dispatch.publish(tasks.notify_back_in_stock, variant["variant_id"], quantity,
                         fallback=lambda: tasks.notify_back_in_stock(variant["variant_id"], quantity))
    return _answer(200, recorded=True)
