from django.apps import AppConfig


class SaleorFlowsConfig(AppConfig):
    name = "saleor_flows"
    label = "saleor_flows"
    verbose_name = "Saleor Flows"
    default_auto_field = "django.db.models.BigAutoField"
