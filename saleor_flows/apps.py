from django.apps import AppConfig
from django.conf import settings


class SaleorFlowsConfig(AppConfig):
    name = "saleor_flows"
    label = "saleor_flows"
    verbose_name = "Saleor Flows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Inside Saleor, the plugin's stored configuration overrides SALEOR_FLOWS.
        if "saleor_flows.saleor_plugin.plugin.FlowsPlugin" in getattr(settings, "PLUGINS", []):
            from .conf import add_settings_source
            from .saleor_plugin.config import stored_settings

            add_settings_source(stored_settings)
