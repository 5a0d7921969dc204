"""Our public HTTP endpoints: one list of routes for every host.

A Django host mounts them with
``path("plugins/global/saleor.flows/", include("saleor_flows.urls"))``; inside
Saleor the plugin's ``webhook()`` serves the same routes through ``serve()``,
since Saleor hands a plugin every request under its URL.
"""

from django.http import HttpResponseNotFound
from django.urls import Resolver404, path, resolve
from django.views.decorators.csrf import csrf_exempt

from .api.view import graphql_view
from .web.unsubscribe import unsubscribe

urlpatterns = [
    # No CSRF token can come with a mailbox provider's one-click POST: the signed token is the proof.
    path("unsubscribe/<str:token>/", csrf_exempt(unsubscribe), name="flows-unsubscribe"),
    # A bearer token, never a cookie, authenticates API calls: nothing for CSRF to protect.
    path("graphql/", csrf_exempt(graphql_view), name="flows-graphql"),
]


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
