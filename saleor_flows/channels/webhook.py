"""Outgoing webhook steps: a signed JSON POST to a URL the merchant chose.

The body is signed with HMAC-SHA256 over ``<timestamp>.<body>`` so a receiver
can check origin and freshness; ``X-Flows-Delivery`` stays the same across
retries of one attempt series so receivers can drop duplicates.
"""

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request

from django.core.serializers.json import DjangoJSONEncoder

from ..conf import flows_setting
from .delivery import template_context
from .templating import render_text


class WebhookError(Exception):
    """The receiver did not take the delivery (network error or non-2xx): retried with backoff."""


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def build_body(step: dict, *, delivery_id: str, contact, flow, event_payload: dict) -> bytes:
    # The same variables as in emails (publish-time validation allows them all).
    context = template_context(contact=contact, flow=flow, event_payload=event_payload, send_id=delivery_id)
    custom = {key: render_text(value, context) if isinstance(value, str) else value
              for key, value in (step.get("body") or {}).items()}
    body = {"flow": flow.slug, "contact": {"email": contact.email, "user_id": contact.user_id}, **custom}
    return json.dumps(body, cls=DjangoJSONEncoder, sort_keys=True).encode()


def post(step: dict, *, delivery_id: str, contact, flow, event_payload: dict) -> int:
    """POST the step's body; returns the HTTP status, raises WebhookError to retry."""
    body = build_body(step, delivery_id=delivery_id, contact=contact, flow=flow, event_payload=event_payload)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "saleor-flows",
               "X-Flows-Delivery": delivery_id, "X-Flows-Timestamp": timestamp}
    if step.get("secret"):
        headers["X-Flows-Signature"] = signature(step["secret"], timestamp, body)
    request = urllib.request.Request(step["url"], data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=flows_setting("WEBHOOK_TIMEOUT_SECONDS")) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"HTTP {exc.code} from {step['url']}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WebhookError(f"could not reach {step['url']}: {getattr(exc, 'reason', exc)}") from exc
