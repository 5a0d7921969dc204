"""Twilio: the Programmable Messaging API for sending, its status callbacks and inbound messages.

Settings (``SMS_PROVIDER``): ``account`` (the Account SID, ``AC…``),
``secret`` (the Auth Token: it authenticates our requests and signs
Twilio's), optional ``base_url`` (default ``https://api.twilio.com``).
A sender starting with ``MG`` is a Messaging Service SID.

Twilio signs every webhook: ``X-Twilio-Signature`` is the base64 HMAC-SHA1,
keyed with the Auth Token, of the full URL it called followed by each POST
parameter name and value, sorted by name. The URL is the one Twilio was
given, so behind a proxy we also try ``PUBLIC_URL`` + the request path.
"""

import base64
import hashlib
import hmac
import urllib.parse
from xml.sax.saxutils import escape

from django.http import HttpResponse

from ... import clock
from ..statuses import DeliveryStatus, InboundSms
from ...models import MessageEvent
from . import http
from .base import ProviderBackend, SmsError
from .webhooks import SignatureError, config, public_base, require, webhook_url

PROVIDER = "twilio"
Type = MessageEvent.Type

STATUS = {
    "accepted": Type.QUEUED, "scheduled": Type.QUEUED, "queued": Type.QUEUED, "sending": Type.SENT,
    "sent": Type.SENT, "delivered": Type.DELIVERED, "read": Type.DELIVERED, "undelivered": Type.FAILED,
    "failed": Type.FAILED, "canceled": Type.REJECTED,
}
# Error codes that say the number itself cannot get texts: suppressed like an email hard bounce.
NUMBER_DOES_NOT_WORK = {
    "21211": "invalid 'To' number", "21614": "not a mobile number", "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
}
# The recipient texted STOP to this sender (Twilio keeps its own opt-out list).
OPTED_OUT = {"21610": "recipient replied STOP"}
# Refused by Twilio or the carrier for what we sent or our registration, not for the number.
REFUSED = {
    "30004": "message blocked", "30007": "carrier filtering", "30032": "toll-free number not verified",
    "30034": "A2P 10DLC campaign not registered", "21408": "region not enabled", "21612": "unroutable pair",
}
# Everything else (30003 unreachable handset, 30008 unknown error, ...) is temporary: a failure, never a suppression.
TEMPORARY = {"30003": "unreachable destination handset", "30008": "unknown error", "30001": "queue overflow",
             "30002": "account suspended", "30010": "message price exceeds max price", "20429": "too many requests"}


class SmsBackend(ProviderBackend):
    required = ("account", "secret")

    def send(self, message, *, sender: str) -> str:
        base = (self.config.get("base_url") or "https://api.twilio.com").rstrip("/")
        fields = {"To": message.to, "Body": message.body}
        if sender.startswith("MG") and len(sender) == 34:
            fields["MessagingServiceSid"] = sender
        elif sender:
            fields["From"] = sender
        else:
            raise SmsError("no SMS sender: set SMS_FROM (or SMS_SENDERS for the channel)", retryable=False)
        callback = webhook_url(PROVIDER, "status")
        if callback and message.send_id:
            # Signed by Twilio with the rest of the URL: matches the status to our send even
            # before we stored Twilio's sid.
            fields["StatusCallback"] = f"{callback}?{urllib.parse.urlencode({'send_id': message.send_id})}"
        token = base64.b64encode(f"{self.config['account']}:{self.config['secret']}".encode()).decode()
        status, answer = http.post(
            f"{base}/2010-04-01/Accounts/{urllib.parse.quote(self.config['account'])}/Messages.json",
            urllib.parse.urlencode(fields).encode(),
            {"Authorization": f"Basic {token}", "Content-Type": "application/x-www-form-urlencoded",
             "Accept": "application/json"})
        if 200 <= status < 300 and answer.get("sid"):
            return answer["sid"]
        code = str(answer.get("code") or "")
        raise SmsError(f"Twilio refused the message (HTTP {status}, code {code or '-'}): "
                       f"{answer.get('message') or answer.get('raw') or 'no details'}",
                       retryable=status in http.RETRYABLE_STATUS or code in ("20429", "20500", "20503"),
                       code=code, status=status,
                       suppress="sms_stop" if code in OPTED_OUT else "hard_bounce" if code in NUMBER_DOES_NOT_WORK else "")


def signature(url: str, params: dict, token: str) -> str:
    """Twilio's request signature for a POST to ``url`` with form ``params``."""
    payload = url + "".join(f"{name}{value}" for name, value in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def _verified_params(request) -> dict:
    token = config().get("secret")
    given = request.headers.get("X-Twilio-Signature", "")
    if not token:
        raise SignatureError("no Twilio Auth Token configured (SMS_PROVIDER['secret'])")
    params = {name: request.POST.get(name) for name in request.POST}
    urls = {request.build_absolute_uri()}
    public = public_base()
    if public:
        urls.add(public + request.get_full_path())
    if not given or not any(hmac.compare_digest(signature(url, params, token), given) for url in urls):
        raise SignatureError("X-Twilio-Signature does not match")
    return params


def statuses(request) -> list[DeliveryStatus]:
    params = _verified_params(request)
    sid, state = require(params, "MessageSid", "MessageStatus")
    kind = STATUS.get(state)
    if kind is None:
        return []  # a status we do not track ("receiving", "received", a new one): nothing to record
    code = str(params.get("ErrorCode") or "")
    reason = ""
    if code in NUMBER_DOES_NOT_WORK:
        kind, reason = Type.BOUNCED, NUMBER_DOES_NOT_WORK[code]
    elif code in OPTED_OUT:
        kind, reason = Type.UNSUBSCRIBED, OPTED_OUT[code]
    elif code in REFUSED:
        kind, reason = Type.REJECTED, REFUSED[code]
    elif code:
        reason = TEMPORARY.get(code, "see Twilio's error dictionary")
    return [DeliveryStatus(
        provider=PROVIDER, channel="sms", type=kind, occurred_at=clock.now(), event_id=f"{sid}:{state}",
        send_id=request.GET.get("send_id", ""), provider_message_id=sid, recipient=params.get("To", ""),
        reason=f"Twilio {code}: {reason}" if code else "", detail={"status": state, "error_code": code})]


def inbound(request) -> InboundSms:
    params = _verified_params(request)
    sid, sender = require(params, "MessageSid", "From")
    return InboundSms(provider=PROVIDER, event_id=sid, from_number=sender, to_number=params.get("To", ""),
                      body=params.get("Body", ""), occurred_at=clock.now(),
                      # Twilio's own opt-out handling answered this keyword already (long codes, toll-free).
                      detail={"provider_replied": bool(params.get("OptOutType"))})


def reply(message: InboundSms, text: str) -> HttpResponse:
    """TwiML: the reply travels in the webhook's answer (none when Twilio answered the keyword itself)."""
    body = f"<Message>{escape(text)}</Message>" if text and not message.detail.get("provider_replied") else ""
    return HttpResponse(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
                        content_type="text/xml")
