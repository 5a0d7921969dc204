"""Tokens: verified for real against the store's JWKS, served by a local HTTP server."""

import json

import jwt
import pytest

from saleor_flows.api import auth
from tests.api.conftest import ENDPOINT, jwk_of, new_key

FLOWS_QUERY = "{ flows(first: 5) { totalCount } }"


def _error(response):
    body = response.json()
    return response.status_code, body["errors"][0]["extensions"]["exception"]["code"], body["errors"][0]["message"]


def test_a_staff_token_is_verified_against_the_fetched_key_set(db, api, tokens, jwks_server):
    assert api(FLOWS_QUERY, token=tokens.staff("MANAGE_PLUGINS")) == {"flows": {"totalCount": 0}}
    assert jwks_server.fetches == 1
    # Cached: the next requests do not fetch again.
    api(FLOWS_QUERY, token=tokens.staff("MANAGE_PLUGINS"))
    api(FLOWS_QUERY, token=tokens.app("MANAGE_PLUGINS"))
    assert jwks_server.fetches == 1


def test_a_rotated_key_is_fetched_when_a_token_names_it(db, api, tokens, jwks_server, store_key):
    api(FLOWS_QUERY, token=tokens.staff("MANAGE_PLUGINS"))
    rotated = new_key()
    jwks_server.keys = [jwk_of(store_key, "store-key-1"), jwk_of(rotated, "store-key-2")]
    auth.key_set.backdate(auth.KeySet.MIN_REFETCH_SECONDS + 1)  # the refetch guard's window has passed
    token = tokens.staff("MANAGE_PLUGINS", key=rotated, kid="store-key-2")
    assert api(FLOWS_QUERY, token=token) == {"flows": {"totalCount": 0}}
    assert jwks_server.fetches == 2


def test_unknown_key_ids_do_not_hammer_the_store(db, api, tokens, jwks_server):
    api(FLOWS_QUERY, token=tokens.staff("MANAGE_PLUGINS"))
    stranger = new_key()
    for _ in range(5):
        response = api.post(FLOWS_QUERY, token=tokens.staff("MANAGE_PLUGINS", key=stranger, kid="other"))
        assert _error(response)[:2] == (401, "InvalidTokenError")
    assert jwks_server.fetches == 1


def test_an_unreachable_key_set_is_a_clear_error_after_the_timeout(db, api, tokens, jwks_server, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "API_JWKS_TIMEOUT_SECONDS": 0.2}
    jwks_server.delay = 1.0
    status, code, message = _error(api.post(FLOWS_QUERY, token=tokens.staff("MANAGE_PLUGINS")))
    assert (status, code) == (401, "JWKSUnavailable") and jwks_server.url in message


def test_a_configured_key_set_needs_no_fetch(db, api, tokens, jwks_server, settings, store_key):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "API_JWKS_URL": "", "API_TOKEN_ISSUER": jwks_server.issuer,
                             "API_JWKS": {"keys": [jwk_of(store_key, "store-key-1")]}}
    assert api(FLOWS_QUERY, token=tokens.staff("MANAGE_PLUGINS")) == {"flows": {"totalCount": 0}}
    assert jwks_server.fetches == 0


@pytest.mark.parametrize("make, code", [
    (lambda t: t.staff("MANAGE_PLUGINS", ttl=-10), "ExpiredSignatureError"),
    (lambda t: t.staff("MANAGE_PLUGINS", key=new_key()), "InvalidSignatureError"),
    (lambda t: t.staff("MANAGE_PLUGINS", issuer="https://other-store.example.com/graphql/"), "InvalidTokenError"),
    (lambda t: t.sign({"type": "refresh", "email": "staff@example.com", "permissions": ["MANAGE_PLUGINS"]}),
     "InvalidTokenError"),
    (lambda t: jwt.encode({"type": "access", "permissions": ["MANAGE_PLUGINS"], "iss": t.issuer,
                           "exp": 9999999999}, "a-guessed-shared-secret-of-enough-length", algorithm="HS256"), "InvalidTokenError"),
    (lambda t: "not-a-jwt", "DecodeError"),
], ids=["expired", "forged", "wrong-issuer", "refresh-token", "hs256", "garbage"])
def test_bad_tokens_are_refused_never_treated_as_anonymous(db, api, tokens, make, code):
    response = api.post(FLOWS_QUERY, token=make(tokens))
    assert _error(response)[:2] == (401, code)
    assert response["WWW-Authenticate"].startswith("Bearer")
    # Even the public storefront mutation: a bad credential is an error, not a downgrade.
    response = api.post('mutation { trackEvent(publicKey: "x", input: {event: PAGE_VIEWED, email: "a@example.com"}) '
                        '{ errors { code } } }', token=make(tokens))
    assert response.status_code == 401


def test_unsigned_alg_none_is_refused(db, api, tokens):
    header = {"alg": "none", "typ": "JWT", "kid": "store-key-1"}
    import base64

    def part(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    token = f"{part(header)}.{part({'type': 'access', 'permissions': ['MANAGE_PLUGINS'], 'iss': tokens.issuer})}."
    assert _error(api.post(FLOWS_QUERY, token=token))[:2] == (401, "InvalidTokenError")


def test_extension_token_permissions_are_what_saleor_granted_within_the_user(db, tokens):
    claims = auth.decode(tokens.extension())
    principal = auth.principal_from_claims(claims)
    assert principal.kind == "app" and principal.permissions == {"MANAGE_PLUGINS", "MANAGE_USERS"}
    assert principal.app_extension_id == "QXBwRXh0ZW5zaW9uOjM="
    # A token claiming more than its user holds gets only the overlap.
    claims = auth.decode(tokens.extension(user_permissions=["MANAGE_USERS"]))
    assert auth.principal_from_claims(claims).permissions == {"MANAGE_USERS"}
    # A staff access token without a permissions claim (Saleor's own) has none outside Saleor.
    claims = auth.decode(tokens.sign({"type": "access", "email": "s@example.com", "is_staff": True}))
    assert auth.principal_from_claims(claims).permissions == frozenset()


def test_missing_configuration_is_explained(db, client, settings, tokens):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "API_JWKS_URL": "", "API_JWKS": None}
    response = client.post(ENDPOINT, data=json.dumps({"query": FLOWS_QUERY}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {tokens.staff('MANAGE_PLUGINS')}")
    assert _error(response)[:2] == (401, "JWKSNotConfigured")


def test_malformed_authorization_header(db, client, api_settings):
    response = client.post(ENDPOINT, data=json.dumps({"query": FLOWS_QUERY}), content_type="application/json",
                           HTTP_AUTHORIZATION="Basic dXNlcjpwYXNz")
    assert _error(response)[:2] == (401, "InvalidTokenError")


def test_http_surface(db, client, api_settings, api, tokens):
    assert client.get(ENDPOINT).status_code == 405
    preflight = client.options(ENDPOINT, HTTP_ORIGIN="https://dashboard.example.com",
                               HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://dashboard.example.com"
    assert "Authorization" in preflight["Access-Control-Allow-Headers"]
    other = client.options(ENDPOINT, HTTP_ORIGIN="https://evil.example.com")
    assert "Access-Control-Allow-Origin" not in other
    response = client.post(ENDPOINT, data="{not json", content_type="application/json")
    assert response.status_code == 400
    response = client.post(ENDPOINT, data=json.dumps([{"query": FLOWS_QUERY}]), content_type="application/json")
    assert response.status_code == 400 and "batches" in response.json()["errors"][0]["message"]
    response = api.post("{ flows(first: 1) { nope } }", token=tokens.staff("MANAGE_PLUGINS"))
    assert response.status_code == 400 and "nope" in response.json()["errors"][0]["message"]
