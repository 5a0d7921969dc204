"""What every provider's status and inbound webhooks share: errors, body parsing, freshness, our URLs.

A provider module (``twilio``, ``vonage``, ``aws``) verifies its signature
first and only then reads the body, raising ``SignatureError`` (answered
403, nothing recorded) or ``MalformedWebhook`` (answered 400 with the
message).
"""

import json
from datetime import datetime, timedelta

from ... import clock
from ...conf import flows_setting
from ..tokens import public_url


class SignatureError(Exception):
    """The request is not provably from the provider: refuse it, record nothing."""


class MalformedWebhook(ValueError):
    """Signed, but not a body we can read: answered 400 with this message."""


def public_base() -> str:
    return (flows_setting("PUBLIC_URL") or "").rstrip("/")


def webhook_url(provider: str, kind: str) -> str:
    """Our public URL for ``kind`` ("status" or "inbound") webhooks, or "" without PUBLIC_URL (providers must reach
    the API itself, not the shop's site, so the shop URL is no fallback here)."""
    return public_url(f"sms/{provider}/{kind}/") if public_base() else ""


def json_body(request) -> dict:
    try:
        body = json.loads(request.body or b"")
    except ValueError as exc:
        raise MalformedWebhook(f"the body is not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise MalformedWebhook("the body is not a JSON object")
    return body


def require(data: dict, *names: str) -> list:
    """The named values, each present and plain text (an id, a status, a number), or ``MalformedWebhook``."""
    missing = [name for name in names if not data.get(name)]
    if missing:
        raise MalformedWebhook(f"missing {', '.join(missing)}")
    not_text = [name for name in names if not isinstance(data[name], str) or "\x00" in data[name]]
    if not_text:
        raise MalformedWebhook(f"not text: {', '.join(not_text)}")
    return [data[name] for name in names]


def check_fresh(moment: datetime, what: str):
    """Refuse a signed request from too long ago (or the future): a replay of a captured one."""
    max_age = timedelta(seconds=flows_setting("SMS_WEBHOOK_MAX_AGE_SECONDS"))
    now = clock.now()
    if moment < now - max_age or moment > now + timedelta(minutes=5):
        raise SignatureError(f"{what} {moment.isoformat()} is outside the accepted window")


def config() -> dict:
    return flows_setting("SMS_PROVIDER") or {}
