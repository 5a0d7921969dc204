"""What every anonymous door does to outside input before anything is stored or mailed (docs/security.md).

- ``read_json``: one bounded JSON body parser (size and nesting depth) for
  ``graphql/`` and ``subscribe/``: a 10,000-level document is a 400, never a
  ``RecursionError``.
- ``clean_header``: a header kept as proof (User-Agent) without NUL or
  control characters, which PostgreSQL cannot store (``events.unstorable``
  is the check doors use to refuse such text with a 400).
- ``malformed_is_400``: a signed webhook whose body we cannot read or store
  is answered 400 and logged, never 500.
- ``plain_text`` / ``shop_link`` / ``storefront_payload``: what a storefront
  reports (``trackEvent``) may end up in a subject, a body, a button or an
  image of the shop's own mail, so links and images come from the shop's
  catalog when the host has one (``catalog.py``), or else only from the
  shop's own hosts; text is plain, one line and bounded.
"""

import functools
import itertools
import json
import logging
import operator
import re

from django.core.exceptions import ValidationError
from django.db import DataError
from django.http import HttpResponseBadRequest

from ..catalog import PRODUCT_FIELDS, catalog
from ..channels.links import shop_link

logger = logging.getLogger(__name__)

MAX_JSON_DEPTH = 100  # flow definitions nest conditions up to 32 levels deep (engine/conditions.py)
MAX_TEXT_CHARS = 200
MAX_PAYLOAD_DEPTH = 4
MAX_PAYLOAD_ITEMS = 50
MAX_KEY_CHARS = 64

# A string, or an unterminated one to the end: the closing quote is optional so that no match ever fails and
# backtracks (a required one makes '"\\"\\"\\"…' quadratic).
_JSON_STRINGS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"?')
_BRACKET_STEPS = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")  # minus one: +1 for an opener, -1 for a closer
_NOT_BRACKETS = bytes(sorted(set(range(256)) - set(b"[]{}")))
# Control and format characters (C0, DEL, C1, zero-width, bidi overrides, line/paragraph separators).
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")
_MARKUP = re.compile(r"<[^<>]*>|[<>]")
# Links and addresses a mail client would turn into links.
_URL_IN_TEXT = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.-]{1,15}://|www\.)\S*|\S+@\S+")
_LOOKS_LIKE_URL = re.compile(r"(?i)^\s*(?:[a-z][a-z0-9+.-]{1,15}://|//|(?:javascript|vbscript|data|blob|file|mailto|tel|sms):)")
_LINK_KEYS = ("thumbnail", "image", "images", "src", "href", "link", "logo", "icon", "avatar")


class BadJson(ValueError):
    """A body that is not JSON, or nests deeper than ``MAX_JSON_DEPTH``."""


def read_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads`` that refuses documents nested deeper than ``max_depth`` before parsing them.

    The nesting is measured on the raw bytes (brackets outside strings), so
    the parser never recurses past the bound, whatever the document.
    """
    if _depth(body) > max_depth:
        raise BadJson(f"The JSON document nests deeper than {max_depth} levels.")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadJson("The body is not valid JSON.") from exc


def _depth(body: bytes) -> int:
    """How deep brackets nest in a JSON text: strings removed, brackets as +1/-1 steps, the highest running sum
    (every step in C, so a megabyte of brackets takes milliseconds)."""
    steps = _JSON_STRINGS.sub(b"", body).translate(_BRACKET_STEPS, _NOT_BRACKETS)
    return max(itertools.accumulate(map(operator.sub, steps, itertools.repeat(1))), default=0)


# What reading or storing a body the sender got wrong raises: wrong types, impossible dates, NUL or
# surrogates (psycopg refuses them), a value too long for its column, an id that is not a UUID.
MALFORMED = (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError, ValidationError, DataError)


def malformed_is_400(what: str):
    """A view decorator for signed webhooks (SMS providers, ESPs): the signature says who sent it, not that
    the body is one we can read; a body we cannot read or store is answered 400 and logged, never 500.

    A failing database (``OperationalError``) is not caught: that is ours, and the sender should retry.
    """
    def decorate(view):
        @functools.wraps(view)
        def guarded(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except MALFORMED as exc:
                logger.warning("saleor-flows: refused a malformed %s webhook at %s (%s: %s)", what, request.path,
                               type(exc).__name__, str(exc)[:300], exc_info=True)
                return HttpResponseBadRequest(f"Malformed webhook: {type(exc).__name__}")
        return guarded
    return decorate


def clean_header(request, name: str, limit: int = 500) -> str:
    """A request header as plain, bounded text (a User-Agent kept as consent proof, say)."""
    return _INVISIBLE.sub("", request.headers.get(name, "") or "")[:limit]


def plain_text(value, limit: int = MAX_TEXT_CHARS) -> str:
    """Outside text fit for a subject or a body: no markup, no links, one line, at most ``limit`` characters."""
    text = _INVISIBLE.sub(" ", str(value))
    text = _MARKUP.sub(" ", text)
    text = _URL_IN_TEXT.sub(" ", text)
    return " ".join(text.split())[:limit].rstrip()




def _is_link_key(key: str) -> bool:
    key = key.lower()
    return key.endswith("url") or key.endswith("_urls") or key in _LINK_KEYS


def clean_value(key: str, value, depth: int = 0):
    """One payload value as it may be shown in mail; None drops it."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 10**15 else None
    if isinstance(value, float):
        return value if value == value and abs(value) < 1e15 else None
    if isinstance(value, str):
        if _is_link_key(key) or _LOOKS_LIKE_URL.match(value):
            return shop_link(value.strip())
        return plain_text(value)
    if depth >= MAX_PAYLOAD_DEPTH:
        return None
    if isinstance(value, dict):
        return clean_payload(value, depth + 1)
    if isinstance(value, list):
        cleaned = [clean_value(key, item, depth + 1) for item in value[:MAX_PAYLOAD_ITEMS]]
        return [item for item in cleaned if item is not None]
    return None


def clean_payload(payload: dict, depth: int = 0) -> dict:
    """Every key plain and short, every value through ``clean_value``; what cannot be shown is dropped."""
    clean = {}
    for key, value in list(payload.items())[:MAX_PAYLOAD_ITEMS]:
        name = plain_text(key, MAX_KEY_CHARS)
        if not name:
            continue
        value = clean_value(name, value, depth)
        if value is not None:
            clean[name] = value
    return clean


def storefront_payload(payload: dict, *, channel: str) -> dict:
    """A ``trackEvent`` payload fit for the shop's mail.

    With a catalog, what a product looks like (``PRODUCT_FIELDS``) is the
    catalog's answer for the ids given, and nothing when it knows none of
    them. Without one, the storefront's own values are kept, cleaned.
    """
    clean = clean_payload(payload)
    lookup = catalog()
    if lookup is None:
        return clean
    for name in PRODUCT_FIELDS:
        clean.pop(name, None)
    ids = {name: str(clean.get(name) or "")[:100] for name in ("product_id", "variant_id")}
    try:
        facts = lookup(**ids, channel=channel) if any(ids.values()) else None
    except Exception:  # the host's lookup failed: the event is still kept, showing no product
        logger.exception("saleor-flows: the catalog lookup failed for %s", ids)
        facts = None
    for name in PRODUCT_FIELDS:
        value = (facts or {}).get(name)
        if value not in (None, ""):
            clean[name] = value if isinstance(value, (int, float)) else str(value)
    return clean
