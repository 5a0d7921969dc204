"""A stand-in for a Saleor instance in App mode: a real local HTTP server that serves a JWKS and answers GraphQL,
and deliveries signed like Saleor signs them (detached JWS, RS256, ``b64: false``, over the raw body)."""

import base64
import json

import jwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fake_http import FakeProvider

JWKS_PATH = "/.well-known/jwks.json"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_of(private_key, kid: str) -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256", "key_ops": ["verify"]}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(body: bytes, key, kid: str) -> str:
    """``Saleor-Signature``: ``<header>..<signature>`` over ``<header>.<raw body>`` (RFC 7797)."""
    header = _b64url(json.dumps({"alg": "RS256", "b64": False, "crit": ["b64"], "kid": kid, "typ": "JWT"},
                                separators=(",", ":")).encode())
    signature = key.sign(header.encode() + b"." + body, padding.PKCS1v15(), hashes.SHA256())
    return f"{header}..{_b64url(signature)}"


class SaleorStandIn(FakeProvider):
    """Serves ``/.well-known/jwks.json`` (counted) and answers POSTs to ``/graphql/`` from a queue."""

    def __init__(self):
        super().__init__()
        self.domain = self.url.removeprefix("http://")
        self.api_url = f"{self.url}/graphql/"
        self.key = new_key()
        self.kid = "saleor-key-1"
        self.publish(jwk_of(self.key, self.kid))

    def publish(self, *jwks):
        self.files[JWKS_PATH] = json.dumps({"keys": list(jwks)}).encode()

    @property
    def jwks_fetches(self) -> int:
        return sum(1 for seen in self.requests if seen.method == "GET" and seen.path == JWKS_PATH)

    @property
    def graphql_requests(self):
        return [seen for seen in self.requests if seen.method == "POST"]

    def headers(self, event: str, body: bytes, *, key=None, kid=None, api_url=None, domain=None) -> dict:
        """The headers Saleor sends with a delivery (as captured from Saleor 3.24), signed with our key."""
        signature = sign(body, key or self.key, kid or self.kid)
        return {"Saleor-Event": event.lower(), "X-Saleor-Event": event.lower(),
                "Saleor-Domain": domain or self.domain, "X-Saleor-Domain": domain or self.domain,
                "Saleor-Signature": signature, "X-Saleor-Signature": signature,
                "Saleor-Api-Url": api_url or self.api_url, "User-Agent": "Saleor/3.24"}
