"""Who is calling the API: a bearer token becomes a ``Principal`` with Saleor permission names.

Saleor signs two kinds of tokens the API accepts, both RS256 JWTs with a
``kid`` header and ``iss`` = the store's ``/graphql/`` URL:

- ``type: "access"``: a staff member's token (dashboard login, ``tokenCreate``).
  Saleor itself does not put permissions in it (it reads them from its
  database); tokens from an OpenID Connect login do carry ``permissions``.
- ``type: "thirdparty"``: an App's or a dashboard extension's token, minted by
  Saleor for a logged-in staff member. Its ``permissions`` are already the
  intersection of what the App (or extension) was granted and what the user
  has, and Saleor treats exactly those as the caller's permissions.

Inside Saleor the plugin verifies with Saleor's own helpers (its key, its
user table, so a staff token's permissions come from the database and a
revoked token stops working). Anywhere else tokens are verified against a
key set: ``API_JWKS`` (a JWKS dict) or ``API_JWKS_URL`` (Saleor's
``/.well-known/jwks.json``, fetched with a timeout, cached, fetched again
when a token names a key id we do not know, since Saleor may rotate keys).
There the permissions are the token's ``permissions`` claim, intersected
with ``user_permissions`` when the token has that claim too (a no-op for
genuine Saleor tokens, a guard against a token that claims more than its
user holds); an ``access`` token without a ``permissions`` claim has none.

No ``Authorization`` header means anonymous. A header that is present but
not a valid token is an error, never a silent fall back to anonymous.
"""

import json
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import jwt
from django.apps import apps

from ..conf import flows_setting

ACCESS = "access"
THIRDPARTY = "thirdparty"
ALGORITHMS = ["RS256"]

# Permission names as Saleor's PermissionEnum spells them.
MANAGE_PLUGINS = "MANAGE_PLUGINS"
MANAGE_USERS = "MANAGE_USERS"


class AuthenticationError(Exception):
    """A token that cannot be trusted. ``code`` follows the names Saleor's API reports."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Principal:
    kind: str  # "anonymous", "staff" or "app"
    permissions: frozenset = field(default_factory=frozenset)
    email: str = ""
    user_id: str = ""  # Saleor's global id ("VXNlcjoyMQ==")
    app_id: str = ""
    app_extension_id: str = ""

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    def has_all(self, required) -> bool:
        return not self.is_anonymous and set(required) <= self.permissions


ANONYMOUS = Principal(kind="anonymous")


def bearer_token(request) -> str | None:
    """The token of ``Authorization: Bearer …``, None when there is no such header."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("InvalidTokenError", "Use 'Authorization: Bearer <token>'.")
    return token.strip()


def authenticate(request) -> Principal:
    token = bearer_token(request)
    if token is None:
        return ANONYMOUS
    if _inside_saleor():
        return _authenticate_in_saleor(token, request)
    claims = decode(token)
    return principal_from_claims(claims)


# --- outside Saleor: a key set -------------------------------------------------------


class KeyRotationPending(AuthenticationError):
    """A key id the cached key set lacks, and the set was fetched too recently to fetch it again now."""


class KeySet:
    """Public keys by ``kid`` from a JWKS dict or URL (cached per URL, refetched on an unknown kid).

    Shared by everything that verifies Saleor's signatures: the API's tokens
    (``key``, from ``API_JWKS``/``API_JWKS_URL``) and the App edge's signed
    webhooks (``key_at``, from the instance's ``/.well-known/jwks.json``).
    """

    # At most one refetch for an unknown kid per this many seconds: a stream of
    # forged kids must not turn into a stream of requests to Saleor.
    MIN_REFETCH_SECONDS = 10

    def __init__(self):
        self._lock = threading.Lock()
        self._cached: dict = {}  # url -> (keys by kid, monotonic time fetched)
        self.fetches = 0  # how many times a key set was fetched (tests count the requests)

    def reset(self):
        with self._lock:
            self._cached = {}

    def backdate(self, seconds: float):
        """Make every cached set ``seconds`` older (tests: the refetch guard's window has passed)."""
        with self._lock:
            self._cached = {url: (keys, fetched_at - seconds) for url, (keys, fetched_at) in self._cached.items()}

    def key(self, kid):
        static, url = flows_setting("API_JWKS"), flows_setting("API_JWKS_URL")
        if static:
            keys = _parse_jwks(static)
            return keys.get(kid) if kid else _only(keys)
        if not url:
            raise AuthenticationError(
                "JWKSNotConfigured", "The API cannot verify tokens: set API_JWKS_URL (or API_JWKS).")
        try:
            return self.key_at(url, kid)
        except KeyRotationPending:
            return None

    def key_at(self, url: str, kid):
        """The key ``kid`` names in the key set at ``url``: None when Saleor does not publish it.

        Raises ``AuthenticationError("JWKSUnavailable")`` when the set cannot
        be fetched, and ``KeyRotationPending`` when ``kid`` is unknown but the
        set was fetched less than ``MIN_REFETCH_SECONDS`` ago (a caller that
        can be retried later, like a webhook, should then ask to be retried).
        """
        with self._lock:
            now = time.monotonic()
            keys, fetched_at = self._cached.get(url, ({}, None))
            stale = fetched_at is None or now - fetched_at > flows_setting("API_JWKS_CACHE_SECONDS")
            unknown = (kid not in keys) if kid else not keys
            if stale or unknown:
                if not stale and now - fetched_at <= self.MIN_REFETCH_SECONDS:
                    raise KeyRotationPending("UnknownKeyId", f"Key {str(kid)[:80]!r} is not (yet) published "
                                                             f"at {url}; try again shortly.")
                keys = _parse_jwks(_fetch_jwks(url))
                self.fetches += 1
                self._cached[url] = (keys, now)
            return keys.get(kid) if kid else _only(keys)


def _only(keys: dict):
    return next(iter(keys.values())) if len(keys) == 1 else None


def _fetch_jwks(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=flows_setting("API_JWKS_TIMEOUT_SECONDS")) as response:
            return json.loads(response.read())
    except (OSError, ValueError) as exc:
        raise AuthenticationError("JWKSUnavailable", f"Could not fetch the key set from {url}: {exc}") from exc


def _parse_jwks(jwks) -> dict:
    if isinstance(jwks, str):
        jwks = json.loads(jwks)
    keys = {}
    for entry in (jwks or {}).get("keys", []):
        if entry.get("kty") == "RSA" and entry.get("use", "sig") == "sig":
            keys[entry.get("kid")] = jwt.algorithms.RSAAlgorithm.from_jwk(entry)
    return keys


key_set = KeySet()


def expected_issuer() -> str:
    """The store's ``/graphql/`` URL: ``API_TOKEN_ISSUER``, else derived from the JWKS URL's origin."""
    issuer = flows_setting("API_TOKEN_ISSUER")
    if issuer:
        return issuer
    url = flows_setting("API_JWKS_URL") or ""
    marker = "/.well-known/jwks.json"
    return url[: -len(marker)] + "/graphql/" if url.endswith(marker) else ""


def decode(token: str) -> dict:
    """Verified claims of a Saleor token (signature, expiry, issuer, type), or AuthenticationError."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise AuthenticationError("DecodeError", f"The token is not a JWT: {exc}") from exc
    if header.get("alg") not in ALGORITHMS:
        raise AuthenticationError("InvalidTokenError", f"Tokens must be signed with RS256, not {header.get('alg')!r}.")
    key = key_set.key(header.get("kid"))
    if key is None:
        raise AuthenticationError("InvalidTokenError", "The token was signed with a key this store does not publish.")
    issuer = expected_issuer()
    if not issuer:
        raise AuthenticationError("JWKSNotConfigured", "Set API_TOKEN_ISSUER to the store's /graphql/ URL.")
    try:
        claims = jwt.decode(token, key, algorithms=ALGORITHMS, issuer=issuer,
                            options={"require": ["exp", "iss"], "verify_aud": False})
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("ExpiredSignatureError", "Signature has expired.") from exc
    except jwt.InvalidIssuerError as exc:
        raise AuthenticationError("InvalidTokenError", f"The token was not issued by {issuer}.") from exc
    except jwt.InvalidSignatureError as exc:
        raise AuthenticationError("InvalidSignatureError", "Signature verification failed.") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationError("InvalidTokenError", f"Invalid token: {exc}") from exc
    if claims.get("type") not in (ACCESS, THIRDPARTY):
        raise AuthenticationError("InvalidTokenError", "Only access and App tokens are accepted.")
    return claims


def _names(value) -> set:
    return {str(name) for name in value} if isinstance(value, list) else set()


def principal_from_claims(claims: dict) -> Principal:
    permissions = _names(claims.get("permissions"))
    if "user_permissions" in claims:
        permissions &= _names(claims["user_permissions"])
    return Principal(
        kind="app" if claims.get("type") == THIRDPARTY else "staff",
        permissions=frozenset(permissions),
        email=str(claims.get("email") or ""),
        user_id=str(claims.get("user_id") or ""),
        app_id=str(claims.get("app") or ""),
        app_extension_id=str(claims.get("app_extension") or ""),
    )


# --- inside Saleor: its own helpers --------------------------------------------------


def _inside_saleor() -> bool:
    return apps.is_installed("saleor.core") and apps.is_installed("saleor.account")


def _authenticate_in_saleor(token: str, request) -> Principal:  # pragma: no cover - covered by tests/saleor
    """Saleor's key (whatever its JWT manager uses) and its user table: a revoked token stops working."""
    from saleor.core.jwt import get_user_from_access_payload, jwt_decode
    from saleor.permission.enums import get_permission_names

    try:
        claims = jwt_decode(token)
        user = get_user_from_access_payload(claims, request)
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("ExpiredSignatureError", "Signature has expired.") from exc
    except jwt.PyJWTError as exc:
        raise AuthenticationError("InvalidTokenError", f"Invalid token: {exc}") from exc
    if user is None or not user.is_active:
        raise AuthenticationError("InvalidTokenError", "The token's user does not exist or is inactive.")
    names = frozenset(get_permission_names(user.effective_permissions)) if user.is_staff else frozenset()
    principal = principal_from_claims(claims)
    return Principal(kind=principal.kind, permissions=names, email=user.email, user_id=principal.user_id,
                     app_id=principal.app_id, app_extension_id=principal.app_extension_id)
