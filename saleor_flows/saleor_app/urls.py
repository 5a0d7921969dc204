"""Everything the App serves, for the App service to mount: ``path("", include("saleor_flows.saleor_app.urls"))``.

The App-mode manifest (with the webhooks) and Saleor's webhook receivers,
then every public route of ``saleor_flows.urls`` (register, Dashboard bundle,
API, unsubscribe, tracking, ...), which the manifest's URLs point at. Any
prefix works: the manifest builds its URLs from the request's path, or from
``PUBLIC_URL`` when set.
"""

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from .. import urls as flows_urls
from . import manifest, webhooks

urlpatterns = [
    path("app/manifest/", manifest.manifest, name="flows-saleor-app-manifest"),
    # Saleor signs each delivery (detached JWS): the signature is the proof, no CSRF token can come with it.
    path("saleor/webhooks/<str:event>/", csrf_exempt(webhooks.receive), name="flows-saleor-webhook"),
    *flows_urls.urlpatterns,
]
