from django.apps import AppConfig


def connect():
    """Wire the App edge into the engine's seams (registrations the engine looks up; it imports nothing here)."""
    from ..catalog import register_catalog
    from ..engine.holds import register_hold
    from ..engine.resolvers import register
    from ..signals import consent_changed
    from . import catalog, consent, installation, webhooks

    register(webhooks.SOURCE, webhooks.resolve)  # deliveries are normalized with the shop's settings in the worker
    register_hold(installation.hold_reason)  # an uninstalled App (or a refused token) sends nothing
    consent_changed.connect(consent.write_back, dispatch_uid=CONSENT_UID)
    register_catalog(catalog.lookup)  # storefront events show Saleor's own product data in mail, asked with the token


def disconnect():
    from ..catalog import register_catalog
    from ..engine.holds import unregister_hold
    from ..signals import consent_changed
    from . import installation

    unregister_hold(installation.hold_reason)
    register_catalog(None)
    consent_changed.disconnect(dispatch_uid=CONSENT_UID)


CONSENT_UID = "saleor-flows-consent-to-saleor-app"


class SaleorAppConfig(AppConfig):
    """App mode: add ``saleor_flows.saleor_app`` to ``INSTALLED_APPS`` after ``saleor_flows``."""

    name = "saleor_flows.saleor_app"
    label = "saleor_flows_app"
    verbose_name = "Saleor Flows (Saleor App mode)"

    def ready(self):
        connect()
