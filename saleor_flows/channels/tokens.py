"""Signed tokens for the links in our emails (and the public URLs they live under): unsubscribe, preference centre, double opt-in confirmation.

Each link type signs with its own salt, so a token made for one page is
refused by every other (an unsubscribe token cannot confirm an opt-in). The
payload is only the contact's id (and for unsubscribe links the send id):
Django signing encodes it, it does not encrypt it, so it must never hold an
email address or a name. Unsubscribe and preference links never expire (an
old newsletter must still let its reader leave); confirmation links expire
after ``OPT_IN_CONFIRM_DAYS``.
"""

from django.core import signing

from ..conf import flows_setting

PLUGIN_PATH = "/plugins/global/saleor.flows/"


def public_url(subpath: str) -> str:
    """The absolute URL of one of our endpoints (served under the plugin's URL), as links in emails must be."""
    base = (flows_setting("PUBLIC_URL") or flows_setting("SHOP").get("url") or "").rstrip("/")
    return f"{base}{PLUGIN_PATH}{subpath}"

SALTS = {
    "unsubscribe": "saleor-flows.unsubscribe",  # unchanged since the first release: old links keep working
    "preferences": "saleor-flows.preferences",
    "confirm": "saleor-flows.confirm",
}


class BadToken(ValueError):
    """The token was altered, made for another link type, expired, or names no contact."""


def make(kind: str, contact_id: int | None, **extra) -> str:
    """``contact_id`` None (a preview or test send for sample data) makes a valid-looking link that names no one."""
    return signing.dumps({"c": int(contact_id or 0), **extra}, salt=SALTS[kind], compress=True)


def read(kind: str, token: str) -> dict:
    """The token's payload (``{"c": contact id, ...}``), or BadToken."""
    max_age = flows_setting("OPT_IN_CONFIRM_DAYS") * 86400 if kind == "confirm" else None
    try:
        data = signing.loads(token, salt=SALTS[kind], max_age=max_age)
    except signing.SignatureExpired as exc:
        raise BadToken("expired") from exc
    except (signing.BadSignature, ValueError, TypeError) as exc:  # a bad base64/zlib/JSON body is tampering too
        raise BadToken("bad signature") from exc
    if not isinstance(data, dict) or type(data.get("c")) is not int:
        raise BadToken("no contact")
    return data


def url(kind: str, contact_id: int, **extra) -> str:
    return public_url(f"{kind}/{make(kind, contact_id, **extra)}/")  # each kind is served at its own name
