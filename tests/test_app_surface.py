"""The Saleor App the plugin serves: its manifest, the register handshake, the built bundle.

The handshake follows what Saleor 3.24 really sends (tests/fixtures/saleor_app/); the Saleor that the
register endpoint asks about the token is a real local HTTP server answering ``app { id identifier }``.
Inside a real Saleor the same is proven by tests/saleor/test_app_install.py.
"""

import json
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import RequestFactory

from saleor_flows import urls
from saleor_flows.dashboard import bundle, register as registration
from saleor_flows.dashboard.manifest import APP_ID
from saleor_flows.models import SaleorAppInstallation
from tests.fake_http import FakeProvider

BASE = "/plugins/global/saleor.flows/"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "saleor_app"
HANDSHAKE = json.loads((FIXTURES / "install-handshake.json").read_text())


class FakeSaleor(FakeProvider):
    """The Saleor API the register endpoint asks ``{ app { id identifier } }`` (a real local HTTP server)."""

    def __init__(self):
        super().__init__()
        self.domain = self.url.removeprefix("http://")
        self.api_url = f"{self.url}/graphql/"

    def knows(self, app_id, identifier=APP_ID):
        """The next token asked about is this App's token (``app: null`` for an unknown one)."""
        self.answer(200, {"data": {"app": {"id": app_id, "identifier": identifier} if app_id else None}})


@pytest.fixture
def saleor(settings):
    server = FakeSaleor()
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "APP_SALEOR_API_URL": server.api_url}
    cache.clear()
    yield server
    server.close()


def register(client, saleor, token, *, api_url=None, domain=None, body=None):
    headers = {name: value.format(domain=domain or saleor.domain, api_url=api_url or saleor.api_url)
               for name, value in HANDSHAKE["register_request_headers"].items() if name != "Content-Type"}
    data = body if body is not None else json.dumps({"auth_token": token})
    return client.post(BASE + "app/register/", data=data, content_type="application/json", headers=headers)


# --- manifest ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def hosts(settings):
    settings.ALLOWED_HOSTS = ["testserver", "api.shop.example", "10.0.0.5"]


def test_manifest_in_saleors_shape_with_absolute_urls_built_from_the_request(client):
    response = client.get(BASE + "app/manifest/", headers=HANDSHAKE["manifest_request_headers"],
                          HTTP_HOST="api.shop.example", secure=True)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    manifest = response.json()
    app = "https://api.shop.example/plugins/global/saleor.flows/app/"
    assert {k: manifest[k] for k in ("id", "name", "permissions", "appUrl", "tokenTargetUrl")} == {
        "id": APP_ID, "name": "Flows", "permissions": ["MANAGE_PLUGINS", "MANAGE_USERS"], "appUrl": app,
        "tokenTargetUrl": app + "register/"}
    assert manifest["version"] == "0.1.0" and manifest["about"] and manifest["requiredSaleorVersion"] == ">=3.20"
    assert [(e["mount"], e["target"], e["url"], e["permissions"]) for e in manifest["extensions"]] == [
        ("NAVIGATION_CUSTOMERS", "APP_PAGE", app + "#/", ["MANAGE_PLUGINS"]),
        ("CUSTOMER_DETAILS_WIDGETS", "WIDGET", app + "#/widgets/customer", ["MANAGE_PLUGINS", "MANAGE_USERS"]),
        ("ORDER_DETAILS_WIDGETS", "WIDGET", app + "#/widgets/order", ["MANAGE_PLUGINS", "MANAGE_USERS"]),
    ]
    # Saleor refuses an extension permission the App does not ask for, and MANAGE_APPS altogether.
    for extension in manifest["extensions"]:
        assert set(extension["permissions"]) <= set(manifest["permissions"]) and extension["label"] == "Flows"
    assert "MANAGE_APPS" not in manifest["permissions"]


def test_manifest_urls_follow_the_public_url_when_the_shop_set_one(client, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "PUBLIC_URL": "https://flows.shop.example"}
    manifest = client.get(BASE + "app/manifest/", HTTP_HOST="10.0.0.5:8000").json()
    assert manifest["tokenTargetUrl"] == "https://flows.shop.example/plugins/global/saleor.flows/app/register/"


def test_the_plugins_webhook_routes_the_app_paths_as_a_django_host_does(rf=RequestFactory()):
    """Inside Saleor, ``FlowsPlugin.webhook`` hands every path under the plugin's URL to ``urls.serve``."""
    request = rf.get(BASE + "app/manifest/", HTTP_HOST="api.shop.example")
    manifest = json.loads(urls.serve(request, "app/manifest/").content)
    assert manifest["appUrl"] == "http://api.shop.example/plugins/global/saleor.flows/app/"
    # "app" without its slash: the bundle's relative asset URLs only resolve from "app/".
    assert urls.serve(rf.get(BASE + "app"), "app")["Location"] == BASE + "app/"


# --- register ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_register_stores_the_token_encrypted_after_saleor_confirms_it_is_ours(client, saleor):
    saleor.knows("QXBwOjQ=")
    response = register(client, saleor, "tok-one-1234")
    assert response.status_code == 200 and response.json() == {"success": True}
    (asked,) = saleor.requests
    assert (asked.path, asked.headers["Authorization"]) == ("/graphql/", "Bearer tok-one-1234")
    assert asked.json() == {"query": "{ app { id identifier } }"}
    (row,) = SaleorAppInstallation.objects.all()
    assert (row.saleor_api_url, row.saleor_domain, row.app_id) == (saleor.api_url, saleor.domain, "QXBwOjQ=")
    assert "tok-one-1234" not in row.token_encrypted
    assert registration.app_token() == "tok-one-1234"

    # Installing again (the App was reinstalled) replaces the token.
    saleor.knows("QXBwOjU=")
    assert register(client, saleor, "tok-two-5678").status_code == 200
    (row,) = SaleorAppInstallation.objects.all()
    assert registration.app_token() == "tok-two-5678" and row.app_id == "QXBwOjU="


@pytest.mark.django_db
def test_a_token_saleor_does_not_confirm_or_of_another_app_is_refused(client, saleor):
    saleor.knows(None)
    response = register(client, saleor, "made-up-token")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "INVALID_TOKEN"
    saleor.knows("QXBwOjk=", "some.other.app")
    assert register(client, saleor, "other-app-token").status_code == 401
    assert not SaleorAppInstallation.objects.exists()


@pytest.mark.django_db
def test_another_saleor_is_refused_without_asking_it_anything(client, saleor):
    response = register(client, saleor, "tok-one-1234", api_url="https://evil.example/graphql/",
                        domain="evil.example")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "FOREIGN_SALEOR"
    assert error["message"] == (f"Flows serves the Saleor at {saleor.api_url}; it cannot be installed as an "
                                "App in the Saleor at https://evil.example/graphql/.")
    assert register(client, saleor, "tok-one-1234", domain="evil.example").status_code == 403
    assert saleor.requests == [] and not SaleorAppInstallation.objects.exists()


@pytest.mark.django_db
def test_a_second_saleor_is_refused_while_the_first_registration_stands(client, saleor, settings):
    SaleorAppInstallation.objects.create(saleor_api_url="https://first.example/graphql/", token_encrypted="x",
                                         registered_at="2026-01-01T00:00Z", updated_at="2026-01-01T00:00Z")
    saleor.knows("QXBwOjQ=")
    response = register(client, saleor, "tok-one-1234")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "Flows is already installed as an App in the Saleor at https://first.example/graphql/. Remove that "
        "registration first (manage.py flows_app_unregister).")
    assert SaleorAppInstallation.objects.get().token_encrypted == "x"


@pytest.mark.django_db
@pytest.mark.parametrize("case, status", [("get", 405), ("no-token", 400), ("not-json", 400), ("too-large", 413),
                                          ("token-with-space", 400), ("no-api-url", 400)])
def test_register_refuses_what_saleor_never_sends(client, saleor, case, status):
    if case == "get":
        response = client.get(BASE + "app/register/")
    elif case == "no-api-url":
        response = client.post(BASE + "app/register/", data={"auth_token": "t"}, content_type="application/json")
    else:
        body = {"no-token": json.dumps({"token": "x"}), "not-json": "{auth_token", "too-large": json.dumps(
            {"auth_token": "x" * 5000}), "token-with-space": json.dumps({"auth_token": "a b"})}[case]
        response = register(client, saleor, None, body=body)
    assert response.status_code == status, response.content
    assert response.json()["success"] is False and response.json()["error"]["message"]
    assert saleor.requests == [] and not SaleorAppInstallation.objects.exists()


@pytest.mark.django_db
def test_register_attempts_are_rate_limited_per_client(client, saleor):
    for _ in range(12):
        saleor.knows(None)
    statuses = [register(client, saleor, f"guess-{i}").status_code for i in range(12)]
    assert statuses == [401] * 10 + [429] * 2
    assert len(saleor.requests) == 10


def test_the_stored_token_needs_the_secret_key_and_survives_its_rotation(settings):
    settings.SECRET_KEY = "first-secret"
    stored = registration.encrypt("app-token-9f2c")
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "second-secret", ["first-secret"]
    assert registration.decrypt(stored) == "app-token-9f2c"
    settings.SECRET_KEY_FALLBACKS = []
    with pytest.raises(Exception):
        registration.decrypt(stored)


# --- the bundle ---------------------------------------------------------------------------


@pytest.fixture
def built(tmp_path, monkeypatch):
    (tmp_path / "assets").mkdir()
    (tmp_path / "index.html").write_text('<!doctype html><script type="module" src="./assets/index-3f9a.js"></script>')
    (tmp_path / "assets" / "index-3f9a.js").write_text("console.log('flows')")
    (tmp_path / "assets" / "index-77c1.css").write_text("body{}")
    (tmp_path / "assets" / "inter-1b2c.woff2").write_bytes(b"wOF2")
    (tmp_path / "assets" / ".secret").write_text("no")
    (tmp_path / "build-info.json").write_text("{}")
    monkeypatch.setattr(bundle, "STATIC_DIR", tmp_path)
    return tmp_path


def test_index_is_never_cached_and_may_be_framed_by_the_dashboard(client, built, settings):
    response = client.get(BASE + "app/")
    assert response.status_code == 200 and response["Content-Type"] == "text/html; charset=utf-8"
    assert b"./assets/index-3f9a.js" in response.content
    assert response["Cache-Control"] == "no-cache"
    assert "X-Frame-Options" not in response
    assert "frame-ancestors *" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "DASHBOARD_FRAME_ANCESTORS": ["https://dash.shop.example"]}
    assert client.get(BASE + "app/")["Content-Security-Policy"].endswith("frame-ancestors https://dash.shop.example")


@pytest.mark.parametrize("name, content_type", [("index-3f9a.js", "text/javascript"), ("index-77c1.css", "text/css"),
                                                ("inter-1b2c.woff2", "font/woff2")])
def test_hashed_assets_are_immutable_with_their_content_type(client, built, name, content_type):
    response = client.get(BASE + "app/assets/" + name)
    assert response.status_code == 200 and response["Content-Type"] == content_type
    assert response["Cache-Control"] == "public, max-age=31536000, immutable"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == (built / "assets" / name).read_bytes()


@pytest.mark.parametrize("name", ["../index.html", "../build-info.json", "..%2Findex.html", "%2e%2e/index.html",
                                  ".secret", "nested/../../index.html", "a\\..\\index.html", "%00.js", "missing.js",
                                  "/etc/passwd", "//etc/passwd"])
def test_paths_outside_the_assets_are_refused(client, built, name):
    response = client.get(BASE + "app/assets/" + name)
    assert response.status_code == 404
    files = {path.read_bytes() for path in built.rglob("*") if path.is_file()}
    assert not any(content in response.content for content in files if len(content) > 2)


def test_a_missing_bundle_gets_a_page_that_says_what_to_do(client, tmp_path, monkeypatch):
    monkeypatch.setattr(bundle, "STATIC_DIR", tmp_path / "static")
    response = client.get(BASE + "app/")
    assert response.status_code == 503
    assert b"npm ci &amp;&amp; npm run build" in response.content and b"pip install saleor-flows" in response.content
