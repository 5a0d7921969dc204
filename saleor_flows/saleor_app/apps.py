from django.apps import AppConfig


class SaleorAppConfig(AppConfig):
    """Wires the App edge into the engine's seams when a deployment runs in App mode."""

    name = "saleor_flows.saleor_app"
    label = "saleor_flows_app"
    verbose_name = "Saleor Flows (Saleor App mode)"

    def ready(self):
        from ..engine.holds import register_hold
        from ..engine.resolvers import register
        from ..signals import consent_changed
        from . import consent, installation, webhooks

        register(webhooks.SOURCE, webhooks.resolve)  # deliveries are normalized with the shop's settings in the worker
        register_hold(installation.hold_reason)  # an uninstalled App (or a refused token) sends nothing
        consent_changed.connect(consent.write_back, dispatch_uid="saleor-flows-consent-to-saleor-app")
