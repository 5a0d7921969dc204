"""What the pages opened from our emails share: reading the signed link, the language, the proof of a click.

Every one of them (unsubscribe, preferences, confirm) answers GET with a page
and acts only on POST, and is CSRF-exempt (see ``urls.py``): a page opened
from an email, or a mailbox provider's one-click POST, carries no session or
CSRF token; the signed token in the URL is the proof.
"""

from dataclasses import dataclass

from django.http import HttpResponse, HttpResponseNotAllowed
from django.utils.html import escape

from ..conf import flows_setting
from ..engine.consent import Proof
from ..models import Contact
from ..channels import texts, tokens
from .untrusted import clean_header


def render_page(language: str, title: str, body_html: str, *, status: int = 200):
    """A small, self-contained HTML page: no scripts, no external resources, not indexed."""
    html = (f'<!doctype html><html lang="{escape(language)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex">'
            f"<title>{escape(title)}</title></head>"
            f'<body style="font-family:sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;line-height:1.5">'
            f"<h1>{escape(title)}</h1>{body_html}</body></html>")
    response = HttpResponse(html, status=status)
    response["Content-Language"] = language
    response["Referrer-Policy"] = "no-referrer"  # the token in the URL never leaks to another site
    response["Cache-Control"] = "no-store"
    return response


@dataclass
class LinkPage:
    contact: Contact
    data: dict  # the token's payload
    language: str

    def say(self, key: str) -> str:
        """A text of the page, HTML-escaped, with the contact's masked address and the shop's name filled in."""
        return escape(texts.say(self.language, key, email=texts.masked(self.contact.email or ""),
                                shop=flows_setting("SHOP").get("name", "")))


def open_link(request, kind: str, token: str) -> LinkPage | HttpResponse:
    """The contact a link names, or the response to give instead (405, or a clear 400 for a bad token)."""
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    try:
        data = tokens.read(kind, token)
        contact = Contact.objects.get(pk=data["c"])
    except (tokens.BadToken, Contact.DoesNotExist):
        language = texts.language_for(request=request)
        return render_page(language, texts.say(language, f"{kind}.title"),
                          f"<p>{escape(texts.say(language, f'{kind}.bad'))}</p>", status=400)
    return LinkPage(contact, data, texts.language_for(contact, request))


def client_proof(request, source: str, **detail) -> Proof:
    """Who asked: the IP address and user agent of the request, kept with the consent change."""
    return Proof(source, ip=request.META.get("REMOTE_ADDR") or None,
                 user_agent=clean_header(request, "User-Agent"), detail=detail)
