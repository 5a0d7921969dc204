"""The App service's URLs: the App's edge with Flows' public doors and API, and a health check.

``saleor_flows.saleor_app.urls`` (the App-mode manifest, Saleor's webhook
receivers, then every route of ``saleor_flows.urls``) is mounted under the
plugin's path, ``/plugins/global/saleor.flows/``: links in emails
(unsubscribe, preferences, tracking) and the manifest's URLs are built as
``PUBLIC_URL`` + that path (``web.public_url``), in both modes alike.
"""

from django.db import connection
from django.http import HttpResponse
from django.urls import include, path

from ..web import PLUGIN_PATH
from .middleware import HEALTH_PATH


def health(request):
    """200 when the database answers: what the container's health check and a load balancer ask."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path(HEALTH_PATH.lstrip("/"), health, name="flows-app-health"),
    path(PLUGIN_PATH.strip("/") + "/", include("saleor_flows.saleor_app.urls")),
]
