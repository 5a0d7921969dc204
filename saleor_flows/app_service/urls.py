"""The App service's URLs: Flows' public doors and API where the plugin has them, the App's edge, a health check.

``saleor_flows.urls`` stays under the plugin's path (``/plugins/global/saleor.flows/``)
so that every link already sent (unsubscribe, preferences, tracking) and the
Dashboard App have the same shape in both modes (``web.public_url``).
"""

from django.db import connection
from django.http import HttpResponse
from django.urls import include, path

from ..web import PLUGIN_PATH


def health(request):
    """200 when the database answers: what the container's health check and a load balancer ask."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("healthz", health, name="flows-app-health"),
    path(PLUGIN_PATH.strip("/") + "/", include("saleor_flows.urls")),
]
