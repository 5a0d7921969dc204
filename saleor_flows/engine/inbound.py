"""Texts people send us: STOP, START and HELP, the way carriers require them to work.

Every SMS edge (a provider's inbound webhook) turns a message into an
``InboundSms`` and calls ``handle()``. It is stored once as an ``inbound``
message event (providers retry), and:

- a STOP keyword suppresses the number at once, for every flow and every
  kind of message (carriers require silence from that sender until START),
  and withdraws SMS consent of every contact with that number;
- a START keyword lifts a STOP (or an unsubscribe) and restores consent for
  contacts who had withdrawn it (it never creates consent from nothing);
- HELP gets the shop's help text.

``handle()`` returns the reply text; the edge sends it its own way (TwiML in
the webhook answer for Twilio, an outbound message otherwise).

A keyword counts only as the whole message (trimmed, any case, trailing
punctuation ignored), as carriers match them: "Stop." stops, "don't stop"
does not.
"""

import string

from django.db import transaction

from .. import clock
from ..channels.statuses import InboundSms
from ..conf import flows_setting
from ..models import Contact, MessageEvent
from ..phone import to_e164
from . import engagement, suppression, trail
from .contacts import set_consent

# Documented in docs/sms.md. English keywords are the CTIA/carrier set; STOPP, ARRET, HILFE and
# AIDE cover German- and French-speaking customers.
STOP_WORDS = frozenset({"STOP", "STOPALL", "STOPP", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
                        "ARRET", "ARRÊT"})
START_WORDS = frozenset({"START", "UNSTOP", "YES", "SUBSCRIBE"})
HELP_WORDS = frozenset({"HELP", "INFO", "HILFE", "AIDE"})

REPLIES = {
    "en": {
        "stop": "{shop}: you will get no more text messages from us. Reply START to get them again.",
        "start": "{shop}: you will get our text messages again. Reply STOP to stop them, HELP for help.",
        "help": "{shop}: questions? Contact {support}. Reply STOP to stop our text messages.",
    },
    "de": {
        "stop": "{shop}: Du bekommst keine SMS mehr von uns. Antworte START, um sie wieder zu bekommen.",
        "start": "{shop}: Du bekommst wieder SMS von uns. Antworte STOPP zum Abmelden, HILFE für Hilfe.",
        "help": "{shop}: Fragen? Schreib an {support}. Antworte STOPP, um keine SMS mehr zu bekommen.",
    },
}


def keyword(body: str) -> str:
    """"stop", "start", "help" or "" for the whole message ``body``."""
    word = (body or "").strip().rstrip(string.punctuation + " ").upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return ""


def reply_text(kind: str, language: str = "") -> str:
    """The reply to a keyword in ``language`` (the contact's locale), English when there is none."""
    configured = flows_setting("SMS_REPLIES") or {}
    language = (language or "en")[:2].lower()
    texts = {**REPLIES["en"], **configured.get("en", {}), **REPLIES.get(language, {}), **configured.get(language, {})}
    shop = flows_setting("SHOP") or {}
    support = shop.get("support_email") or shop.get("url") or ""
    return texts[kind].format(shop=shop.get("name", ""), support=support)


def handle(message: InboundSms) -> str:
    """Store and act on one inbound text; returns the reply to send ("" for none, or for a retry)."""
    try:
        number = to_e164(message.from_number, flows_setting("PHONE_REGION"))
    except ValueError:
        number = message.from_number.strip()  # a short code or alphanumeric sender: kept as given
    kind = keyword(message.body)
    with transaction.atomic():
        stored = engagement.record(engagement.DeliveryStatus(
            provider=message.provider, channel="sms", type=MessageEvent.Type.INBOUND, occurred_at=message.occurred_at,
            event_id=message.event_id, recipient=number,
            detail={"keyword": kind, "body": message.body[:320], "to": message.to_number, **message.detail}))
        if stored is None:
            return ""  # a provider's retry: acted on (and answered) the first time
        contacts = list(Contact.objects.select_for_update().filter(phone=number).order_by("pk"))
        if kind == "stop":
            suppression.suppress("sms", number, suppression.SMS_STOP, source=message.provider)
        elif kind == "start":
            suppression.lift_opt_out("sms", number)
        for contact in contacts:
            if kind == "stop" and contact.sms_consent != Contact.Consent.UNSUBSCRIBED:
                _consent(contact, Contact.Consent.UNSUBSCRIBED, "provider_stop", message)
            elif kind == "start" and contact.sms_consent == Contact.Consent.UNSUBSCRIBED:
                _consent(contact, Contact.Consent.SUBSCRIBED, "provider_start", message)
            trail.record(contact.pk, f"sms_{kind}" if kind else "sms_received", provider=message.provider,
                         body=message.body[:160])
    return reply_text(kind, contacts[0].locale if contacts else "") if kind else ""


def _consent(contact: Contact, status: str, source: str, message: InboundSms):
    changed = set_consent(contact, "sms", status, source=source, at=message.occurred_at,
                          detail={"provider": message.provider, "event_id": message.event_id})
    contact.updated_at = clock.now()
    contact.save(update_fields=changed + ["updated_at"])
