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
click, and scanners follow every link).

Links built from loop variables (``{{ item.product_url }}`` inside
``{% for item in recommendations(3) %}``, ``{{ line.product_url }}`` inside
``{% for line in event.lines %}``) only exist while the email renders, so the
redirect cannot render them again. Publishing stores them too and marks their
``<a>`` with ``data-flows-link="<id>"``; sending puts each rendered target, signed,
into that link's click token (``click_token(..., target=)``). The redirect goes
to the signed target only if it is on the shop's own hosts (``storefront_hosts``:
the shop's, PUBLIC_URL's and ``STOREFRONT_URL_HOSTS``, as for storefront links);
a target elsewhere is never rewritten (it stays a plain link, untracked).

Where a link may lead: if its scheme and host are written out
(``https://shop.example.com/p/{{ event.slug }}``), the rendered link must keep
exactly that scheme and host, so no contact data can move it elsewhere. If its
host is itself a placeholder (``{{ event.checkout_url }}``), the rendered
host must be the shop's, PUBLIC_URL's or one listed in
``TRACKING_REDIRECT_HOSTS``. Either way: only ``http``/``https``, no user info, no
backslashes, no control or white-space characters.
"""

import base64
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


def loop_link(url: str) -> bool:
    """Whether a link (a template) is built from a loop variable: tracked with its target signed in the token."""
    if not url or len(url) > MAX_URL_CHARS or not url.startswith("{{") or trackable(url):
        return False
    try:
        names = meta.find_undeclared_variables(_names_only.parse(url))
    except (TemplateSyntaxError, RecursionError, ValueError):
        return False
    return not names & _UNTRACKED_NAMES and not names <= TEMPLATE_ROOTS


def _variants(step: dict) -> list[dict]:
    compiled = step.get("compiled") or {}
    return [compiled.get("default") or {}, *(compiled.get("translations") or {}).values()]


def store_links(version) -> None:
    """Store the tracked links of a just-published version and note their ids on its email steps."""
    from ..models import TrackedLink

    wanted = {}
    for step_id, step in version.definition["steps"].items():
        if step.get("type") != "send_email":
            continue
        for variant in _variants(step):
            for url in links_in(variant.get("html") or ""):
                if trackable(url) or loop_link(url):
                    wanted.setdefault(step_id, []).append(url)
    if not wanted:
        return
    TrackedLink.objects.bulk_create(
        [TrackedLink(version=version, step_id=step_id, url=url) for step_id, urls in wanted.items()
         for url in dict.fromkeys(urls)], ignore_conflicts=True)
    loops = {}
    for link in TrackedLink.objects.filter(version=version).only("id", "step_id", "url"):
        if loop_link(link.url):
            loops.setdefault(link.step_id, {})[link.url] = link.pk
        else:
            version.definition["steps"][link.step_id].setdefault("links", {})[link.url] = link.pk
    for step_id, ids in loops.items():
        for variant in _variants(version.definition["steps"][step_id]):
            if variant.get("html"):
                variant["html"] = _mark_loop_links(variant["html"], ids)
    version.save(update_fields=["definition"])


def _mark_loop_links(html: str, ids: dict) -> str:
    """``<a href="{{ item.url }}">`` → ``<a data-flows-link="7" href="{{ item.url }}">`` for each loop link."""
    def mark(match):
        link_id = ids.get(html_lib.unescape(match.group(1)[1:-1]).strip())
        return match.group(0) if link_id is None else f'<a data-flows-link="{link_id}"{match.group(0)[2:]}'
    return _HREF.sub(mark, html)


# --- Where a link may lead ---------------------------------------------------------------------

def render_link(url: str, context: dict) -> str:
    """A stored link for one message: its placeholders rendered (in the templates' sandbox)."""
    if "{{" not in url and "{%" not in url:
        return url
    return render_text(url, context).strip()


def redirect_hosts() -> frozenset[str]:
    return url_hosts(flows_setting("SHOP").get("url") or "", flows_setting("PUBLIC_URL") or "",
                     tuple(flows_setting("TRACKING_REDIRECT_HOSTS") or ()))


def storefront_origin() -> str:
    """The storefront's ``scheme://host``: that of the product pages (PRODUCT_URL_TEMPLATE), else the shop's URL.

    Inside Saleor the shop's URL is the API's; the storefront is where product pages are."""
    static = _STATIC_ORIGIN.match(flows_setting("PRODUCT_URL_TEMPLATE") or "")
    return f"{static[1]}://{static[2]}" if static else (flows_setting("SHOP").get("url") or "").rstrip("/")


def storefront_hosts() -> frozenset[str]:
    """Where storefront links and images may point: the shop, the storefront's product pages, PUBLIC_URL and
    STOREFRONT_URL_HOSTS.

    The rule for links from a storefront (``web/untrusted.py``), for a loop
    link's signed target (a product page), and for the listing links."""
    return url_hosts(flows_setting("SHOP").get("url") or "", flows_setting("PUBLIC_URL") or "",
                     (*(flows_setting("STOREFRONT_URL_HOSTS") or ()), urlsplit(storefront_origin()).hostname or ""))


def shop_link(value) -> str | None:
    """``value`` if it is an http(s) URL on one of ``storefront_hosts()``, else None."""
    parts = safe_url(value) if isinstance(value, str) else None
    return value if parts is not None and parts.hostname in storefront_hosts() else None


def allowed_loop_target(target: str) -> bool:
    """Whether a loop link's rendered target (a product page) is one of the shop's own places."""
    return shop_link(target) is not None


@functools.lru_cache(maxsize=16)
def url_hosts(shop_url: str, public_url: str, extra: tuple) -> frozenset[str]:
    """The hosts of the shop's and PUBLIC_URL's URLs, with ``extra`` hosts (lower case)."""
    hosts = {str(host).lower() for host in extra if host}
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
# A loop link's token carries its target too: "<send id>.<link id>.<target, base64url>:<signature>".
_CLICK_VALUE = re.compile(r"([0-9a-f]{32})\.([0-9]{1,18})(?:\.([A-Za-z0-9_-]{1,%d}))?" % (MAX_URL_CHARS * 2))
_OPEN_VALUE = re.compile(r"[0-9a-f]{32}")


@functools.lru_cache(maxsize=8)
def _signer(salt: str, secret_key: str, fallbacks: tuple) -> signing.Signer:
    return signing.Signer(key=secret_key, fallback_keys=list(fallbacks), salt=salt)


def _signer_for(salt: str) -> signing.Signer:
    return _signer(salt, settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def click_token(send_id, link_id: int, target: str | None = None) -> str:
    value = f"{uuid.UUID(str(send_id)).hex}.{int(link_id)}"
    if target is not None:
        value += "." + base64.urlsafe_b64encode(target.encode()).decode().rstrip("=")
    return _signer_for(CLICK_SALT).sign(value)


def read_click_token(token: str) -> tuple[uuid.UUID, int, str | None]:
    """(send id, link id, signed target or None) of a click token; ``signing.BadSignature`` or ``ValueError``
    if it is not ours."""
    match = _CLICK_VALUE.fullmatch(_signer_for(CLICK_SALT).unsign(token))
    if match is None:
        raise ValueError("not a click token")
    target = None
    if match[3] is not None:
        target = base64.urlsafe_b64decode(match[3] + "=" * (-len(match[3]) % 4)).decode()
    return uuid.UUID(hex=match[1]), int(match[2]), target


def open_token(send_id) -> str:
    return _signer_for(OPEN_SALT).sign(uuid.UUID(str(send_id)).hex)


def read_open_token(token: str) -> uuid.UUID:
    value = _signer_for(OPEN_SALT).unsign(token)
    if not _OPEN_VALUE.fullmatch(value):
        raise ValueError("not an open token")
    return uuid.UUID(hex=value)


def click_url(send_id, link_id: int, target: str | None = None) -> str:
    return public_url(f"c/{click_token(send_id, link_id, target)}/")


def pixel_url(send_id) -> str:
    return public_url(f"o/{open_token(send_id)}.gif")


# --- Send time ----------------------------------------------------------------------------------

_LOOP_MARK = re.compile(r'<a data-flows-link="(\d{1,18})"')


def unmarked(rendered):
    """The rendered email without the loop-link marks publishing adds (for mail that is not tracked)."""
    html = _LOOP_MARK.sub("<a", rendered.html)
    return rendered if html == rendered.html else replace(rendered, html=html)


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
        target = html_lib.unescape(quoted[1:-1]).strip()
        marked = _LOOP_MARK.match(match.group(0))
        if marked:  # a loop link: its own target, signed into the token, if it stays on the shop's hosts
            redirect = None
            if allowed_loop_target(target):
                redirect = redirects.setdefault(target, click_url(send_id, int(marked[1]), target))
            unmarked = "<a" + match.group(0)[marked.end():]
            start = match.start(1) - match.start(0) - marked.end() + 2
        else:
            redirect, unmarked, start = redirects.get(target), match.group(0), match.start(1) - match.start(0)
        if redirect is None:
            return unmarked
        return f'{unmarked[:start]}"{html_lib.escape(redirect)}"'

    html = _HREF.sub(through_redirect, rendered.html)
    text = rendered.text
    for target, redirect in redirects.items():
        text = text.replace(f"({target})", f"({redirect})")
    pixel = (f'<img src="{html_lib.escape(pixel_url(send_id))}" width="1" height="1" alt="" '
             'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">')
    at = html.rfind("</body>")  # compiled MJML writes it in lower case
    html = f"{html[:at]}{pixel}{html[at:]}" if at >= 0 else html + pixel
    return replace(rendered, html=html, text=text)
