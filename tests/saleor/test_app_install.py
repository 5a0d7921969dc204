"""Installing the Flows Dashboard App into a real Saleor from the plugin's own manifest URL.

``appInstall(manifestUrl)`` as a shop admin does it: Saleor fetches our manifest over HTTP (the plugin
served by a live server on loopback), validates it, creates the App with its extensions and permissions,
and POSTs the App token to our register endpoint, which checks it against Saleor's own tables and stores
it encrypted. Then the tokens the Dashboard would hand the App's page and its extensions (Saleor's own
``create_access_token_for_app`` / ``…_for_app_extension``) are accepted by the API with exactly the right
permissions.
"""

import json

import pytest
import requests

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from django.contrib.auth.hashers import check_password  # noqa: E402
from graphene import Node  # noqa: E402
from saleor.account.models import User  # noqa: E402
from saleor.app.models import App, AppInstallation  # noqa: E402
from saleor.core.jwt import create_access_token_for_app, create_access_token_for_app_extension  # noqa: E402

from saleor_flows.dashboard.manifest import APP_ID  # noqa: E402
from saleor_flows.dashboard.register import app_token  # noqa: E402
from saleor_flows.models import SaleorAppInstallation  # noqa: E402

from .saleor_graphql import mutate  # noqa: E402

PLUGIN = "/plugins/global/saleor.flows/"
APP_INSTALL = """mutation($input: AppInstallInput!) { appInstall(input: $input) {
    appInstallation { id status message } errors { field code message } } }"""
FLOWS = "{ dashboardHome(days: 7) { flows { sent } } }"
CONTACTS = "{ contacts(first: 5) { totalCount } }"


def _api(live_server, token, query):
    response = requests.post(live_server.url + PLUGIN + "graphql/", json={"query": query},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    body = response.json()
    if body.get("errors"):
        return body["errors"][0]["extensions"]["exception"]["code"]
    return "ok"


@pytest.fixture
def admin(db):
    user = User.objects.create(email="shop-admin@example.com", is_staff=True, is_active=True)
    user.set_password("password")
    user.save()
    return user


def test_app_install_from_the_plugins_manifest_url(transactional_db, live_server, settings, flows_plugin,
                                                   staff_api_client, admin, permission_manage_apps,
                                                   permission_manage_plugins, permission_manage_users):
    settings.HTTP_IP_FILTER_ALLOW_LOOPBACK_IPS = True
    # The shop's "Public base URL" is where Saleor (and browsers) reach this API: here, the live server.
    for item in flows_plugin.configuration:
        if item["name"] == "public_url":
            item["value"] = live_server.url
    flows_plugin.save(update_fields=["configuration"])
    manifest_url = live_server.url + PLUGIN + "app/manifest/"
    manifest = requests.get(manifest_url, timeout=10).json()
    assert manifest["id"] == APP_ID and manifest["appUrl"] == live_server.url + PLUGIN + "app/"

    staff_api_client.user.user_permissions.add(permission_manage_apps, permission_manage_plugins,
                                               permission_manage_users)
    result = mutate(staff_api_client, "appInstall", APP_INSTALL, {"input": {
        "appName": "Flows", "manifestUrl": manifest_url, "activateAfterInstallation": True,
        "permissions": ["MANAGE_PLUGINS", "MANAGE_USERS"]}})
    assert not AppInstallation.objects.filter(status="failed").exists(), result
    print("appInstall:", json.dumps(result))

    app = App.objects.get(identifier=APP_ID)
    assert app.is_active and app.is_installed
    assert sorted(p.codename for p in app.permissions.all()) == ["manage_plugins", "manage_users"]
    extensions = {e.mount: e for e in app.extensions.all()}
    assert sorted(extensions) == ["customer_details_widgets", "navigation_customers", "order_details_widgets"]
    assert (extensions["navigation_customers"].target, extensions["navigation_customers"].url) == (
        "app_page", manifest["appUrl"] + "#/")
    assert extensions["customer_details_widgets"].target == "widget"
    assert extensions["order_details_widgets"].url == manifest["appUrl"] + "#/widgets/order"
    assert [p.codename for p in extensions["navigation_customers"].permissions.all()] == ["manage_plugins"]
    assert sorted(p.codename for p in extensions["customer_details_widgets"].permissions.all()) == [
        "manage_plugins", "manage_users"]

    # The register handshake stored the App's token, encrypted, and it is a real token of this App.
    (row,) = SaleorAppInstallation.objects.all()
    assert row.app_id == Node.to_global_id("App", app.pk)
    token = app_token()
    assert token not in row.token_encrypted
    assert any(check_password(token, t.auth_token) for t in app.tokens.all())

    # What the Dashboard hands the App's page and its extensions, as Saleor mints it.
    admin.user_permissions.add(permission_manage_plugins, permission_manage_users)
    assert _api(live_server, create_access_token_for_app(app, admin), FLOWS) == "ok"
    assert _api(live_server, create_access_token_for_app(app, admin), CONTACTS) == "ok"
    for mount, contacts in [("navigation_customers", "PermissionDenied"), ("customer_details_widgets", "ok"),
                            ("order_details_widgets", "ok")]:
        extension = extensions[mount]
        token = create_access_token_for_app_extension(extension, extension.permissions.all(), admin, app)
        assert (mount, _api(live_server, token, FLOWS), _api(live_server, token, CONTACTS)) == (
            mount, "ok", contacts)
    # A staff user without MANAGE_USERS gets flows, not contacts, even through the App.
    admin.user_permissions.remove(permission_manage_users)
    admin = User.objects.get(pk=admin.pk)  # effective permissions are cached on the instance
    token = create_access_token_for_app(app, admin)
    assert (_api(live_server, token, FLOWS), _api(live_server, token, CONTACTS)) == ("ok", "PermissionDenied")


def test_register_refuses_a_token_that_is_not_this_saleors_token_of_the_app(transactional_db, live_server,
                                                                             flows_plugin):
    from saleor_flows.saleor_plugin.app import own_api_url

    response = requests.post(live_server.url + PLUGIN + "app/register/", json={"auth_token": "made-up-token"},
                             headers={"Saleor-Api-Url": own_api_url()}, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "INVALID_TOKEN"
    response = requests.post(live_server.url + PLUGIN + "app/register/", json={"auth_token": "made-up-token"},
                             headers={"Saleor-Api-Url": "https://other-saleor.example/graphql/"}, timeout=10)
    assert response.status_code == 403 and response.json()["error"]["code"] == "FOREIGN_SALEOR"
    assert not SaleorAppInstallation.objects.exists()


def test_gallery_previews_show_the_shops_own_products(client, flows, shop_variant, admin, permission_manage_plugins):
    from saleor.core.jwt import create_access_token

    from saleor_flows.engine import samples

    samples.set_product_source(samples._products["source"])  # a fresh read of the catalogue, not a cached one
    admin.user_permissions.add(permission_manage_plugins)
    query = '{ flowTemplate(slug: "abandoned_checkout") { previews { stepId html } } }'
    response = client.post(PLUGIN + "graphql/", data=json.dumps({"query": query}), content_type="application/json",
                           HTTP_AUTHORIZATION=f"Bearer {create_access_token(admin)}")
    previews = {p["stepId"]: p["html"] for p in response.json()["data"]["flowTemplate"]["previews"]}
    assert "Linen Summer Shirt" in previews["email_reminder"] and "Monospace Tee" not in previews["email_reminder"]
    assert "24.90" in previews["email_reminder"] or "24,90" in previews["email_reminder"]
