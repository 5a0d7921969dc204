"""A small stand-in for one Saleor instance, as an App sees it over HTTP (tests/test_app_mode_e2e.py).

It does what Saleor does at the App's edges, with real sockets and a real RSA
key of its own:

- serves its key set at ``/.well-known/jwks.json``;
- installs an App: GETs the manifest, POSTs ``{"auth_token"}`` to its
  ``tokenTargetUrl`` with ``Saleor-Domain`` and ``Saleor-Api-Url``, then
  answers ``{ app { id identifier } }`` on ``/graphql/`` for that token (what
  the App asks to prove the token is real);
- delivers webhooks to the targets the manifest named, signed as Saleor
  signs them: a detached JWS (RS256, ``{"b64": false, "crit": ["b64"]}``)
  over the raw body in ``Saleor-Signature``, with ``Saleor-Event``,
  ``Saleor-Domain``, ``Saleor-Api-Url`` (and their legacy ``X-Saleor-*`` twins);
- mints the tokens the Dashboard hands the App's pages (``thirdparty`` JWTs).

Every other GraphQL call is recorded and answered from ``answers`` (the App's
write-backs and look-ups), so a test can assert what the App told Saleor.
"""

import base64
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

from .saleor_app_helpers import jwk_of, new_key, sign

SCHEMA_VERSION = "3.24"
APP_GLOBAL_ID = base64.b64encode(b"App:7").decode()


class Answer:
    """What an HTTP call got back: status, parsed JSON body (or None) and the raw text."""

    def __init__(self, status: int, text: str):
        self.status, self.text = status, text
        try:
            self.json = json.loads(text)
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.status} {self.text[:300]}>"


def http(method: str, url: str, *, body: bytes | None = None, headers: dict | None = None, timeout=15) -> Answer:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.read().decode())


class StandInSaleor:
    def __init__(self):
        self.key = new_key()
        self.kid = secrets.token_urlsafe(24)
        self.app_token = secrets.token_urlsafe(30)  # Saleor's App tokens are 30 random characters
        self.app_identifier = ""  # the manifest's id, once installed
        self.webhooks: dict[str, dict] = {}  # event (ORDER_CREATED) -> the manifest's webhook entry
        self.graphql_calls: list[dict] = []  # every GraphQL request except the token check: {"query", "variables"}
        self.answers: list[dict] = []  # queued answers to those calls (else {"data": {}})
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, payload: dict):
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path == "/.well-known/jwks.json":
                    self._send(200, standin.jwks())
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != "/graphql/":
                    self._send(404, {"error": "not found"})
                    return
                self._send(200, standin.graphql(self.headers.get("Authorization", ""), json.loads(body)))

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.domain = f"127.0.0.1:{self.server.server_port}"
        self.api_url = f"http://{self.domain}/graphql/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    # --- what Saleor serves --------------------------------------------------------------

    def jwks(self) -> dict:
        return {"keys": [jwk_of(self.key, self.kid)]}

    def graphql(self, authorization: str, request: dict) -> dict:
        query = request.get("query") or ""
        token = authorization.removeprefix("Bearer ").strip()
        if token != self.app_token or not self.app_identifier:
            return {"data": None, "errors": [{"message": "Invalid token.",
                                              "extensions": {"exception": {"code": "InvalidTokenError"}}}]}
        if query.replace(" ", "") == "{app{ididentifier}}":
            return {"data": {"app": {"id": APP_GLOBAL_ID, "identifier": self.app_identifier}}}
        self.graphql_calls.append({"query": query, "variables": request.get("variables") or {}})
        return self.answers.pop(0) if self.answers else {"data": {}}

    # --- what Saleor does --------------------------------------------------------------

    def install(self, manifest_url: str) -> Answer:
        """Saleor's appInstall: fetch the manifest, hand the App its token at ``tokenTargetUrl``."""
        fetched = http("GET", manifest_url, headers={"Saleor-Schema-Version": SCHEMA_VERSION})
        assert fetched.status == 200, fetched
        manifest = fetched.json
        self.app_identifier = manifest["id"]
        self.webhooks = {event: hook for hook in manifest.get("webhooks", []) for event in hook.get("asyncEvents", [])}
        return http("POST", manifest["tokenTargetUrl"], body=json.dumps({"auth_token": self.app_token}).encode(),
                    headers={"Content-Type": "application/json", "Saleor-Domain": self.domain,
                             "X-Saleor-Domain": self.domain, "Saleor-Api-Url": self.api_url,
                             "Saleor-Schema-Version": SCHEMA_VERSION})

    def sign(self, body: bytes) -> str:
        """``Saleor-Signature``: the detached JWS of ``body`` with the instance's key."""
        return sign(body, self.key, self.kid)

    def body(self, event: str, subject: dict, *, issued_at: str | None = None) -> bytes:
        """A subscription payload as Saleor serializes it: ``__typename``, ``issuedAt``, ``version``, the objects."""
        typename = "".join(part.capitalize() for part in event.split("_"))
        stamp = issued_at or time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000+00:00"
        return json.dumps({"__typename": typename, "issuedAt": stamp, "version": "3.24.0", **subject}).encode()

    def deliver(self, event: str, body: bytes, *, signature: str | None = None) -> Answer:
        """POST ``body`` to the target the App's manifest gave for ``event``, signed (unless told otherwise)."""
        target = self.webhooks[event]["targetUrl"]
        name = event.lower()
        return http("POST", target, body=body, headers={
            "Content-Type": "application/json", "User-Agent": f"Saleor/{SCHEMA_VERSION}",
            "Saleor-Event": name, "X-Saleor-Event": name, "Saleor-Domain": self.domain, "X-Saleor-Domain": self.domain,
            "Saleor-Signature": self.sign(body) if signature is None else signature,
            "X-Saleor-Signature": self.sign(body) if signature is None else signature, "Saleor-Api-Url": self.api_url})

    def dashboard_token(self, permissions, *, email="staff@shop.example") -> str:
        """The token the Dashboard gives the App's pages: ``thirdparty``, signed with the instance's key."""
        now = int(time.time())
        claims = {"iat": now, "exp": now + 300, "iss": self.api_url, "type": "thirdparty", "token": "x",
                  "email": email, "user_id": base64.b64encode(b"User:1").decode(), "app": APP_GLOBAL_ID,
                  "permissions": list(permissions), "user_permissions": list(permissions), "is_staff": True}
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
