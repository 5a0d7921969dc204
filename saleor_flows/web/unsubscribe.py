"""The unsubscribe link in every marketing email, and the one-click POST mailbox providers send.

GET only shows a confirmation page: link scanners and mail security proxies
open every link, and must never unsubscribe anyone. POST unsubscribes at
once, with no further question (RFC 8058 ``List-Unsubscribe=One-Click``).
The token is signed and names the contact by id only.
"""

from django.core import signing
from django.db import transaction
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseNotAllowed
from django.utils.html import escape

from .. import clock
from ..conf import flows_setting
from ..engine import trail
from ..engine.contacts import set_consent
from ..models import Contact
from . import public_url

SALT = "saleor-flows.unsubscribe"

TEXT = {
    "en": {"title": "Unsubscribe", "ask": "Stop marketing emails to {email}?", "button": "Unsubscribe",
           "done": "{email} will get no more marketing emails from {shop}. Order and account emails still arrive.",
           "bad": "This unsubscribe link is not valid. Please use the link from a recent email."},
    "de": {"title": "Abmelden", "ask": "Keine Marketing-E-Mails mehr an {email} senden?", "button": "Abmelden",
           "done": "{email} bekommt keine Marketing-E-Mails von {shop} mehr. E-Mails zu Bestellungen und "
                   "zum Konto kommen weiterhin an.",
           "bad": "Dieser Abmeldelink ist ungültig. Bitte nutze den Link aus einer aktuellen E-Mail."},
}


def make_token(contact_id: int, send_id) -> str:
    return signing.dumps({"c": contact_id, "s": str(send_id)}, salt=SALT, compress=True)


def link(contact_id: int, send_id) -> str:
    return public_url(f"unsubscribe/{make_token(contact_id, send_id)}/")


def _masked(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:2]}{'•' * max(len(name) - 2, 1)}@{domain}"


def _page(language: str, key: str, *, email: str = "", form: bool = False, status: int = 200) -> HttpResponse:
    text = TEXT.get((language or "en")[:2].lower(), TEXT["en"])
    shop = flows_setting("SHOP").get("name", "")
    body = escape(text[key].format(email=_masked(email) if email else "", shop=shop))
    button = (f'<form method="post"><button type="submit">{escape(text["button"])}</button></form>'
              if form else "")
    html = (f'<!doctype html><html lang="{escape(language or "en")}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
            f"<title>{escape(text['title'])}</title></head>"
            f'<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem">'
            f"<h1>{escape(text['title'])}</h1><p>{body}</p>{button}</body></html>")
    return HttpResponse(html, status=status)


def unsubscribe(request, token: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    try:
        data = signing.loads(token, salt=SALT)
        contact = Contact.objects.get(pk=data["c"])
    except (signing.BadSignature, Contact.DoesNotExist, KeyError, TypeError, ValueError):
        page = _page(request.headers.get("Accept-Language", "en"), "bad", status=400)
        return HttpResponseBadRequest(page.content)
    if request.method == "GET":
        return _page(contact.locale, "ask", email=contact.email or "", form=True)
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        if contact.email_consent != Contact.Consent.UNSUBSCRIBED:
            changed = set_consent(contact, "email", Contact.Consent.UNSUBSCRIBED, source="unsubscribe_link")
            contact.updated_at = clock.now()
            contact.save(update_fields=changed + ["updated_at"])
            trail.record(contact.pk, "unsubscribed", channel="email", source="unsubscribe_link",
                         send_id=data.get("s", ""), one_click=request.POST.get("List-Unsubscribe") == "One-Click")
    return _page(contact.locale, "done", email=contact.email or "")
