import importlib.util

from django.apps import AppConfig
from django.conf import settings

SALEOR_PLUGIN = "saleor_flows.saleor_plugin.plugin.FlowsPlugin"


class SaleorFlowsConfig(AppConfig):
    name = "saleor_flows"
    label = "saleor_flows"
    verbose_name = "Saleor Flows"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # Caps, quiet hours, senders and topics edited in the Dashboard App win over every other source.
        from . import tasks  # noqa: F401  (the Celery task layer registers itself with the engine's dispatcher)
        from .conf import add_settings_source
        from .flow_settings import stored_settings as stored_flow_settings

        add_settings_source(stored_flow_settings, first=True)
        if importlib.util.find_spec("anymail") is not None:
            from .tracking.anymail import connect

            connect()  # ESPs' delivery and engagement events, whatever the host
        if importlib.util.find_spec("saleor") is None:
            return
        # Hooks record references; Saleor's payloads are built when the worker
        # processes them. (Registered whenever Saleor is here: tests enable the
        # plugin after start-up.)
        from .conf import flows_setting
        from .engine.resolvers import register
        from .saleor_plugin.payloads import resolve

        from .saleor_plugin.consent import write_back
        from .signals import consent_changed

        consent_changed.connect(write_back, dispatch_uid="saleor-flows-consent-to-saleor")
        from .catalog import register_catalog
        from .channels.staff import add_staff_source
        from .dashboard.register import use_saleor
        from .saleor_plugin.app import app_of_token, own_api_url
        from .engine.samples import set_product_source
        from .saleor_plugin.catalog import CATALOG
        from .saleor_plugin.samples import shop_products
        from .saleor_plugin.staff import staff_emails

        register_catalog(CATALOG)  # storefront events and recommendations show Saleor's own product data in mail
        add_staff_source(staff_emails)  # staff notifications go to Saleor's active staff users only
        set_product_source(shop_products)  # previews show the shop's own products
        use_saleor(own_api_url, app_of_token)  # the App registration asks Saleor itself
        register("saleor", lambda reference, event: resolve(
            reference, event, checkout_url_template=flows_setting("CHECKOUT_URL_TEMPLATE"),
            consent_metadata_key=flows_setting("CONSENT_METADATA_KEY")))

        if SALEOR_PLUGIN not in getattr(settings, "PLUGINS", []):
            return
        # The plugin's stored configuration overrides SALEOR_FLOWS ...
        from .saleor_plugin.config import stored_settings

        add_settings_source(stored_settings)
        # ... and our periodic tasks join Saleor's beat. Saleor's scheduler turns
        # CELERY_BEAT_SCHEDULE entries into its own CustomPeriodicTask rows at start.
        from .saleor_plugin.tasks import BEAT_SCHEDULE as SALEOR_SCHEDULE

        schedule = getattr(settings, "CELERY_BEAT_SCHEDULE", None)
        if isinstance(schedule, dict):
            for name, entry in {**tasks.BEAT_SCHEDULE, **SALEOR_SCHEDULE}.items():
                schedule.setdefault(name, entry)
