"""From a send step to a message on its way: the one place the engine reaches the channels.

``prepare()`` renders everything (so a template error fails the step before
anything is committed as `sending`); ``hand_off()`` only talks to the backend.
"""

import json
from dataclasses import dataclass, field, replace
from urllib.parse import quote

from django.utils.html import escape

from ..conf import flows_setting
from . import links
from .email import build_email, close_quietly, email_connection, send_on
from ..phone import to_e164
from .sms import SmsMessage, get_sms_backend, segments
from . import texts, tokens
from .templating import TemplateError, render_email, render_text


@dataclass
class Outgoing:
    channel: str  # "email" or "sms"
    to: str
    subject: str
    message_id: str = ""
    payload: object = field(default=None, repr=False)  # an EmailMessage or SmsMessage
    kind: str = "marketing"  # the stream it goes out on: "marketing", "transactional" or "staff"
    segments: int = 0  # SMS parts billed


def shop_context() -> dict:
    """``{{ shop.* }}``: the SHOP setting, with the listing links the prebuilt journeys use as full URLs."""
    shop = dict(flows_setting("SHOP"))
    for key, setting in (("best_sellers_url", "BEST_SELLERS_URL"), ("new_arrivals_url", "NEW_ARRIVALS_URL")):
        if not shop.get(key):
            shop[key] = listing_url(flows_setting(setting) or "", links.storefront_origin() or shop.get("url") or "",
                                    shop.get("url") or "")
    return shop


def listing_url(value: str, storefront: str, shop_url: str) -> str:
    """A listing setting as a full URL (a path is taken on the storefront); the shop's URL if it would
    lead off the shop's own hosts (``links.shop_link``)."""
    if value.startswith("/"):
        value = storefront.rstrip("/") + value
    return links.shop_link(value) or shop_url


def recommendations_function(recommended):
    """``recommendations(limit=3)`` in templates: up to ``limit`` of the products the engine chose.

    The engine computes them only for templates that call this (``engine/recommendations.py``);
    each is a dict of strings: product_id, product_name, product_url, thumbnail, price, currency, reason.
    """
    items = [dict(item) for item in recommended or []]

    def recommendations(limit=3):
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise TemplateError("recommendations(limit): the limit must be a whole number")
        return [dict(item) for item in items[:max(limit, 0)]]

    return recommendations


def template_context(*, contact, flow, event_payload, send_id, recommended=None) -> dict:
    """Plain JSON-like data for templates: never ORM objects."""
    return {
        "contact": contact.as_context(),
        "event": event_payload if isinstance(event_payload, dict) else {},
        "shop": shop_context(),
        "flow": {"name": flow.name, "slug": flow.slug},
        "message": {"send_id": str(send_id)},
        "unsubscribe_url": tokens.url("unsubscribe", contact.pk, s=str(send_id)),  # signed; names no one readably
        "preferences_url": tokens.url("preferences", contact.pk),
        "recommendations": recommendations_function(recommended),
    }


def unsubscribe_headers(unsubscribe_url: str) -> dict:
    """RFC 2369 / RFC 8058 headers: the one-click HTTPS link first, then a mailto: if the shop has a mailbox."""
    targets = [f"<{unsubscribe_url}>"]
    mailbox = flows_setting("UNSUBSCRIBE_MAILTO")
    if mailbox:
        targets.append(f"<mailto:{quote(mailbox, safe='@')}?subject=unsubscribe>")
    return {"List-Unsubscribe": ", ".join(targets), "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}


def with_visible_unsubscribe(rendered, context: dict, language: str | None):
    """Marketing email must show how to leave, where to choose, and who sends it: add what the template lacks.

    Every marketing email carries the unsubscribe link, the preference-centre
    link and the shop's postal address (CAN-SPAM asks for the address; the
    preference link lets people say "less" instead of "never"). A template that
    places them itself is left alone; one that lacks any of them (a merchant's
    own layout, an imported one) gets a small footer with just the missing
    parts, so no marketing email can go out without them.
    """
    language = texts.language_for(given=language)
    links = [("unsubscribe_url", "footer.unsubscribe"), ("preferences_url", "footer.preferences")]
    address = str((context.get("shop") or {}).get("address") or "").strip()
    html, text = rendered.html, rendered.text
    missing_html = [(escape(context[key]), texts.say(language, label)) for key, label in links
                    if escape(context[key]) not in html]
    if html and (missing_html or (address and escape(address) not in html)):
        parts = [f'<a href="{url}" style="color:#6b7280">{escape(label)}</a>' for url, label in missing_html]
        line = " · ".join(parts)
        if address and escape(address) not in html:
            line = f"{line}<br>{escape(address)}" if line else escape(address)
        footer = f'<p style="font-size:12px;color:#6b7280;text-align:center;font-family:sans-serif">{line}</p>'
        closing = html.lower().rfind("</body>")
        html = html[:closing] + footer + html[closing:] if closing >= 0 else html + footer
    missing_text = [f"{texts.say(language, label)}: {context[key]}" for key, label in links if context[key] not in text]
    if address and address not in text:
        missing_text.append(address)
    if missing_text:
        text = text.rstrip() + "\n\n" + "\n".join(missing_text) + "\n"
    return replace(rendered, html=html, text=text)


def _translated(step: dict, key: str, language: str | None) -> str:
    if language:
        translations = step.get("translations") or {}
        for candidate in (language, language.replace("_", "-").lower(), language[:2].lower()):
            if key in (translations.get(candidate) or {}):
                return translations[candidate][key]
    return step[key]


STREAM_HEADER = "X-Flows-Stream"


def stream_settings(kind: str) -> dict:
    """The MESSAGE_STREAMS entry of a message kind ("marketing", "transactional", "staff"), or {}."""
    return (flows_setting("MESSAGE_STREAMS") or {}).get(kind) or {}


def sender_for(kind: str, saleor_channel: str, stream: dict | None = None) -> dict:
    """``from_email``, ``reply_to`` and ``sms_from`` for a message.

    The Saleor channel's own sender (SENDERS) wins: it is the brand the
    customer bought from. Then the stream's (e.g. a separate marketing
    domain), then the shop-wide FROM_EMAIL / REPLY_TO / SMS_FROM.
    """
    own = (flows_setting("SENDERS") or {}).get(saleor_channel) or {} if saleor_channel else {}
    if not own.get("sms_from"):
        # SMS_SENDERS (channel → number) is the short form the plugin's SMS settings fill.
        own = {**own, "sms_from": (flows_setting("SMS_SENDERS") or {}).get(saleor_channel or "")}
    stream = stream_settings(kind) if stream is None else stream
    return {key: own.get(key) or stream.get(key) or flows_setting(fallback)
            for key, fallback in (("from_email", "FROM_EMAIL"), ("reply_to", "REPLY_TO"), ("sms_from", "SMS_FROM"))}


def _email(rendered, *, to: str, kind: str, saleor_channel: str, flow, step: dict, send_id, headers=None):
    """A message on its kind's stream: its sender, stream header, tags, anymail metadata and esp_extra."""
    stream = stream_settings(kind)
    sender = sender_for(kind, saleor_channel, stream)
    return build_email(
        rendered, to=to, from_email=sender["from_email"], reply_to=sender["reply_to"] or [],
        headers={**(headers or {}), STREAM_HEADER: kind, **(stream.get("headers") or {})}, send_id=str(send_id),
        metadata={"flow": flow.slug, "step": step.get("id", ""), "stream": kind},
        tags=[f"flow:{flow.slug}", kind, *(stream.get("tags") or [])], esp_extra=stream.get("esp_extra"),
    )


def prepare(step: dict, *, kind: str, flow, contact, event_payload: dict, send_id, saleor_channel: str = "",
            recommended: list | None = None) -> Outgoing:
    """``kind`` is the message kind the engine decided ("marketing" gets unsubscribe headers).

    ``saleor_channel`` is the trigger event's channel: it picks the sender (SENDERS).
    ``recommended``: the products the engine chose for ``recommendations()`` (plain dicts).
    """
    context = template_context(contact=contact, flow=flow, event_payload=event_payload, send_id=send_id,
                               recommended=recommended)
    language = contact.locale or (event_payload or {}).get("language_code") or None
    step_type = step["type"]
    if step_type == "send_email":
        rendered = render_email(step["compiled"], context, language=language)
        headers = None
        if kind == "marketing":
            rendered = with_visible_unsubscribe(rendered, context, language)
            headers = unsubscribe_headers(context["unsubscribe_url"])
        if links.applies(kind):
            rendered = links.track(rendered, links=step.get("links"), context=context, send_id=send_id)
        else:
            rendered = links.unmarked(rendered)
        message = _email(rendered, to=contact.email, kind=kind, saleor_channel=saleor_channel, flow=flow, step=step,
                         send_id=send_id, headers=headers)
        return Outgoing("email", contact.email, rendered.subject, message.extra_headers.get("Message-ID", ""),
                        message, kind)
    if step_type == "send_sms":
        body = render_text(_translated(step, "body", language), context, language=language)
        to = to_e164(contact.phone, flows_setting("PHONE_REGION"))  # the engine checked it parses
        sms = SmsMessage(to=to, body=body, from_=sender_for(kind, saleor_channel)["sms_from"] or "",
                         send_id=str(send_id), kind=kind)
        return Outgoing("sms", to, body[:255], "", sms, kind, segments=segments(body)[1])
    if step_type == "notify_staff":
        subject = render_text(step["subject"], context).strip().replace("\n", " ")
        body = render_text(step["body"], context)
        message = _email(_PlainText(subject, body), to=", ".join(step["to"]), kind="staff",
                         saleor_channel=saleor_channel, flow=flow, step=step, send_id=send_id)
        message.to = list(step["to"])
        return Outgoing("email", ", ".join(step["to"]), subject, message.extra_headers.get("Message-ID", ""),
                        message, "staff")
    raise ValueError(f"not a send step: {step_type}")


@dataclass
class _PlainText:
    """A staff notification: text only, shaped like a rendered email."""

    subject: str
    text: str
    html: str = ""
    language: str = ""


class Courier:
    """Hands many messages to the backends over connections kept open until ``close()``.

    One connection per mail server (a stream may have its own, MESSAGE_STREAMS),
    so a chunk of sends costs one handshake, and each message's own outcome
    is still known: ``hand_off`` raises for that message alone.

    django-anymail's ESP backends with a batch API (SendGrid, Mailgun,
    Postmark…) batch only one message with many recipients and merge data;
    our messages are rendered one per contact, so each is still one API call
    on the backend's kept-open HTTP session.
    """

    def __init__(self):
        self._connections = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for connection in self._connections.values():
            close_quietly(connection)
        self._connections.clear()

    def hand_off(self, outgoing: Outgoing) -> str:
        """Send; the provider's message id when the backend reports one (django-anymail, SMS providers), else ""."""
        if outgoing.channel == "sms":
            get_sms_backend().send_messages([outgoing.payload])
            return outgoing.payload.provider_message_id or ""
        smtp = stream_settings(outgoing.kind).get("smtp") or None
        key = json.dumps(smtp, sort_keys=True, default=str) if smtp else ""
        if key not in self._connections:
            self._connections[key] = email_connection(smtp)
        send_on(self._connections[key], outgoing.payload)
        status = getattr(outgoing.payload, "anymail_status", None)
        provider_id = getattr(status, "message_id", None)
        # One recipient, so one id (anymail gives a set only when recipients' ids differ).
        return "" if provider_id is None or isinstance(provider_id, (set, frozenset)) else str(provider_id)


def hand_off(outgoing: Outgoing) -> str:
    """One message on a connection of its own (see ``Courier`` for many)."""
    with Courier() as courier:
        return courier.hand_off(outgoing)
