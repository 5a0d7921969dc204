"""The GraphQL API inside Saleor: tokens Saleor itself signs, permissions from Saleor's database."""

import json

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor.account.models import User  # noqa: E402
from saleor.core.jwt import create_access_token, create_access_token_for_app  # noqa: E402

ENDPOINT = "/plugins/global/saleor.flows/graphql/"
FLOWS = "{ flows(first: 5) { totalCount } }"
CONTACTS = "{ contacts(first: 5) { totalCount } }"


def _post(client, token, query):
    response = client.post(ENDPOINT, data=json.dumps({"query": query}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {token}")
    return response.status_code, response.json()


@pytest.fixture
def staff_member(db):
    """A staff user of its own: the ``flows`` fixture gives Saleor's ``staff_user`` MANAGE_PLUGINS."""
    user = User.objects.create(email="api-staff@example.com", is_staff=True, is_active=True)
    user.set_password("password")
    user.save()
    return user


def _denied(body):
    return body["errors"][0]["extensions"]["exception"]["code"] == "PermissionDenied"


def test_staff_token_permissions_come_from_saleor(client, flows, staff_member, permission_manage_plugins,
                                                  permission_manage_users):
    staff_user = staff_member
    token = create_access_token(staff_user)  # Saleor's own access token: no permissions claim
    status, body = _post(client, token, FLOWS)
    assert status == 200 and _denied(body)
    staff_user.user_permissions.add(permission_manage_plugins)
    status, body = _post(client, token, FLOWS)
    assert status == 200 and body == {"data": {"flows": {"totalCount": 0}}}
    assert _denied(_post(client, token, CONTACTS)[1])
    staff_user.user_permissions.add(permission_manage_users)
    assert _post(client, token, CONTACTS)[1] == {"data": {"contacts": {"totalCount": 0}}}
    # A token Saleor no longer honours (the user's token key rotated: logged out everywhere) stops working.
    staff_user.jwt_token_key = "rotated"
    staff_user.save(update_fields=["jwt_token_key"])
    status, body = _post(client, token, FLOWS)
    assert status == 401 and body["errors"][0]["extensions"]["exception"]["code"] == "InvalidTokenError"


def test_app_token_gets_what_the_app_and_the_user_share(client, flows, app, staff_member,
                                                        permission_manage_plugins, permission_manage_users):
    staff_user = staff_member
    staff_user.user_permissions.add(permission_manage_plugins, permission_manage_users)
    app.permissions.add(permission_manage_plugins)
    token = create_access_token_for_app(app, staff_user)
    assert _post(client, token, FLOWS)[1] == {"data": {"flows": {"totalCount": 0}}}
    assert _denied(_post(client, token, CONTACTS)[1])
