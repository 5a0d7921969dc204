"""The unsubscribe link in every marketing email, and the one-click POST mailbox providers send.

GET only shows a confirmation page: link scanners and mail security proxies
open every link, and must never unsubscribe anyone. POST unsubscribes at
once, with no further question and no redirect (RFC 8058
``List-Unsubscribe=One-Click``). The view is CSRF-exempt (see ``urls.py``):
a mailbox provider's POST carries no CSRF cookie or token, the signed token
in the URL is the proof. The token names the contact by id only.
"""

from django.db import transaction
from django.http import HttpResponse, HttpResponseNotAllowed
from django.utils.html import escape

from ..conf import flows_setting
from ..engine.consent import UNSUBSCRIBED, Proof, set_email_status
from ..models import Contact
from . import texts, tokens


def link(contact_id: int, send_id) -> str:
    return tokens.url("unsubscribe", contact_id, s=str(send_id))


def client_proof(request, source: str, **detail) -> Proof:
    """Who asked: the IP address and user agent of the request, kept with the consent change."""
    return Proof(source, ip=request.META.get("REMOTE_ADDR") or None,
                 user_agent=request.headers.get("User-Agent", ""), detail=detail)


def bad_link(request, page_name: str) -> HttpResponse:
    """A clear 400 page for a token that was altered, expired or made for another page."""
    language = texts.language_for(request=request)
    return texts.page(language, texts.say(language, f"{page_name}.title"),
                      f"<p>{escape(texts.say(language, f'{page_name}.bad'))}</p>", status=400)


def unsubscribe(request, token: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    try:
        data = tokens.read("unsubscribe", token)
        contact = Contact.objects.get(pk=data["c"])
    except (tokens.BadToken, Contact.DoesNotExist):
        return bad_link(request, "unsubscribe")
    language = texts.language_for(contact, request)
    shop = flows_setting("SHOP").get("name", "")
    email = texts.masked(contact.email or "")
    say = lambda key: escape(texts.say(language, key, email=email, shop=shop))  # noqa: E731
    preferences = (f'<p>{say("unsubscribe.rather")} <a href="{escape(tokens.url("preferences", contact.pk))}">'
                   f'{say("preferences.link")}</a></p>')
    if request.method == "GET":
        form = f'<form method="post"><button type="submit">{say("unsubscribe.button")}</button></form>'
        return texts.page(language, texts.say(language, "unsubscribe.title"),
                          f"<p>{say('unsubscribe.ask')}</p>{form}{preferences}")
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=contact.pk)
        set_email_status(contact, UNSUBSCRIBED, proof=client_proof(
            request, "list_unsubscribe" if one_click else "unsubscribe_link", send_id=data.get("s", "")))
    return texts.page(language, texts.say(language, "unsubscribe.title"), f"<p>{say('unsubscribe.done')}</p>{preferences}")
