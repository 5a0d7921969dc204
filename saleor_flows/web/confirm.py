"""The double opt-in confirmation link: GET shows a button, POST confirms.

GET never confirms: mail security scanners open every link in an email, and
a subscription confirmed by a robot is no proof of anything. The signed,
expiring token is the proof of the address (see ``pages.py`` on CSRF).
"""

from django.http import HttpResponse

from ..engine.consent import confirm_opt_in
from ..models import Contact
from ..channels import texts
from .pages import client_proof, open_link, render_page


def confirm(request, token: str) -> HttpResponse:
    page = open_link(request, "confirm", token)
    if isinstance(page, HttpResponse):
        return page
    title = texts.say(page.language, "confirm.title")
    if request.method == "GET":
        if page.contact.email_consent == Contact.Consent.SUBSCRIBED:
            return render_page(page.language, title, f"<p>{page.say('confirm.done')}</p>")
        form = f'<form method="post"><button type="submit">{page.say("confirm.button")}</button></form>'
        return render_page(page.language, title, f"<p>{page.say('confirm.ask')}</p>{form}")
    proof = client_proof(request, "double_opt_in")
    if confirm_opt_in(page.contact.pk, ip=proof.ip, user_agent=proof.user_agent) == "not_pending":
        return render_page(page.language, title, f"<p>{page.say('confirm.not_pending')}</p>", status=409)
    return render_page(page.language, title, f"<p>{page.say('confirm.done')}</p>")
