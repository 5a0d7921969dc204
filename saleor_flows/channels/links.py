"""Click and open tracking in our own emails: links stored at publish, rewritten at send.

Publishing (``store_links``) reads every ``<a href>`` of each email step's
compiled HTML, keeps the ones worth tracking as ``TrackedLink`` rows of the
version and notes their ids on the step. Sending (``track``) replaces each of
those hrefs with our redirect URL, whose token holds only signed ids (send id,
link id), and appends the open pixel. The redirect renders the stored link for
that message again and goes there, and nowhere else: ``allowed_target`` is the
rule both sides apply, so a link the redirect would refuse is never rewritten
(it stays a plain link in the email, untracked).

Which links are tracked: http(s) links whose placeholders use only the message's
own data (``contact``, ``event``, ``shop``, ``flow``, ``message``), so the
redirect can render them again. Not ``mailto:``/``tel:``, ``#`` anchors, the
unsubscribe and preferences links (a tracked unsubscribe would look like a
click, and scanners follow every link), nor links built from loop variables
(``{{ line.url }}`` inside ``{% for %}``), which only exist while the email renders.

Where a link may lead: if its scheme and host are written out
(``https://shop.example.com/p/{{ event.slug }}``), the rendered link must keep
exactly that scheme and host, so no contact data can move it elsewhere. If its
host is itself a placeholder (``{{ event.checkout_url }}``), the rendered
host must be the shop's, PUBLIC_URL's or one listed in
``TRACKING_REDIRECT_HOSTS``. Either way: only ``http``/``https``, no user info, no
backslashes, no control or white-space characters.
"""

import functools
import html as html_lib
import re
import uuid
from dataclasses import replace
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.core import signing
from django.utils.http import url_has_allowed_host_and_scheme
from jinja2 import Environment, TemplateSyntaxError, meta

from ..conf import flows_setting
from ..fields import TEMPLATE_ROOTS
from .tokens import public_url
from .templating import TemplateError, render_text

OPEN_SALT = "saleor-flows.tracking.open"
CLICK_SALT = "saleor-flows.tracking.click"
MAX_URL_CHARS = 4000

# An <a> tag's href, with quoted attribute values before it (they may hold '>').
_HREF = re.compile(r"""<a\b(?:[^>"']|"[^"]*"|'[^']*')*?\shref\s*=\s*("[^"]*"|'[^']*')""", re.I)
_STATIC_ORIGIN = re.compile(r"(https?)://([^/?#\\{}%\s@]+)(?=[/?#]|$)", re.I)
_ASCII_UNSAFE = re.compile(r"[^\x21-\x7e]|\\")  # white space, control characters, backslashes
_UNTRACKED = re.compile(r"^(?:#|mailto:|tel:|sms:)", re.I)
_UNTRACKED_NAMES = {"unsubscribe_url", "preferences_url"}
_UNTRACKED_PATHS = ("/unsubscribe/", "/preferences/")
_names_only = Environment()  # parses placeholders to read their names; never renders


# --- Publish time -----------------------------------------------------------------------------

def links_in(html: str) -> list[str]:
    """Every href of an ``<a>`` in a compiled email template, HTML entities decoded, in order."""
    return [html_lib.unescape(match.group(1)[1:-1]).strip() for match in _HREF.finditer(html or "")]


def trackable(url: str) -> bool:
    """Whether a link (a template) is one we rewrite: see the module's docstring."""
    if not url or len(url) > MAX_URL_CHARS or _UNTRACKED.match(url) or any(p in url for p in _UNTRACKED_PATHS):
        return False
    if "{{" in url or "{%" in url:
        try:
            names = meta.find_undeclared_variables(_names_only.parse(url))
        except (TemplateSyntaxError, RecursionError, ValueError):
            return False
        if names & _UNTRACKED_NAMES or not names <= TEMPLATE_ROOTS:
            return False
        return re.match(r"\{\{|\{%|https?://", url, re.I) is not None
    return _STATIC_ORIGIN.match(url) is not None


def store_links(version) -> None:
    """Store the tracked links of a just-published version and note their ids on its email steps."""
    from ..models import TrackedLink

    wanted = {}
    for step_id, step in version.definition["steps"].items():
        if step.get("type") != "send_email":
            continue
        compiled = step.get("compiled") or {}
        for variant in [compiled.get("default") or {}, *(compiled.get("translations") or {}).values()]:
            for url in links_in(variant.get("html") or ""):
                if trackable(url):
                    wanted.setdefault(step_id, []).append(url)
    if not wanted:
        return
    TrackedLink.objects.bulk_create(
        [TrackedLink(version=version, step_id=step_id, url=url) for step_id, urls in wanted.items()
         for url in dict.fromkeys(urls)], ignore_conflicts=True)
    for link in TrackedLink.objects.filter(version=version).only("id", "step_id", "url"):
        version.definition["steps"][link.step_id].setdefault("links", {})[link.url] = link.pk
    version.save(update_fields=["definition"])


# --- Where a link may lead ---------------------------------------------------------------------

def render_link(url: str, context: dict) -> str:
    """A stored link for one message: its placeholders rendered (in the templates' sandbox)."""
    if "{{" not in url and "{%" not in url:
        return url
    return render_text(url, context).strip()


def redirect_hosts() -> frozenset[str]:
    return url_hosts(flows_setting("SHOP").get("url") or "", flows_setting("PUBLIC_URL") or "",
                     tuple(flows_setting("TRACKING_REDIRECT_HOSTS") or ()))


@functools.lru_cache(maxsize=16)
def url_hosts(shop_url: str, public_url: str, extra: tuple) -> frozenset[str]:
    """The hosts of the shop's and PUBLIC_URL's URLs, with ``extra`` hosts (lower case)."""
    hosts = {str(host).lower() for host in extra}
    for base in (shop_url, public_url):
        try:
            host = urlsplit(base).hostname
        except ValueError:
            host = None
        if host:
            hosts.add(host)
    return frozenset(hosts)


def allowed_target(url: str, target: str) -> bool:
    """Whether ``target`` (``url`` rendered for a message) is a place our redirect may send someone."""
    parts = safe_url(target)
    if parts is None:
        return False
    static = _STATIC_ORIGIN.match(url)
    if static:
        return f"{parts.scheme}://{parts.netloc}".lower() == f"{static[1]}://{static[2]}".lower()
    return parts.hostname in redirect_hosts()


def safe_url(target) -> SplitResult | None:
    """``target`` split if it is a plain absolute http(s) URL (no user info, backslashes, white space or
    control characters), else None."""
    if not isinstance(target, str) or not target or len(target) > MAX_URL_CHARS:
        return None
    if _ASCII_UNSAFE.search(target) if target.isascii() else any(
            char == "\\" or char.isspace() or not char.isprintable() for char in target):
        return None
    try:
        parts = urlsplit(target)
        hostname, _ = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not hostname or "@" in parts.netloc:
        return None
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={parts.netloc}, require_https=False):
        return None
    return parts


@functools.lru_cache(maxsize=4096)
def _static_link_allowed(url: str) -> bool:
    """``allowed_target`` for a link without placeholders: it depends on the link alone."""
    return allowed_target(url, url)


# --- Tokens and our URLs -----------------------------------------------------------------------

# A token is "<send id>.<link id>:<signature>" (or "<send id>:<signature>" for the pixel):
# Django's Signer with our own salts, plain rather than ``signing.dumps`` because every
# marketing email signs one per link, and the ids inside are no one's personal data.
_CLICK_VALUE = re.compile(r"([0-9a-f]{32})\.([0-9]{1,18})")
_OPEN_VALUE = re.compile(r"[0-9a-f]{32}")


@functools.lru_cache(maxsize=8)
def _signer(salt: str, secret_key: str, fallbacks: tuple) -> signing.Signer:
    return signing.Signer(key=secret_key, fallback_keys=list(fallbacks), salt=salt)


def _signer_for(salt: str) -> signing.Signer:
    return _signer(salt, settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def click_token(send_id, link_id: int) -> str:
    return _signer_for(CLICK_SALT).sign(f"{uuid.UUID(str(send_id)).hex}.{int(link_id)}")


def read_click_token(token: str) -> tuple[uuid.UUID, int]:
    """(send id, link id) of a click token; ``signing.BadSignature`` or ``ValueError`` if it is not ours."""
    match = _CLICK_VALUE.fullmatch(_signer_for(CLICK_SALT).unsign(token))
    if match is None:
        raise ValueError("not a click token")
    return uuid.UUID(hex=match[1]), int(match[2])


def open_token(send_id) -> str:
    return _signer_for(OPEN_SALT).sign(uuid.UUID(str(send_id)).hex)


def read_open_token(token: str) -> uuid.UUID:
    value = _signer_for(OPEN_SALT).unsign(token)
    if not _OPEN_VALUE.fullmatch(value):
        raise ValueError("not an open token")
    return uuid.UUID(hex=value)


def click_url(send_id, link_id: int) -> str:
    return public_url(f"c/{click_token(send_id, link_id)}/")


def pixel_url(send_id) -> str:
    return public_url(f"o/{open_token(send_id)}.gif")


# --- Send time ----------------------------------------------------------------------------------

def applies(kind: str) -> bool:
    """Whether our pixel and redirects go into an email of this kind (docs/tracking.md)."""
    return bool(flows_setting("TRACKING")) and (
        kind == "marketing" or (kind == "transactional" and bool(flows_setting("TRACKING_TRANSACTIONAL"))))


def track(rendered, *, links: dict, context: dict, send_id):
    """The rendered email with its tracked links going through our redirect and the open pixel added."""
    targets = {}
    for url, link_id in (links or {}).items():
        if "{{" not in url and "{%" not in url:
            if _static_link_allowed(url):
                targets.setdefault(url, link_id)
            continue
        try:
            target = render_link(url, context)
        except TemplateError:
            continue  # it rendered in the email or the send would have failed; leave it as it is
        if allowed_target(url, target):
            targets.setdefault(target, link_id)

    redirects = {target: click_url(send_id, link_id) for target, link_id in targets.items()}

    def through_redirect(match):
        quoted = match.group(1)
        redirect = redirects.get(html_lib.unescape(quoted[1:-1]).strip())
        if redirect is None:
            return match.group(0)
        start = match.start(1) - match.start(0)
        return f'{match.group(0)[:start]}"{html_lib.escape(redirect)}"'

    html = _HREF.sub(through_redirect, rendered.html) if redirects else rendered.html
    text = rendered.text
    for target, redirect in redirects.items():
        text = text.replace(f"({target})", f"({redirect})")
    pixel = (f'<img src="{html_lib.escape(pixel_url(send_id))}" width="1" height="1" alt="" '
             'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">')
    at = html.rfind("</body>")  # compiled MJML writes it in lower case
    html = f"{html[:at]}{pixel}{html[at:]}" if at >= 0 else html + pixel
    return replace(rendered, html=html, text=text)
