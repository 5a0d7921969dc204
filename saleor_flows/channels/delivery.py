"""From a send step to a message on its way: the one place the engine reaches the channels.

``prepare()`` renders everything (so a template error fails the step before
anything is committed as `sending`); ``hand_off()`` only talks to the backend.
"""

from dataclasses import dataclass, field

from ..conf import flows_setting
from . import links
from .email import build_email, send_email_message
from .sms import SmsMessage, get_sms_backend
from ..web.unsubscribe import link as unsubscribe_link
from .templating import render_email, render_text


@dataclass
class Outgoing:
    channel: str  # "email" or "sms"
    to: str
    subject: str
    message_id: str = ""
    payload: object = field(default=None, repr=False)  # an EmailMessage or SmsMessage


def template_context(*, contact, flow, event_payload, send_id) -> dict:
    """Plain JSON-like data for templates: never ORM objects."""
    return {
        "contact": contact.as_context(),
        "event": event_payload if isinstance(event_payload, dict) else {},
        "shop": dict(flows_setting("SHOP")),
        "flow": {"name": flow.name, "slug": flow.slug},
        "message": {"send_id": str(send_id)},
        "unsubscribe_url": unsubscribe_link(contact.pk, send_id),  # signed; names no one readably
    }


def _translated(step: dict, key: str, language: str | None) -> str:
    if language:
        translations = step.get("translations") or {}
        for candidate in (language, language.replace("_", "-").lower(), language[:2].lower()):
            if key in (translations.get(candidate) or {}):
                return translations[candidate][key]
    return step[key]


def prepare(step: dict, *, kind: str, flow, contact, event_payload: dict, send_id) -> Outgoing:
    """``kind`` is the message kind the engine decided ("marketing" gets unsubscribe headers)."""
    context = template_context(contact=contact, flow=flow, event_payload=event_payload, send_id=send_id)
    language = contact.locale or (event_payload or {}).get("language_code") or None
    step_type = step["type"]
    if step_type == "send_email":
        rendered = render_email(step["compiled"], context, language=language)
        if links.applies(kind):
            rendered = links.track(rendered, links=step.get("links"), context=context, send_id=send_id)
        headers = {"List-Unsubscribe": f"<{context['unsubscribe_url']}>",
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"} if kind == "marketing" else None
        message = build_email(
            rendered, to=contact.email, from_email=flows_setting("FROM_EMAIL"), headers=headers,
            reply_to=[flows_setting("REPLY_TO")] if flows_setting("REPLY_TO") else None,
            send_id=str(send_id), metadata={"flow": flow.slug, "step": step.get("id", "")},
            tags=[f"flow:{flow.slug}", kind],
        )
        return Outgoing("email", contact.email, rendered.subject, message.extra_headers.get("Message-ID", ""), message)
    if step_type == "send_sms":
        body = render_text(_translated(step, "body", language), context, language=language)
        sms = SmsMessage(to=contact.phone, body=body, from_=flows_setting("SMS_FROM"), send_id=str(send_id))
        return Outgoing("sms", contact.phone, body[:255], "", sms)
    if step_type == "notify_staff":
        subject = render_text(step["subject"], context).strip().replace("\n", " ")
        body = render_text(step["body"], context)
        message = build_email(
            _PlainText(subject, body), to=", ".join(step["to"]), from_email=flows_setting("FROM_EMAIL"),
            reply_to=None, send_id=str(send_id), tags=[f"flow:{flow.slug}", "staff"],
        )
        message.to = list(step["to"])
        return Outgoing("email", ", ".join(step["to"]), subject, message.extra_headers.get("Message-ID", ""), message)
    raise ValueError(f"not a send step: {step_type}")


@dataclass
class _PlainText:
    """A staff notification: text only, shaped like a rendered email."""

    subject: str
    text: str
    html: str = ""
    language: str = ""


def hand_off(outgoing: Outgoing) -> str:
    """Send; the provider's message id when the backend reports one (django-anymail does), else ""."""
    if outgoing.channel == "email":
        send_email_message(outgoing.payload)
    else:
        get_sms_backend().send_messages([outgoing.payload])
    status = getattr(outgoing.payload, "anymail_status", None)
    provider_id = getattr(status, "message_id", None)
    # One recipient, so one id (anymail gives a set only when recipients' ids differ).
    return "" if provider_id is None or isinstance(provider_id, (set, frozenset)) else str(provider_id)
