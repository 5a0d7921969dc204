"""AWS End User Messaging SMS: ``SendTextMessage`` for sending, SNS notifications for statuses and replies.

Why End User Messaging SMS (the ``pinpoint-sms-voice-v2`` API) and not SNS
``Publish``: only it reports delivery per message to a place we can receive
(a configuration set's event destination, an SNS topic our HTTPS endpoint
subscribes to) and routes two-way replies (STOP, HELP) to an SNS topic too;
SNS ``Publish`` writes SMS delivery status to CloudWatch Logs only.

Settings (``SMS_PROVIDER``): ``account`` (access key id), ``secret``
(secret access key), optional ``session_token``, ``region`` (e.g.
``eu-central-1``), optional ``configuration_set`` (whose event destination
is the SNS topic for statuses), ``sns_topic_arns`` (the topics whose
notifications we accept: anyone can make SNS sign a message, only our
topics' are ours), optional ``base_url``.

Requests are signed with Signature Version 4 by hand (hashlib/hmac): one
JSON POST needs no SDK. SNS messages are verified against the signing
certificate at ``SigningCertURL``, fetched only from URLs matching
``SMS_SNS_URL_PATTERN`` (AWS's own ``sns.<region>.amazonaws.com`` hosts), with
the ``cryptography`` package (installed with Saleor; the ``aws`` extra).
"""

import base64
import hashlib
import hmac
import json
import re
import urllib.request
from datetime import datetime, timezone

from django.utils.dateparse import parse_datetime

from ... import clock
from ...conf import flows_setting
from ..statuses import DeliveryStatus, InboundSms
from ...models import MessageEvent
from . import http
from .base import ProviderBackend, SmsError
from .webhooks import MalformedWebhook, SignatureError, check_fresh, config, json_body, require

PROVIDER = "aws"
SERVICE = "sms-voice"
TARGET = "PinpointSMSVoiceV2.SendTextMessage"
Type = MessageEvent.Type

EVENT_TYPES = {
    "TEXT_PENDING": Type.QUEUED, "TEXT_QUEUED": Type.QUEUED, "TEXT_SUCCESSFUL": Type.SENT,
    "TEXT_DELIVERED": Type.DELIVERED,
    "TEXT_INVALID": Type.BOUNCED,  # the destination number is not valid: suppressed
    "TEXT_BLOCKED": Type.REJECTED, "TEXT_CARRIER_BLOCKED": Type.REJECTED, "TEXT_SPAM": Type.REJECTED,
    "TEXT_INVALID_MESSAGE": Type.REJECTED, "TEXT_PROTECT_BLOCKED": Type.REJECTED,
    "TEXT_TTL_EXPIRED": Type.FAILED, "TEXT_CARRIER_UNREACHABLE": Type.FAILED, "TEXT_UNREACHABLE": Type.FAILED,
    "TEXT_UNKNOWN": Type.FAILED,
}
RETRYABLE_ERRORS = {"ThrottlingException", "InternalServerException", "ServiceUnavailableException"}
# The fields SNS signs, in order, for each message type (absent optional fields are left out).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
_certificates: dict = {}  # SigningCertURL -> public key (certificates rotate rarely; a worker keeps a few)


# --- sending ---------------------------------------------------------------------

def sigv4_headers(*, method: str, url: str, headers: dict, body: bytes, key: str, secret: str, region: str,
                  service: str, now: datetime, query: str = "") -> dict:
    """``headers`` plus ``X-Amz-Date`` and the Signature Version 4 ``Authorization`` header."""
    host_path = re.match(r"^https?://([^/]+)(/[^?]*)?", url)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    signed = {**{name.lower(): str(value).strip() for name, value in headers.items()},
              "host": host_path.group(1), "x-amz-date": amz_date}
    names = ";".join(sorted(signed))
    canonical = "\n".join([method, host_path.group(2) or "/", query,
                           "".join(f"{name}:{signed[name]}\n" for name in sorted(signed)), names,
                           hashlib.sha256(body).hexdigest()])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = f"AWS4{secret}".encode()
    for part in (day, region, service, "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {**headers, "X-Amz-Date": amz_date,
            "Authorization": f"AWS4-HMAC-SHA256 Credential={key}/{scope}, SignedHeaders={names}, Signature={signature}"}


class SmsBackend(ProviderBackend):
    required = ("account", "secret", "region")

    def send(self, message, *, sender: str) -> str:
        region = self.config["region"]
        url = (self.config.get("base_url") or f"https://{SERVICE}.{region}.amazonaws.com").rstrip("/") + "/"
        request = {"DestinationPhoneNumber": message.to, "MessageBody": message.body,
                   "MessageType": "TRANSACTIONAL" if message.kind == "transactional" else "PROMOTIONAL"}
        if sender:
            request["OriginationIdentity"] = sender  # a phone number, sender ID, pool or their ARN
        if self.config.get("configuration_set"):
            request["ConfigurationSetName"] = self.config["configuration_set"]
        if message.send_id:
            request["Context"] = {"send_id": message.send_id}  # echoed in every event
        body = json.dumps(request).encode()
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": TARGET}
        if self.config.get("session_token"):
            headers["X-Amz-Security-Token"] = self.config["session_token"]
        status, answer = http.post(url, body, sigv4_headers(
            method="POST", url=url, headers=headers, body=body, key=self.config["account"],
            secret=self.config["secret"], region=region, service=SERVICE, now=clock.now().astimezone(timezone.utc)))
        if 200 <= status < 300 and answer.get("MessageId"):
            return answer["MessageId"]
        error = str(answer.get("__type") or "").rpartition("#")[2]
        detail = answer.get("Message") or answer.get("message") or answer.get("raw") or "no details"
        reason = f" ({answer['Reason']})" if answer.get("Reason") else ""
        raise SmsError(f"AWS refused the message (HTTP {status}, {error or '-'}{reason}): {detail}",
                       retryable=status >= 500 or error in RETRYABLE_ERRORS, code=error, status=status)


# --- SNS notifications -------------------------------------------------------------

def string_to_sign(message: dict) -> bytes:
    fields = SIGNED_FIELDS.get(message.get("Type"))
    if fields is None:
        raise MalformedWebhook(f"not an SNS message type we read: {message.get('Type')!r}")
    return "".join(f"{name}\n{message[name]}\n" for name in fields if name in message).encode()


def _allowed_url(url: str) -> bool:
    return isinstance(url, str) and re.match(flows_setting("SMS_SNS_URL_PATTERN"), url) is not None


def _public_key(url: str):
    if url not in _certificates:
        from cryptography import x509

        with urllib.request.urlopen(url, timeout=flows_setting("SMS_TIMEOUT_SECONDS")) as response:
            _certificates[url] = x509.load_pem_x509_certificate(response.read()).public_key()
    return _certificates[url]


def verify_sns(message: dict):
    """Raise ``SignatureError`` unless SNS signed ``message`` for one of our topics, recently."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    topics = config().get("sns_topic_arns") or []
    topics = [t.strip() for t in topics.split(",")] if isinstance(topics, str) else list(topics)
    if message.get("TopicArn") not in topics:
        raise SignatureError(f"SNS topic {message.get('TopicArn')!r} is not in SMS_PROVIDER['sns_topic_arns']")
    if not _allowed_url(message.get("SigningCertURL")):
        raise SignatureError(f"SigningCertURL {message.get('SigningCertURL')!r} is not an SNS host")
    algorithm = {"1": hashes.SHA1(), "2": hashes.SHA256()}.get(str(message.get("SignatureVersion")))
    if algorithm is None:
        raise SignatureError(f"unknown SNS SignatureVersion {message.get('SignatureVersion')!r}")
    try:
        signature = base64.b64decode(message.get("Signature") or "", validate=True)
        key = _public_key(message["SigningCertURL"])
    except (ValueError, OSError) as exc:
        raise SignatureError(f"cannot check the SNS signature ({exc})") from None
    try:
        key.verify(signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise SignatureError("the SNS signature does not match") from None
    moment = parse_datetime(message.get("Timestamp") or "")
    if moment is None:
        raise SignatureError("the SNS message has no Timestamp")
    check_fresh(moment, "the SNS Timestamp")


def _notification(request) -> tuple[dict, dict] | None:
    """The verified SNS notification and its parsed ``Message``; None after confirming a subscription."""
    envelope = json_body(request)
    require(envelope, "Type", "MessageId", "TopicArn", "Message", "Timestamp")
    verify_sns(envelope)
    if envelope["Type"] == "SubscriptionConfirmation":
        # Our topic wants to deliver here: confirm, from AWS's host only.
        if not _allowed_url(envelope.get("SubscribeURL")):
            raise SignatureError("SubscribeURL is not an SNS host")
        with urllib.request.urlopen(envelope["SubscribeURL"], timeout=flows_setting("SMS_TIMEOUT_SECONDS")):
            pass
        return None
    if envelope["Type"] != "Notification":
        return None  # an unsubscribe confirmation: nothing to do
    try:
        event = json.loads(envelope["Message"])
    except ValueError:
        raise MalformedWebhook("the SNS Message is not JSON") from None
    if not isinstance(event, dict):
        raise MalformedWebhook("the SNS Message is not a JSON object")
    return envelope, event


def _millis(value) -> datetime:
    if isinstance(value, (int, float)):
        try:
            return datetime.fromtimestamp(value / 1000, timezone.utc)
        except (OverflowError, OSError, ValueError):  # OSError: the platform's time functions overflowed
            raise MalformedWebhook(f"eventTimestamp {value!r} is not a time") from None
    return clock.now()


def statuses(request) -> list[DeliveryStatus]:
    read = _notification(request)
    if read is None:
        return []
    envelope, event = read
    kind = EVENT_TYPES.get(event.get("eventType"))
    if kind is None:
        return []  # voice, MMS, registration events, or a type AWS adds later
    require(event, "messageId")
    context = event.get("context") if isinstance(event.get("context"), dict) else {}
    failed = kind not in (Type.QUEUED, Type.SENT, Type.DELIVERED)
    return [DeliveryStatus(
        provider=PROVIDER, channel="sms", type=kind, occurred_at=_millis(event.get("eventTimestamp")),
        event_id=envelope["MessageId"], send_id=str(context.get("send_id") or ""),
        provider_message_id=event["messageId"], recipient=str(event.get("destinationPhoneNumber") or ""),
        reason=f"AWS {event.get('messageStatus', '')}: {event.get('messageStatusDescription', '')}" if failed else "",
        detail={"event_type": event["eventType"], "status": event.get("messageStatus", "")})]


def inbound(request) -> InboundSms | None:
    read = _notification(request)
    if read is None:
        return None
    envelope, event = read
    sender, = require(event, "originationNumber")
    return InboundSms(provider=PROVIDER, event_id=str(event.get("inboundMessageId") or envelope["MessageId"]),
                      from_number=sender, to_number=str(event.get("destinationNumber") or ""),
                      body=str(event.get("messageBody") or ""),
                      occurred_at=parse_datetime(envelope["Timestamp"]) or clock.now())
