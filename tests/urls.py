from django.urls import include, path

urlpatterns = [path("plugins/global/saleor.flows/", include("saleor_flows.urls"))]
