"""The App's token target URL: Saleor POSTs ``{"auth_token"}`` here when a shop admin installs the App.

Saleor sends its API URL and domain in the ``Saleor-Api-Url`` and
``Saleor-Domain`` headers. Headers are easy to forge, so they only pick the
refusal message; what counts is the token itself: it must belong to *our*
App (manifest id) in *the* Saleor this plugin serves (inside Saleor: its own
API URL and its ``AppToken`` table; elsewhere: ``APP_SALEOR_API_URL`` or the
API's token issuer, asked for ``app { id identifier }`` with the token). We
never call the URL a request names, only the one we are configured with.

The token is stored encrypted (Fernet, key derived from ``SECRET_KEY``;
``SECRET_KEY_FALLBACKS`` still decrypt after a key rotation). Registering
again from the same Saleor replaces it; another Saleor is refused until the
old registration is removed (``manage.py flows_app_unregister``). Errors
answer ``{"success": false, "error": {"code", "message"}}`` with a 4xx:
Saleor shows ``error.message`` to the admin who installs the App.
"""

import base64
import json
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.http import JsonResponse

from .. import clock
from ..api.auth import _inside_saleor, expected_issuer
from ..conf import flows_setting
from ..models import SaleorAppInstallation
from ..web.limits import client_address, over_limit
from .manifest import APP_ID

MAX_BODY_BYTES = 4096
MAX_TOKEN_LENGTH = 512
VERIFY_TIMEOUT_SECONDS = 5
MAX_VERIFY_RESPONSE_BYTES = 65536
ATTEMPTS_PER_MINUTE = 10


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def register(request):
    try:
        app_id, api_url, domain, token = _verified(request)
        _store(api_url, domain, app_id, token)
    except Refused as exc:
        response = JsonResponse({"success": False, "error": {"code": exc.code, "message": exc.message}},
                                status=exc.status)
        if exc.status == 405:
            response["Allow"] = "POST"
        return response
    return JsonResponse({"success": True})


def _verified(request) -> tuple[str, str, str, str]:
    if request.method != "POST":
        raise Refused(405, "METHOD_NOT_ALLOWED", "Saleor registers the App with a POST.")
    if over_limit("app-register", client_address(request), ATTEMPTS_PER_MINUTE, window_seconds=60):
        raise Refused(429, "RATE_LIMITED", "Too many registration attempts; try again in a minute.")
    if len(request.body) > MAX_BODY_BYTES:
        raise Refused(413, "REQUEST_TOO_LARGE", "The request is too large.")
    try:
        body = json.loads(request.body)
    except ValueError:
        body = None
    token = body.get("auth_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not 0 < len(token) <= MAX_TOKEN_LENGTH or not token.isprintable() \
            or " " in token:
        raise Refused(400, "MISSING_AUTH_TOKEN", 'Expected {"auth_token": "<the App token>"}.')
    given_url = request.META.get("HTTP_SALEOR_API_URL", "")
    given_domain = request.META.get("HTTP_SALEOR_DOMAIN") or request.META.get("HTTP_X_SALEOR_DOMAIN", "")
    expected = own_saleor_api_url()
    if not expected:
        raise Refused(403, "NOT_CONFIGURED", "Flows does not know which Saleor it serves: set "
                                             "APP_SALEOR_API_URL (or API_TOKEN_ISSUER) to the store's /graphql/ URL.")
    if not given_url:
        raise Refused(400, "MISSING_SALEOR_API_URL", "The Saleor-Api-Url header is missing.")
    if not same_url(given_url, expected) or (given_domain and given_domain.lower() != urlsplit(
            expected).netloc.lower()):
        raise Refused(403, "FOREIGN_SALEOR", f"Flows serves the Saleor at {expected}; it cannot be installed "
                                             f"as an App in the Saleor at {given_url[:200]}.")
    app_id = verify_token(expected, token)
    if app_id is None:
        raise Refused(401, "INVALID_TOKEN", f"The Saleor at {expected} does not know this token as the token of "
                                            f"the App {APP_ID!r}.")
    return app_id, expected, given_domain or urlsplit(expected).netloc, token


def same_url(a: str, b: str) -> bool:
    """Scheme, host and path alike (case-insensitive host, trailing slash ignored)."""
    one, two = urlsplit(a.strip()), urlsplit(b.strip())
    return (one.scheme.lower(), one.netloc.lower(), one.path.rstrip("/")) == (
        two.scheme.lower(), two.netloc.lower(), two.path.rstrip("/"))


def _store(api_url: str, domain: str, app_id: str, token: str):
    now = clock.now()
    with transaction.atomic():
        existing = SaleorAppInstallation.objects.select_for_update().order_by("pk").first()
        if existing and not same_url(existing.saleor_api_url, api_url):
            raise Refused(409, "ALREADY_INSTALLED",
                          f"Flows is already installed as an App in the Saleor at {existing.saleor_api_url}. "
                          "Remove that registration first (manage.py flows_app_unregister).")
        row = existing or SaleorAppInstallation(registered_at=now)
        row.saleor_api_url, row.saleor_domain, row.app_id = api_url, domain[:255], app_id[:100]
        row.token_encrypted, row.updated_at = encrypt(token), now
        # Installed again after an uninstall (App mode): sending resumes where it stopped.
        row.removed_at, row.removed_reason = None, ""
        row.save()


# --- which Saleor, and is the token its token of our App --------------------------------


def own_saleor_api_url() -> str:
    if _inside_saleor():  # pragma: no cover - covered by tests/saleor
        from ..saleor_plugin.app import own_api_url

        return own_api_url()
    return flows_setting("APP_SALEOR_API_URL") or expected_issuer()


def verify_token(api_url: str, token: str) -> str | None:
    """The App's global id when ``token`` is a token of our App in that Saleor, else None."""
    if _inside_saleor():  # pragma: no cover - covered by tests/saleor
        from ..saleor_plugin.app import app_of_token

        found = app_of_token(token)
    else:
        found = _ask_saleor(api_url, token)
    if not found or found[1] != APP_ID:
        return None
    return found[0]


def _ask_saleor(api_url: str, token: str) -> tuple[str, str] | None:
    """``app { id identifier }`` from the configured Saleor, with the token: (id, identifier) or None."""
    request = urllib.request.Request(api_url, data=json.dumps({"query": "{ app { id identifier } }"}).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=VERIFY_TIMEOUT_SECONDS) as response:
            answer = json.loads(response.read(MAX_VERIFY_RESPONSE_BYTES))
    except (OSError, ValueError):
        return None
    app = ((answer or {}).get("data") or {}).get("app") if isinstance(answer, dict) else None
    if not isinstance(app, dict) or not isinstance(app.get("id"), str):
        return None
    return app["id"], str(app.get("identifier") or "")


# --- the token at rest -------------------------------------------------------------------


def _fernet(secret: str):
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=SHA256(), length=32, salt=b"saleor-flows", info=b"dashboard app token").derive(
        secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def _keys():
    from cryptography.fernet import MultiFernet

    return MultiFernet([_fernet(settings.SECRET_KEY)] + [_fernet(old) for old in getattr(
        settings, "SECRET_KEY_FALLBACKS", [])])


def encrypt(token: str) -> str:
    return _keys().encrypt(token.encode()).decode()


def decrypt(stored: str) -> str:
    return _keys().decrypt(stored.encode()).decode()


def app_token() -> str | None:
    """The App token Saleor gave us at registration (None before)."""
    row = SaleorAppInstallation.objects.order_by("pk").first()
    return decrypt(row.token_encrypted) if row else None
