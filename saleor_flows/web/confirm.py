"""The double opt-in confirmation link: GET shows a button, POST confirms.

GET never confirms: mail security scanners open every link in an email, and
a subscription confirmed by a robot is no proof of anything. The view is
CSRF-exempt (see ``urls.py``) because the page is opened from an email with
no session; the signed, expiring token is the proof.
"""

from django.http import HttpResponse, HttpResponseNotAllowed
from django.utils.html import escape

from ..conf import flows_setting
from ..engine.consent import confirm_opt_in
from ..models import Contact
from . import texts, tokens
from .unsubscribe import bad_link


def confirm(request, token: str) -> HttpResponse:
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    try:
        contact = Contact.objects.get(pk=tokens.read("confirm", token)["c"])
    except (tokens.BadToken, Contact.DoesNotExist):
        return bad_link(request, "confirm")
    language = texts.language_for(contact, request)
    email = texts.masked(contact.email or "")
    say = lambda key: escape(texts.say(language, key, email=email, shop=flows_setting("SHOP").get("name", "")))  # noqa: E731
    title = texts.say(language, "confirm.title")
    if request.method == "GET":
        if contact.email_consent == Contact.Consent.SUBSCRIBED:
            return texts.page(language, title, f"<p>{say('confirm.done')}</p>")
        form = f'<form method="post"><button type="submit">{say("confirm.button")}</button></form>'
        return texts.page(language, title, f"<p>{say('confirm.ask')}</p>{form}")
    outcome = confirm_opt_in(contact.pk, ip=request.META.get("REMOTE_ADDR") or None,
                             user_agent=request.headers.get("User-Agent", ""))
    if outcome == "not_pending":
        return texts.page(language, title, f"<p>{say('confirm.not_pending')}</p>", status=409)
    return texts.page(language, title, f"<p>{say('confirm.done')}</p>")
