"""Vonage: the Messages API (v1) for sending, its signed status and inbound webhooks.

Settings (``SMS_PROVIDER``): ``account`` (API key), ``secret`` (API
secret), ``signature_secret`` (the account's signature secret, for
webhooks), optional ``base_url`` (default ``https://api.nexmo.com``).

Why the Messages API and not the older SMS API: its webhooks are signed
with a JWT (HS256, keyed with the signature secret) in ``Authorization:
Bearer``, whose ``payload_hash`` claim is the SHA-256 of the body, so the
whole request is covered; the SMS API's ``sig`` parameter is the legacy
scheme (an MD5/SHA hash over the query string). Set the application's
status and inbound URLs to ours (docs/sms.md) and turn on signed webhooks.
"""

import base64
import hashlib
import hmac
import json
from datetime import datetime, timezone

from django.utils.dateparse import parse_datetime

from ... import clock
from ..statuses import DeliveryStatus, InboundSms
from ...models import MessageEvent
from . import http
from .base import ProviderBackend, SmsError
from .webhooks import MalformedWebhook, SignatureError, check_fresh, config, json_body, require

PROVIDER = "vonage"
Type = MessageEvent.Type

# Messages API statuses, and the SMS API's delivery-receipt words for accounts still sending those.
STATUS = {
    "submitted": Type.SENT, "delivered": Type.DELIVERED, "rejected": Type.REJECTED, "undeliverable": Type.FAILED,
    "accepted": Type.SENT, "buffered": Type.QUEUED, "expired": Type.FAILED, "failed": Type.FAILED,
}


class SmsBackend(ProviderBackend):
    required = ("account", "secret")

    def send(self, message, *, sender: str) -> str:
        if not sender:
            raise SmsError("no SMS sender: set SMS_FROM (or SMS_SENDERS for the channel)", retryable=False)
        base = (self.config.get("base_url") or "https://api.nexmo.com").rstrip("/")
        body = {"message_type": "text", "channel": "sms", "to": message.to.lstrip("+"),
                "from": sender.lstrip("+"), "text": message.body}
        if message.send_id:
            body["client_ref"] = message.send_id  # echoed in every status webhook
        token = base64.b64encode(f"{self.config['account']}:{self.config['secret']}".encode()).decode()
        status, answer = http.post(f"{base}/v1/messages", json.dumps(body).encode(), {
            "Authorization": f"Basic {token}", "Content-Type": "application/json", "Accept": "application/json"})
        if 200 <= status < 300 and answer.get("message_uuid"):
            return answer["message_uuid"]
        problem = answer.get("title") or answer.get("raw") or "no details"
        raise SmsError(f"Vonage refused the message (HTTP {status}): {problem}"
                       f"{' - ' + answer['detail'] if answer.get('detail') else ''}",
                       retryable=status in http.RETRYABLE_STATUS, code=str(answer.get("type") or ""), status=status)


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verify_jwt(token: str, secret: str) -> dict:
    """The claims of an HS256 JWT signed with ``secret``; raises ``SignatureError`` otherwise."""
    try:
        header_part, claims_part, signature_part = token.split(".")
        header = json.loads(_b64decode(header_part))
        claims = json.loads(_b64decode(claims_part))
        given = _b64decode(signature_part)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"not a JWT ({exc})") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256" or not isinstance(claims, dict):
        raise SignatureError("the JWT is not HS256")  # never "none", never a key-confusion algorithm
    expected = hmac.new(secret.encode(), f"{header_part}.{claims_part}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(expected, given):
        raise SignatureError("the JWT signature does not match")
    return claims


def _verified_body(request) -> dict:
    secret = config().get("signature_secret")
    if not secret:
        raise SignatureError("no Vonage signature secret configured (SMS_PROVIDER['signature_secret'])")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise SignatureError("no signed JWT in Authorization: Bearer")
    claims = verify_jwt(token.strip(), secret)
    if not hmac.compare_digest(str(claims.get("payload_hash", "")), hashlib.sha256(request.body).hexdigest()):
        raise SignatureError("the body does not match the JWT's payload_hash")
    if not isinstance(claims.get("iat"), (int, float)):
        raise SignatureError("the JWT has no iat")
    check_fresh(datetime.fromtimestamp(claims["iat"], timezone.utc), "the JWT's iat")
    return json_body(request)


def _when(body: dict) -> datetime:
    value = body.get("timestamp")
    moment = parse_datetime(value) if isinstance(value, str) else None
    return moment if moment and moment.tzinfo else clock.now()


def statuses(request) -> list[DeliveryStatus]:
    body = _verified_body(request)
    uuid, state = require(body, "message_uuid", "status")
    if body.get("channel", "sms") != "sms" or state not in STATUS:
        return []
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    reason = " ".join(str(error[key]) for key in ("title", "detail") if error.get(key))
    return [DeliveryStatus(
        provider=PROVIDER, channel="sms", type=STATUS[state], occurred_at=_when(body), event_id=f"{uuid}:{state}",
        send_id=str(body.get("client_ref") or ""), provider_message_id=uuid,
        recipient="+" + str(body.get("to", "")).lstrip("+") if body.get("to") else "",
        reason=f"Vonage: {reason}" if reason else "", detail={"status": state, "error": error.get("type", "")})]


def inbound(request) -> InboundSms:
    body = _verified_body(request)
    uuid, sender = require(body, "message_uuid", "from")
    if body.get("channel", "sms") != "sms":
        raise MalformedWebhook(f"not an SMS (channel {body.get('channel')!r})")
    return InboundSms(provider=PROVIDER, event_id=uuid, from_number="+" + str(sender).lstrip("+"),
                      to_number=str(body.get("to", "")), body=str(body.get("text") or ""), occurred_at=_when(body))
