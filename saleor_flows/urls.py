"""Our public HTTP endpoints: one list of routes for every host.

A Django host mounts them with
``path("plugins/global/saleor.flows/", include("saleor_flows.urls"))``; inside
Saleor the plugin's ``webhook()`` serves the same routes through ``serve()``,
since Saleor hands a plugin every request under its URL.
"""

import importlib.util

from django.http import HttpResponseNotFound
from django.urls import Resolver404, path, resolve
from django.views.decorators.csrf import csrf_exempt

from .web.confirm import confirm
from .web.preferences import preferences
from .web.subscribe import subscribe
from .web import sms
from .api.view import graphql_view
from .dashboard import bundle
from .dashboard.manifest import manifest
from .dashboard.register import register
from .web.tracking import click, open_pixel
from .web.unsubscribe import unsubscribe

urlpatterns = [
    # No CSRF token can come with a mailbox provider's one-click POST, nor with a page opened from an
    # email: the signed token in the URL is the proof. Storefront signup forms are cross-site by design.
    path("unsubscribe/<str:token>/", csrf_exempt(unsubscribe), name="flows-unsubscribe"),
    path("preferences/<str:token>/", csrf_exempt(preferences), name="flows-preferences"),
    path("confirm/<str:token>/", csrf_exempt(confirm), name="flows-confirm"),
    path("subscribe/", csrf_exempt(subscribe), name="flows-subscribe"),
    # SMS providers sign their webhooks; the signature is the proof (see web/sms.py).
    path("sms/<str:provider>/status/", csrf_exempt(sms.status), name="flows-sms-status"),
    path("sms/<str:provider>/inbound/", csrf_exempt(sms.inbound), name="flows-sms-inbound"),
    # A bearer token, never a cookie, authenticates API calls: nothing for CSRF to protect.
    path("graphql/", csrf_exempt(graphql_view), name="flows-graphql"),
    # The Dashboard App: its manifest, the token Saleor POSTs at install (proven by asking Saleor, see
    # dashboard/register.py; no browser session involved), and the built bundle.
    path("app/", bundle.index, name="flows-app"),
    path("app/manifest/", manifest, name="flows-app-manifest"),
    path("app/register/", csrf_exempt(register), name="flows-app-register"),
    path("app/assets/<path:name>", bundle.asset, name="flows-app-asset"),
    path("o/<str:token>.gif", open_pixel, name="flows-open"),
    path("c/<str:token>/", click, name="flows-click"),
]
if importlib.util.find_spec("anymail") is not None:
    # ESPs' tracking webhooks through django-anymail: tracking/postmark/, tracking/sendgrid/, ...
    from .tracking.anymail import webhook_urls

    urlpatterns += webhook_urls()


def serve(request, subpath: str):
    """Answer a request for ``subpath`` (relative to the plugin's URL) from ``urlpatterns``."""
    route = "/" + subpath.lstrip("/")
    for candidate in (route,) if route.endswith("/") else (route, route + "/"):
        try:
            match = resolve(candidate, urlconf=__name__)
        except Resolver404:
            continue
        return match.func(request, *match.args, **match.kwargs)
    return HttpResponseNotFound("Not found")
