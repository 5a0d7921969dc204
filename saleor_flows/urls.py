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

from .web.tracking import click, open_pixel
from .web.unsubscribe import unsubscribe

urlpatterns = [
    # No CSRF token can come with a mailbox provider's one-click POST: the signed token is the proof.
    path("unsubscribe/<str:token>/", csrf_exempt(unsubscribe), name="flows-unsubscribe"),
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
    for candidate in (route, route if route.endswith("/") else route + "/"):
        try:
            match = resolve(candidate, urlconf=__name__)
        except Resolver404:
            continue
        return match.func(request, *match.args, **match.kwargs)
    return HttpResponseNotFound("Not found")
