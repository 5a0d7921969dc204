"""URLs for hosts other than Saleor (Saleor serves the same views through the plugin's webhook).

    path("plugins/global/saleor.flows/", include("saleor_flows.urls")),
"""

from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from .web.unsubscribe import unsubscribe

urlpatterns = [
    # No CSRF token can come with a mailbox provider's one-click POST: the signed token is the proof.
    path("unsubscribe/<str:token>/", csrf_exempt(unsubscribe), name="flows-unsubscribe"),
]
