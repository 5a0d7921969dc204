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


PUBLISH_NOTE = """mutation($d: JSON) { flowCreate(input: {name: "Note", definition: $d}) { flow { id } errors { code } } }"""
PUBLISH = """mutation($id: ID!) { flowPublish(id: $id) { errors { message } version { number } } }"""


def test_staff_notifications_go_to_saleor_staff_users_only(client, flows, staff_member, permission_manage_plugins,
                                                          permission_manage_users):
    """Issue 11, item 5: the addresses a notify_staff step may name are Saleor's active staff users'."""
    staff_member.user_permissions.add(permission_manage_plugins, permission_manage_users)
    token = create_access_token(staff_member)
    User.objects.create(email="former-staff@example.com", is_staff=True, is_active=False)
    User.objects.create(email="customer@example.com", is_staff=False, is_active=True)
    outcomes = {}
    for address in ("API-Staff@example.com", "former-staff@example.com", "customer@example.com"):
        definition = {"trigger": {"event": "customer_created"}, "start": "tell", "steps": {"tell": {
            "type": "notify_staff", "to": [address], "subject": "New customer", "body": "{{ contact.email }}",
            "next": None}}}
        response = client.post(ENDPOINT, data=json.dumps({"query": PUBLISH_NOTE, "variables": {"d": definition}}),
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        flow_id = response.json()["data"]["flowCreate"]["flow"]["id"]
        response = client.post(ENDPOINT, data=json.dumps({"query": PUBLISH, "variables": {"id": flow_id}}),
                               content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
        outcomes[address] = response.json()["data"]["flowPublish"]
    assert outcomes["API-Staff@example.com"] == {"errors": [], "version": {"number": 1}}
    for outsider in ("former-staff@example.com", "customer@example.com"):
        (error,) = outcomes[outsider]["errors"]
        assert error["message"].startswith(f"not a staff address: {outsider}")
