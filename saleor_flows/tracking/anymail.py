"""django-anymail's tracking webhooks as our delivery and engagement statuses.

When the host sends through django-anymail, each ESP's tracking webhook
(mounted under our URL by ``webhook_urls``, with anymail's own basic-auth
``WEBHOOK_SECRET`` and the ESP's signature checks; a body that passes them but
cannot be read or stored is a 400 and a log line, ``web.untrusted.malformed_is_400``) sends anymail's normalized
``AnymailTrackingEvent`` through its ``tracking`` signal; ``receive`` turns it
into one ``DeliveryStatus`` for ``engine.engagement.record``. anymail stays
optional: nothing here is imported unless it is installed.

Matching: our send id travels in anymail's ``metadata`` (``build_email`` puts it
there) and comes back on the ESP's events; otherwise the ESP's message id, which
the runner stored when anymail returned it. Events for mail that is not ours
(the host's own order emails through the same ESP) are dropped, except bounces
and complaints, which tell us the address is bad whatever sent to it.
"""

from dataclasses import replace

from django.urls import path
from django.utils.module_loading import import_string

from .. import clock
from ..channels.email import ANYMAIL_SEND_ID_KEY
from ..engine import engagement
from ..engine.engagement import DeliveryStatus
from ..models import MessageEvent
from ..web.untrusted import malformed_is_400
from .evidence import machine_reason_for

Type = MessageEvent.Type

# Our URL name for each ESP → anymail's view that receives its tracking webhooks.
ESP_WEBHOOKS = {
    "amazon_ses": "anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView",
    "brevo": "anymail.webhooks.brevo.BrevoTrackingWebhookView",
    "mailersend": "anymail.webhooks.mailersend.MailerSendTrackingWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
    "mailjet": "anymail.webhooks.mailjet.MailjetTrackingWebhookView",
    "mailtrap": "anymail.webhooks.mailtrap.MailtrapTrackingWebhookView",
    "mandrill": "anymail.webhooks.mandrill.MandrillCombinedWebhookView",
    "postal": "anymail.webhooks.postal.PostalTrackingWebhookView",
    "postmark": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
    "resend": "anymail.webhooks.resend.ResendTrackingWebhookView",
    "sendgrid": "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
    "sparkpost": "anymail.webhooks.sparkpost.SparkPostTrackingWebhookView",
    "unisender_go": "anymail.webhooks.unisender_go.UnisenderGoTrackingWebhookView",
}

# anymail's event types that map straight onto ours. Not here: "queued" (says nothing
# the send did not), "subscribed" (an ESP-hosted form is not our consent record),
# "autoresponded", "inbound", "inbound_failed" and "unknown" (nothing to act on).
SAME_TYPE = {
    "sent": Type.SENT, "rejected": Type.REJECTED, "failed": Type.FAILED, "deferred": Type.DEFERRED,
    "delivered": Type.DELIVERED, "opened": Type.OPENED, "clicked": Type.CLICKED, "complained": Type.COMPLAINED,
    "unsubscribed": Type.UNSUBSCRIBED,
}
# A "bounced" event suppresses the address only when the address is the reason.
HARD_BOUNCE_REASONS = {"bounced", "invalid", None}
# Bounces anymail reports with reject_reason "bounced" that the ESP itself calls temporary.
SOFT_BOUNCE_TYPES = {"postmark": ("Type", {"SoftBounce"})}


def webhook_urls() -> list:
    """``tracking/<esp>/`` for each ESP whose anymail webhook view imports here."""
    patterns = []
    for esp, dotted in ESP_WEBHOOKS.items():
        try:
            view = import_string(dotted)
        except ImportError:  # an ESP whose webhook needs an optional package (boto3, requests, ...)
            continue
        patterns.append(path(f"tracking/{esp}/", malformed_is_400(f"{esp} tracking")(view.as_view()),
                             name=f"flows-tracking-{esp}"))
    return patterns


def our_type(event, esp: str) -> str | None:
    """Our ``MessageEvent.Type`` for an anymail event, or None to ignore it."""
    if event.event_type == "bounced":
        field, soft = SOFT_BOUNCE_TYPES.get(esp, ("", ()))
        esp_event = event.esp_event if isinstance(event.esp_event, dict) else {}
        if event.reject_reason not in HARD_BOUNCE_REASONS or esp_event.get(field) in soft:
            return Type.FAILED  # undeliverable this time; the address may well work
        return Type.BOUNCED
    return SAME_TYPE.get(event.event_type)


def as_status(event, esp_name: str) -> DeliveryStatus | None:
    """Our status for one anymail tracking event, or None when it is nothing for us."""
    esp = "".join(ch for ch in (esp_name or "anymail").lower() if ch.isalnum() or ch == "_") or "anymail"
    kind = our_type(event, esp)
    if kind is None:
        return None
    metadata = event.metadata if isinstance(event.metadata, dict) else {}
    status = DeliveryStatus(
        provider=esp, type=kind, occurred_at=event.timestamp or clock.now(), event_id=str(event.event_id or ""),
        send_id=str(metadata.get(ANYMAIL_SEND_ID_KEY) or ""), provider_message_id=str(event.message_id or ""),
        recipient=event.recipient or "", url=event.click_url or "",
        reason=str(event.reject_reason or event.mta_response or event.description or "")[:500],
        detail={key: value for key, value in (("description", event.description), ("mta_response", event.mta_response),
                                              ("reject_reason", event.reject_reason)) if value},
    )
    message = engagement.find_message(status)
    if message is None and kind not in (Type.BOUNCED, Type.COMPLAINED):
        return None  # not one of ours: the host's own mail through the same ESP
    if kind in (Type.OPENED, Type.CLICKED):
        # No user agent in an ESP's event means it does not tell, not that there was none.
        reason = machine_reason_for(message, kind, user_agent=event.user_agent or None, occurred_at=status.occurred_at,
                                    url=status.url)
        if reason:
            status = replace(status, machine=True, detail={**status.detail, "machine_reason": reason})
    return status


def receive(sender, event, esp_name, **kwargs):
    """anymail's ``tracking`` signal receiver: record the event once (ESPs retry)."""
    status = as_status(event, esp_name)
    if status is not None:
        engagement.record(status)


def connect():
    from anymail.signals import tracking

    tracking.connect(receive, dispatch_uid="saleor-flows-anymail-tracking")
