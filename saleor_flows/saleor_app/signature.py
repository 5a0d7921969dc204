"""Saleor's webhook signature: a detached JWS (RS256, ``b64: false``) over the raw body, checked against the
instance's published keys.

Saleor signs each delivery with its private key and sends the JWS without
its payload in ``Saleor-Signature``: ``<base64url header>..<base64url
signature>``, the header saying ``{"alg": "RS256", "b64": false, "crit":
["b64"], "kid": …}``. With ``b64: false`` (RFC 7797) the signing input is the
encoded header, a dot and the body's bytes as they arrived, so we verify
before parsing anything. The keys come from ``<instance>/.well-known/jwks.json``
through the same cache the API uses for Saleor's tokens (``api.auth.key_set``):
fetched once, fetched again when a signature names a key id we do not know
(Saleor rotated its key), at most once per ``MIN_REFETCH_SECONDS``.
"""

import base64
import binascii
import json
from urllib.parse import urlsplit

import jwt

from ..api.auth import AuthenticationError, KeyRotationPending, key_set
from ..conf import flows_setting

MAX_SIGNATURE_CHARS = 4096


class BadSignature(Exception):
    """The delivery is not signed by the instance: final (Saleor must not retry it)."""


class KeysUnavailable(Exception):
    """The instance's keys could not be read now (network, or a key id too new to refetch yet): retryable."""


def jwks_url(api_url: str) -> str:
    """``APP_SALEOR_JWKS_URL``, else ``https://shop.example/graphql/`` → ``https://shop.example/.well-known/jwks.json``
    (Saleor serves it at its root)."""
    configured = flows_setting("APP_SALEOR_JWKS_URL")
    if configured:
        return configured
    parts = urlsplit(api_url)
    return f"{parts.scheme}://{parts.netloc}/.well-known/jwks.json"


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verify(body: bytes, signature: str, api_url: str) -> None:
    """Return when ``signature`` is the instance's detached JWS of ``body``; raise ``BadSignature`` or
    ``KeysUnavailable`` otherwise."""
    if not signature or len(signature) > MAX_SIGNATURE_CHARS:
        raise BadSignature("The Saleor-Signature header is missing or too long.")
    encoded_header, dot, rest = signature.partition(".")
    payload_part, dot2, encoded_signature = rest.partition(".")
    if not dot or not dot2 or payload_part:
        raise BadSignature("Saleor-Signature is not a detached JWS (header..signature).")
    try:
        header = json.loads(_b64url(encoded_header))
        raw_signature = _b64url(encoded_signature)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise BadSignature("Saleor-Signature cannot be decoded.") from exc
    if not isinstance(header, dict) or header.get("alg") != "RS256":
        raise BadSignature("Saleor-Signature must be RS256.")
    if header.get("b64") is not False or "b64" not in (header.get("crit") or []):
        raise BadSignature('Saleor-Signature must sign the raw body ("b64": false, "crit": ["b64"]).')
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise BadSignature("Saleor-Signature names an invalid key id.")
    try:
        key = key_set.key_at(jwks_url(api_url), kid)
    except KeyRotationPending as exc:
        raise KeysUnavailable(exc.message) from exc
    except AuthenticationError as exc:
        raise KeysUnavailable(exc.message) from exc
    if key is None:
        raise BadSignature(f"Saleor does not publish the key {str(kid)[:80]!r} this delivery was signed with.")
    signing_input = encoded_header.encode("ascii", "replace") + b"." + body
    if not jwt.algorithms.RSAAlgorithm(jwt.algorithms.RSAAlgorithm.SHA256).verify(signing_input, key, raw_signature):
        raise BadSignature("The signature does not match the body.")
