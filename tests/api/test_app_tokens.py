"""The tokens the Dashboard hands the App's pages through AppBridge, in Saleor 3.24's real shape.

An App page gets the App's token, an extension (navigation entry, widget) the extension's token: both
``type: thirdparty``, with ``permissions`` = what Saleor granted the App or extension ∩ what the logged-in
user holds, and ``user_permissions``. Signed here with a generated RS256 key served as a JWKS, as Saleor
serves its own. The API must grant exactly ``permissions`` (∩ ``user_permissions``), nothing more.
"""

import json
from pathlib import Path

import pytest

from saleor_flows.api.core import to_global_id
from saleor_flows.dashboard.manifest import PERMISSIONS, build_manifest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
APP_CLAIMS = json.loads((FIXTURES / "saleor_app" / "app-token-claims.json").read_text())
APP_CLAIMS.pop("_comment")
FLOWS_QUERY = "{ dashboardHome(days: 7) { flows { sent } } }"
CONTACT_QUERY = "query($id: ID!) { contact(id: $id) { email journeys { status } trail { kind } } }"
EXTENSIONS = {e["mount"]: e for e in build_manifest("https://api.shop.example/plugins/global/saleor.flows/")
              ["extensions"]}


def saleor_grants(granted, user_permissions):
    """What Saleor puts in a thirdparty token's ``permissions``: granted ∩ the user's (its own rule)."""
    return [name for name in granted if name in user_permissions]


@pytest.fixture
def ann(flows):
    return to_global_id("Contact", flows.contact("ann@example.com", email_consent="subscribed").pk)


def outcome(api, query, token, variables=None):
    body = api.post(query, variables, token=token).json()
    if body.get("errors"):
        return body["errors"][0]["extensions"]["exception"]["code"]
    return "ok"


def test_the_apps_own_page_token_gets_the_apps_permissions(api, tokens, ann):
    token = tokens.sign({**APP_CLAIMS, "permissions": saleor_grants(PERMISSIONS, APP_CLAIMS["user_permissions"])})
    assert outcome(api, FLOWS_QUERY, token) == "ok"
    assert outcome(api, CONTACT_QUERY, token, {"id": ann}) == "ok"


def test_a_user_without_manage_users_gets_flows_but_not_contacts_through_the_app(api, tokens, ann):
    user = [name for name in APP_CLAIMS["user_permissions"] if name != "MANAGE_USERS"]
    token = tokens.sign({**APP_CLAIMS, "permissions": saleor_grants(PERMISSIONS, user), "user_permissions": user})
    assert outcome(api, FLOWS_QUERY, token) == "ok"
    assert outcome(api, CONTACT_QUERY, token, {"id": ann}) == "PermissionDenied"


@pytest.mark.parametrize("mount, flows_ok, contacts_ok", [
    ("NAVIGATION_CUSTOMERS", True, False),
    ("CUSTOMER_DETAILS_WIDGETS", True, True),
    ("ORDER_DETAILS_WIDGETS", True, True),
])
def test_each_extensions_token_carries_the_permissions_of_its_manifest_entry(api, tokens, ann, mount, flows_ok,
                                                                             contacts_ok):
    extension = EXTENSIONS[mount]
    token = tokens.sign({**APP_CLAIMS, "app_extension": "QXBwRXh0ZW5zaW9uOjE=",
                         "permissions": saleor_grants(extension["permissions"], APP_CLAIMS["user_permissions"])})
    assert outcome(api, FLOWS_QUERY, token) == ("ok" if flows_ok else "PermissionDenied")
    assert outcome(api, CONTACT_QUERY, token, {"id": ann}) == ("ok" if contacts_ok else "PermissionDenied")


def test_a_token_claiming_more_than_its_user_holds_gets_only_what_the_user_holds(api, tokens, ann):
    user = ["MANAGE_PLUGINS", "MANAGE_ORDERS"]
    token = tokens.sign({**APP_CLAIMS, "permissions": ["MANAGE_PLUGINS", "MANAGE_USERS"], "user_permissions": user})
    assert outcome(api, FLOWS_QUERY, token) == "ok"
    assert outcome(api, CONTACT_QUERY, token, {"id": ann}) == "PermissionDenied"


def test_an_app_token_without_the_flows_permission_is_refused(api, tokens, ann):
    token = tokens.sign({**APP_CLAIMS, "permissions": ["MANAGE_USERS"]})
    assert outcome(api, FLOWS_QUERY, token) == "PermissionDenied"
    assert outcome(api, CONTACT_QUERY, token, {"id": ann}) == "PermissionDenied"


def test_an_app_token_of_the_right_shape_signed_by_another_key_is_refused(api, tokens, ann):
    from tests.api.conftest import new_key

    token = tokens.sign({**APP_CLAIMS, "permissions": list(PERMISSIONS)}, key=new_key())
    response = api.post(FLOWS_QUERY, token=token)
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["exception"]["code"] == "InvalidSignatureError"
