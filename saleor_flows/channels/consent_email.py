"""The emails consent itself sends: the double opt-in confirmation, and the staff notice of a new subscriber.

Both are transactional (no unsubscribe header, no consent needed: the person
just asked, or the recipient is staff) and go through the same mail path as
flow emails (``email.build_email`` / ``send_email_message``), so the host's
backend, SMTP settings, Message-ID and send id header apply to them too.
"""

import logging
import uuid

from django.utils.html import escape

from .. import clock
from ..conf import flows_setting
from ..models import Contact
from . import texts, tokens
from .email import build_email, send_email_message
from .staff import not_staff
from .templating import RenderedEmail

logger = logging.getLogger(__name__)


def confirmation(contact: Contact) -> RenderedEmail:
    language = texts.language_for(contact)
    shop = flows_setting("SHOP").get("name", "")
    link = tokens.url("confirm", contact.pk)
    subject = texts.say(language, "confirm.email.subject", shop=shop)
    body = texts.say(language, "confirm.email.body", shop=shop)
    button = texts.say(language, "confirm.button")
    html = (f'<!doctype html><html lang="{language}"><head><meta charset="utf-8"><title>{escape(subject)}</title>'
            f'</head><body style="font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem">'
            f"<p>{escape(body)}</p>"
            f'<p><a href="{escape(link)}" style="display:inline-block;background:#111827;color:#ffffff;'
            f'padding:12px 24px;border-radius:6px;text-decoration:none">{escape(button)}</a></p>'
            f'<p style="font-size:12px;color:#6b7280">{escape(link)}</p></body></html>')
    text = f"{body}\n\n{button}: {link}\n"
    return RenderedEmail(subject=subject, html=html, text=text, language=language)


def staff_notice(contact: Contact, *, channels: list[str], source: str) -> RenderedEmail:
    language = texts.default_language()  # staff read the shop's language, not the subscriber's
    address = " / ".join(filter(None, [contact.email, contact.phone if "sms" in channels else ""]))
    subject = texts.say(language, "staff.subject", address=address)
    body = texts.say(language, "staff.body", address=address, channels=", ".join(channels), source=source,
                     at=clock.now().strftime("%Y-%m-%d %H:%M UTC"))
    return RenderedEmail(subject=subject, html="", text=body + "\n", language=language)


def send(kind: str, contact_id: int, **detail) -> bool:
    """Build and send one consent email; False when there is nothing to send any more."""
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        return False
    if kind == "confirm":
        if contact.email_consent != Contact.Consent.PENDING or not contact.email:
            return False  # confirmed or unsubscribed in the meantime
        rendered, to = confirmation(contact), [contact.email]
    elif kind == "staff":
        wanted = list(flows_setting("NEW_SUBSCRIBER_NOTIFY"))  # plugin configuration: MANAGE_PLUGINS sets it
        outsiders = not_staff(wanted)
        if outsiders:
            logger.warning("saleor-flows: new-subscriber notice not sent to %s: not a staff address", outsiders)
        to = [address for address in wanted if address not in outsiders]
        if not to:
            return False
        rendered = staff_notice(contact, **detail)
    else:
        raise ValueError(f"unknown consent email {kind!r}")
    message = build_email(rendered, to=to[0], from_email=flows_setting("FROM_EMAIL"), reply_to=None,
                          send_id=f"consent-{kind}-{uuid.uuid4()}", tags=[f"consent:{kind}", "transactional"])
    message.to = to
    send_email_message(message)
    return True
