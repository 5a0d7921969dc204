"""The App manifest (Saleor 3.24's shape): who we are, the permissions the API needs, where the pages mount.

Saleor fetches it when a shop admin installs the App from its URL. Every URL
in it is absolute: built from ``PUBLIC_URL`` when the shop set one (the
address Saleor and browsers reach us at), else from the request that fetched
the manifest, so the same plugin works under any host and prefix.
"""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from .. import __version__
from ..api.core import CONTACTS, FLOWS
from ..conf import flows_setting
from ..web import public_url

APP_ID = "saleor.flows.dashboard"
MANIFEST_PATH = "app/manifest/"
# What the API needs (api/core.py): MANAGE_PLUGINS for flows, MANAGE_USERS as well for contacts.
PERMISSIONS = sorted(set(FLOWS) | set(CONTACTS))


def plugin_base(request, own_subpath: str) -> str:
    """The absolute URL of the plugin's root (ending in "/"), e.g. ``https://api.shop.example/plugins/global/saleor.flows/``."""
    if flows_setting("PUBLIC_URL"):
        return public_url("")
    path = request.path
    prefix = path[: -len(own_subpath)] if path.endswith(own_subpath) else path.rsplit("/app/", 1)[0] + "/"
    return request.build_absolute_uri(prefix)


DATA_PRIVACY = ("Flows keeps its data (contacts, consent with its proof, events, messages) in this Saleor's own "
                "database and sends email and SMS through the providers this shop configured.")


def build_manifest(base: str, *, webhooks: list | None = None, permissions=(), data_privacy: str = DATA_PRIVACY) -> dict:
    """The manifest of both modes: the plugin serves it as is; App mode (``saleor_app/manifest.py``) adds the
    webhooks Saleor should deliver and the permissions their events need."""
    app = f"{base}app/"
    return {
        "id": APP_ID,
        "version": __version__,
        "name": "Flows",
        "about": "Email and SMS journeys triggered by your store's events: welcome series, abandoned checkout, "
                 "post-purchase and your own flows, with reports and each customer's why-trail.",
        "author": "saleor-flows",
        "permissions": sorted(set(PERMISSIONS) | set(permissions)),
        "appUrl": app,
        "tokenTargetUrl": f"{app}register/",
        "dataPrivacy": data_privacy,
        "requiredSaleorVersion": ">=3.20",
        "extensions": [
            {"label": "Flows", "mount": "NAVIGATION_CUSTOMERS", "target": "APP_PAGE", "url": f"{app}#/",
             "permissions": list(FLOWS)},
            {"label": "Flows", "mount": "CUSTOMER_DETAILS_WIDGETS", "target": "WIDGET",
             "url": f"{app}#/widgets/customer", "permissions": list(CONTACTS),
             "options": {"widgetTarget": {"method": "GET"}}},
            {"label": "Flows", "mount": "ORDER_DETAILS_WIDGETS", "target": "WIDGET",
             "url": f"{app}#/widgets/order", "permissions": list(CONTACTS),
             "options": {"widgetTarget": {"method": "GET"}}},
        ],
        "webhooks": webhooks or [],
    }


@require_GET
def manifest(request):
    response = JsonResponse(build_manifest(plugin_base(request, MANIFEST_PATH)))
    response["Cache-Control"] = "no-cache"
    response["Access-Control-Allow-Origin"] = "*"  # public by nature; lets tools fetch it from a browser
    return response
