"""The URLs of an App-mode deployment (the App service mounts ``saleor_flows.saleor_app.urls`` at its root)."""

from django.urls import include, path

urlpatterns = [path("", include("saleor_flows.saleor_app.urls"))]
