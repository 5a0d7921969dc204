"""The saleor-flows plugin: Saleor's hooks in, normalized events out.

Each hook records one event (one INSERT of a reference to the object,
processing enqueued on commit) and returns ``previous_value`` untouched;
Saleor's full payload is built in the worker (``payloads.resolve``). Hooks run in the shopper's request and
Saleor does not catch plugin exceptions, so nothing here may raise: a
failure is logged and the request goes on.
"""

import logging

from django.http import JsonResponse
from django.utils import timezone
from saleor.core.db.connection import allow_writer
from saleor.plugins.base_plugin import BasePlugin, ConfigurationTypeField

from ..events import record_event
from .. import urls
from . import payloads
from .config import PLUGIN_ID, configuration_errors

logger = logging.getLogger(__name__)

FIELDS = [
    ("sender_name", ConfigurationTypeField.STRING, "Sender name", "Shown as the sender of flow emails."),
    ("sender_address", ConfigurationTypeField.STRING, "Sender address",
     "The From address of flow emails (empty: Saleor's DEFAULT_FROM_EMAIL)."),
    ("reply_to", ConfigurationTypeField.STRING, "Reply-to address", "Where customers' replies go."),
    ("abandoned_checkout_idle_minutes", ConfigurationTypeField.STRING, "Abandoned checkout after (minutes)",
     "A checkout with an email and lines that sees no change for this long counts as abandoned."),
    ("consent_metadata_key", ConfigurationTypeField.STRING, "Consent metadata key",
     "The user metadata key storefronts set to 'true'/'false' for email marketing consent."),
    ("tracking", ConfigurationTypeField.BOOLEAN, "Track opens and clicks",
     "Adds an open pixel and click redirects to marketing emails. Turn off when your email provider "
     "tracks opens and clicks itself; its events still arrive through its tracking webhook."),
    ("public_url", ConfigurationTypeField.STRING, "Public base URL",
     "The public URL of this Saleor API (for links in emails, e.g. unsubscribe)."),
    ("checkout_url_template", ConfigurationTypeField.STRING, "Storefront checkout link",
     "Link back to a checkout in abandoned-checkout emails; {token} is replaced, "
     "e.g. https://shop.example.com/checkout?checkout={token}"),
    ("product_url_template", ConfigurationTypeField.STRING, "Storefront product link",
     "Link to a product in emails (viewed, recommended and ordered products); {slug} is replaced, "
     "e.g. https://shop.example.com/products/{slug}/"),
    ("best_sellers_url", ConfigurationTypeField.STRING, "Best sellers page",
     "Where 'See our best sellers' leads: a path on the storefront or a full URL on the shop's own hosts "
     "(empty: /collections/best-sellers/)."),
    ("new_arrivals_url", ConfigurationTypeField.STRING, "New arrivals page",
     "Where 'Shop new arrivals' leads: a path on the storefront or a full URL on the shop's own hosts "
     "(empty: /collections/new-arrivals/)."),
    ("public_key", ConfigurationTypeField.STRING, "Storefront public key",
     "Storefronts send this key with signup forms (POST /plugins/global/saleor.flows/subscribe/) and with the "
     "API's trackEvent mutation. It is not a secret "
     "(it sits in your storefront's pages); empty turns signups off. Any hard-to-guess text, e.g. pk_live_7f3c..."),
    ("subscribe_allowed_origins", ConfigurationTypeField.STRING, "Storefront origins",
     "Origins allowed to call the subscribe endpoint from a browser, separated by spaces or commas, "
     "e.g. https://shop.example.com"),
    ("double_opt_in", ConfigurationTypeField.BOOLEAN, "Double opt-in",
     "Storefront email signups get a confirmation email and count as subscribed only once the link is clicked."),
    ("new_subscriber_notify", ConfigurationTypeField.STRING, "Tell staff about new subscribers",
     "Staff addresses (separated by spaces or commas) that get a short email for every new subscriber. "
     "Only active staff users' addresses get it."),
    ("unsubscribe_mailto", ConfigurationTypeField.STRING, "Unsubscribe mailbox",
     "Optional: an address added to List-Unsubscribe as mailto: next to the one-click link."),
    ("default_language", ConfigurationTypeField.STRING, "Default language",
     "Language of the unsubscribe and preference pages when the customer's own is not available (en, de)."),
    ("api_allowed_origins", ConfigurationTypeField.STRING, "API allowed origins",
     "Comma-separated origins (e.g. the Flows dashboard App's) allowed to call "
     "/plugins/global/saleor.flows/graphql/ from a browser."),
    ("smtp_host", ConfigurationTypeField.STRING, "SMTP host (optional)",
     "Send flow emails through this SMTP server instead of Saleor's email backend."),
    ("smtp_port", ConfigurationTypeField.STRING, "SMTP port", "Usually 587."),
    ("smtp_user", ConfigurationTypeField.STRING, "SMTP user", ""),
    ("smtp_password", ConfigurationTypeField.PASSWORD, "SMTP password", ""),
    ("smtp_use_tls", ConfigurationTypeField.BOOLEAN, "SMTP STARTTLS", ""),
    ("sms_backend", ConfigurationTypeField.STRING, "SMS provider",
     "console (print only), twilio, vonage or aws. See docs/sms.md for the webhook URLs to set at the provider."),
    ("sms_account", ConfigurationTypeField.STRING, "SMS account",
     "Twilio Account SID, Vonage API key or AWS access key ID."),
    ("sms_secret", ConfigurationTypeField.PASSWORD, "SMS secret",
     "Twilio Auth Token, Vonage API secret or AWS secret access key."),
    ("sms_signature_secret", ConfigurationTypeField.PASSWORD, "SMS webhook signature secret (Vonage)",
     "Vonage's signature secret: verifies its status and inbound webhooks."),
    ("sms_region", ConfigurationTypeField.STRING, "AWS region (SMS)", "e.g. eu-central-1."),
    ("sms_configuration_set", ConfigurationTypeField.STRING, "AWS configuration set (SMS)",
     "Its event destination is the SNS topic that reports delivery."),
    ("sms_sns_topic_arns", ConfigurationTypeField.STRING, "AWS SNS topics (SMS)",
     "Comma-separated ARNs of the topics whose notifications are accepted (delivery events, replies)."),
    ("sms_sender", ConfigurationTypeField.STRING, "SMS sender",
     "Default sender: a number in E.164 (+15551234567), an alphanumeric sender ID, or a Twilio "
     "Messaging Service SID (MG...)."),
    ("sms_senders", ConfigurationTypeField.STRING, "SMS sender per channel",
     "channel-slug=sender pairs, comma-separated, e.g. default-channel=+15551234567, de=MyShop."),
    ("phone_region", ConfigurationTypeField.STRING, "Default phone region",
     "Two-letter country code for reading national phone numbers (e.g. DE); empty: only +numbers."),
]
# Flow-level settings (quiet hours, marketing caps, senders per channel, email topics) are not here: merchants
# set them in the Dashboard App's Settings (flowSettingsUpdate, stored in our table). Values a shop saved in
# the fields this plugin had before are still read (config.as_engine_settings), below the App's.
DEFAULTS = {"abandoned_checkout_idle_minutes": "60",
            "consent_metadata_key": "marketing_consent", "tracking": True, "smtp_use_tls": True,
            "double_opt_in": False, "default_language": "en", "sms_backend": "console"}


class FlowsPlugin(BasePlugin):
    PLUGIN_ID = PLUGIN_ID
    PLUGIN_NAME = "Flows"
    PLUGIN_DESCRIPTION = (
        "Marketing automation: welcome series, abandoned checkout, post-purchase and your own "
        "email/SMS journeys, triggered by this store's events."
    )
    CONFIGURATION_PER_CHANNEL = False
    DEFAULT_ACTIVE = False
    DEFAULT_CONFIGURATION = [{"name": name, "value": DEFAULTS.get(name, "")} for name, *_ in FIELDS]
    CONFIG_STRUCTURE = {name: {"type": kind, "label": label, "help_text": help_text}
                        for name, kind, label, help_text in FIELDS}

    @classmethod
    def validate_plugin_configuration(cls, plugin_configuration, **kwargs):
        """Values of the former flow-level fields still stored are checked when saved, not found broken at send time."""
        from django.core.exceptions import ValidationError
        from saleor.plugins.error_codes import PluginErrorCode

        config = {item["name"]: item.get("value") for item in plugin_configuration.configuration or []}
        errors = configuration_errors(config)
        if errors:
            raise ValidationError({name: ValidationError(message, code=PluginErrorCode.INVALID.value)
                                   for name, message in errors.items()})

    def _record(self, hook: str, instance):
        """One INSERT of a reference event; Saleor's payload is built later, in the worker."""
        if not self.active:
            return
        try:
            event = payloads.describe(hook, instance, now=timezone.now())
            if event:
                with allow_writer():
                    record_event(**event)
        except Exception:
            logger.exception("saleor-flows: could not record %s; the request goes on", hook)

    # Customers and accounts
    def customer_created(self, customer, *args, previous_value=None, **kwargs):
        self._record("customer_created", customer)
        return previous_value

    def customer_updated(self, customer, *args, previous_value=None, **kwargs):
        self._record("customer_updated", customer)
        return previous_value

    def customer_metadata_updated(self, customer, *args, previous_value=None, **kwargs):
        self._record("customer_metadata_updated", customer)
        return previous_value

    def account_confirmed(self, user, *args, previous_value=None, **kwargs):
        self._record("account_confirmed", user)
        return previous_value

    def customer_deleted(self, customer, *args, previous_value=None, **kwargs):
        self._record("customer_deleted", customer)
        return previous_value

    def account_deleted(self, user, *args, previous_value=None, **kwargs):
        self._record("account_deleted", user)
        return previous_value

    # Checkouts
    def checkout_created(self, checkout, *args, previous_value=None, **kwargs):
        self._record("checkout_created", checkout)
        return previous_value

    def checkout_updated(self, checkout, *args, previous_value=None, **kwargs):
        self._record("checkout_updated", checkout)
        return previous_value

    def checkout_fully_paid(self, checkout, *args, previous_value=None, **kwargs):
        self._record("checkout_fully_paid", checkout)
        return previous_value

    def checkout_metadata_updated(self, checkout, *args, previous_value=None, **kwargs):
        # Storefronts store the checkout page's newsletter box here (updateMetadata on the checkout).
        self._record("checkout_metadata_updated", checkout)
        return previous_value

    # Orders and fulfilments
    def order_created(self, order, *args, previous_value=None, **kwargs):
        self._record("order_created", order)
        return previous_value

    def order_confirmed(self, order, *args, previous_value=None, **kwargs):
        self._record("order_confirmed", order)
        return previous_value

    def order_paid(self, order, *args, previous_value=None, **kwargs):
        self._record("order_paid", order)
        return previous_value

    def order_fully_paid(self, order, *args, previous_value=None, **kwargs):
        self._record("order_fully_paid", order)
        return previous_value

    def order_fulfilled(self, order, *args, previous_value=None, **kwargs):
        self._record("order_fulfilled", order)
        return previous_value

    def order_cancelled(self, order, *args, previous_value=None, **kwargs):
        self._record("order_cancelled", order)
        return previous_value

    def order_refunded(self, order, *args, previous_value=None, **kwargs):
        self._record("order_refunded", order)
        return previous_value

    def order_fully_refunded(self, order, *args, previous_value=None, **kwargs):
        self._record("order_fully_refunded", order)
        return previous_value

    def order_metadata_updated(self, order, *args, previous_value=None, **kwargs):
        self._record("order_metadata_updated", order)
        return previous_value

    def fulfillment_created(self, fulfillment, *args, previous_value=None, **kwargs):
        self._record("fulfillment_created", fulfillment)
        return previous_value

    def webhook(self, request, path, previous_value=None, **kwargs):
        """Our HTTP endpoints under /plugins/global/saleor.flows/: the routes of ``saleor_flows.urls``."""
        if path.strip("/") == "health":
            return JsonResponse({"plugin": PLUGIN_ID, "active": self.active})
        return urls.serve(request, path)
