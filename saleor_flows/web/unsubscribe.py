"""The unsubscribe link in every marketing email, and the one-click POST mailbox providers send.

GET only shows a confirmation page: link scanners and mail security proxies
open every link, and must never unsubscribe anyone. POST unsubscribes at
once, with no further question and no redirect (RFC 8058
``List-Unsubscribe=One-Click``). The token names the contact by id only.
"""

from django.db import transaction
from django.http import HttpResponse
from django.utils.html import escape

from ..engine.consent import UNSUBSCRIBED, set_email_status
from ..models import Contact
from ..channels import texts, tokens
from .pages import client_proof, open_link, render_page


def unsubscribe(request, token: str) -> HttpResponse:
    page = open_link(request, "unsubscribe", token)
    if isinstance(page, HttpResponse):
        return page
    title = texts.say(page.language, "unsubscribe.title")
    preferences = (f'<p>{page.say("unsubscribe.rather")} '
                   f'<a href="{escape(tokens.url("preferences", page.contact.pk))}">{page.say("preferences.link")}</a></p>')
    if request.method == "GET":
        form = f'<form method="post"><button type="submit">{page.say("unsubscribe.button")}</button></form>'
        return render_page(page.language, title, f"<p>{page.say('unsubscribe.ask')}</p>{form}{preferences}")
    one_click = request.POST.get("List-Unsubscribe") == "One-Click"
    with transaction.atomic():
        contact = Contact.objects.select_for_update().get(pk=page.contact.pk)
        set_email_status(contact, UNSUBSCRIBED, proof=client_proof(
            request, "list_unsubscribe" if one_click else "unsubscribe_link", send_id=page.data.get("s", "")))
    return render_page(page.language, title, f"<p>{page.say('unsubscribe.done')}</p>{preferences}")
