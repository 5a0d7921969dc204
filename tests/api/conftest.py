"""The API under test: real RS256 tokens signed by keys made here, verified against a JWKS that a
real local HTTP server serves, and requests through Django's test client to the plugin's URL."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.core.cache import cache

from saleor_flows.api import auth

ENDPOINT = "/plugins/global/saleor.flows/graphql/"
PUBLIC_KEY = "pk_test_shop_1"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "api"


def new_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwk_of(private_key, kid: str) -> dict:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key()))
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256", "key_ops": ["verify"]}


class JwksServer:
    """Serves ``/.well-known/jwks.json`` like a Saleor API does, and counts the fetches."""

    def __init__(self):
        self.keys: list[dict] = []
        self.fetches = 0
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                server.fetches += 1
                if server.delay:
                    time.sleep(server.delay)
                if self.path != "/.well-known/jwks.json":
                    self.send_error(404)
                    return
                body = json.dumps({"keys": server.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"{self.origin}/.well-known/jwks.json"

    @property
    def issuer(self):
        return f"{self.origin}/graphql/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def store_key():
    return new_key()


@pytest.fixture(scope="session")
def jwks_server(store_key):
    server = JwksServer()
    server.keys = [jwk_of(store_key, "store-key-1")]
    yield server
    server.close()


@pytest.fixture
def api_settings(settings, jwks_server, store_key):
    """The API configured as outside Saleor: a JWKS URL (issuer derived from it) and a public key."""
    jwks_server.keys = [jwk_of(store_key, "store-key-1")]
    jwks_server.fetches = 0
    jwks_server.delay = 0.0
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "API_JWKS_URL": jwks_server.url, "PUBLIC_KEY": PUBLIC_KEY,
                             "API_ALLOWED_ORIGINS": ["https://dashboard.example.com"]}
    auth.key_set.reset()
    cache.clear()
    yield settings
    auth.key_set.reset()


class Tokens:
    """Saleor-shaped tokens: staff ``access`` tokens and App/extension ``thirdparty`` tokens."""

    def __init__(self, key, issuer):
        self.key, self.issuer = key, issuer

    def sign(self, claims: dict, *, key=None, kid="store-key-1", ttl=300, issuer=None) -> str:
        now = int(time.time())
        payload = {"iat": now, "exp": now + ttl, "owner": "saleor", "iss": issuer or self.issuer, **claims}
        return jwt.encode(payload, key or self.key, algorithm="RS256", headers={"kid": kid})

    def staff(self, *permissions, **kwargs) -> str:
        return self.sign({"type": "access", "email": "staff@example.com", "user_id": "VXNlcjo3", "is_staff": True,
                          "token": "k1", "permissions": list(permissions)}, **kwargs)

    def app(self, *permissions, **kwargs) -> str:
        claims = json.loads((FIXTURES / "extension-token-claims.json").read_text())
        claims.pop("_comment")
        claims.pop("app_extension")
        claims["permissions"] = list(permissions)
        return self.sign(claims, **kwargs)

    def extension(self, **overrides) -> str:
        claims = json.loads((FIXTURES / "extension-token-claims.json").read_text())
        claims.pop("_comment")
        return self.sign({**claims, **overrides})


@pytest.fixture
def tokens(api_settings, store_key, jwks_server):
    return Tokens(store_key, jwks_server.issuer)


class Api:
    def __init__(self, client):
        self.client = client

    def post(self, query, variables=None, *, token=None, headers=None, **extra):
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
        kwargs.update(headers or {})
        return self.client.post(ENDPOINT, data=json.dumps({"query": query, "variables": variables or {}}),
                                content_type="application/json", **kwargs, **extra)

    def __call__(self, query, variables=None, *, token=None, **extra) -> dict:
        """Run an operation that must succeed over HTTP and return its ``data``."""
        response = self.post(query, variables, token=token, **extra)
        body = response.json()
        assert response.status_code == 200 and not body.get("errors"), body
        return body["data"]


@pytest.fixture
def api(client, api_settings):
    return Api(client)
