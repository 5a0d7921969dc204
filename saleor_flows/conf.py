"""Settings for saleor-flows, read from ``settings.SALEOR_FLOWS`` (a dict).

Every key has a default so that a host only sets what it needs. The Saleor
plugin fills these from its own configuration; tests and the demo set them in
their settings modules.
"""

from django.conf import settings

DEFAULTS = {
    # Who marketing and staff emails come from.
    "FROM_EMAIL": None,  # None: Django's DEFAULT_FROM_EMAIL
    "REPLY_TO": None,
    # Domain used in our Message-ID headers.
    "MESSAGE_ID_DOMAIN": "saleor-flows.local",
    # Data every template can use as {{ shop.* }}.
    "SHOP": {"name": "Our shop", "url": "https://example.com", "logo_url": "", "currency": "USD"},
    # SMS backend, a dotted path in the spirit of EMAIL_BACKEND.
    "SMS_BACKEND": "saleor_flows.channels.sms.console.SmsBackend",
    "SMS_FROM": "",
    # How the engine hands work to workers: "celery" (tasks on the host's
    # Celery app) or "inline" (run in the calling process; demo and tests).
    "TASK_MODE": "celery",
    # Sweep: how many due executions one claim takes, and how many go into one task.
    "SWEEP_BATCH_SIZE": 1000,
    "SWEEP_CHUNK_SIZE": 50,
    # A claimed execution whose task never started is handed out again after this.
    "CLAIM_LEASE_SECONDS": 300,
    # A send still in `sending` after this is marked ambiguous, never resent.
    "SENDING_LEASE_SECONDS": 600,
    # An event still pending after this is enqueued again (its enqueue was lost).
    "EVENT_REQUEUE_SECONDS": 60,
    # Outgoing webhook steps.
    "WEBHOOK_TIMEOUT_SECONDS": 10,
    "WEBHOOK_MAX_ATTEMPTS": 5,
    "WEBHOOK_BACKOFF_SECONDS": 30,
    # A checkout with an email and lines that sees no activity for this long is abandoned.
    "ABANDONED_CHECKOUT_IDLE_MINUTES": 60,
    # No order for this many days: the contact has lapsed (the win-back trigger).
    "LAPSED_AFTER_DAYS": 90,
    # The custom field (contact.attributes.<name>) holding a birthday as YYYY-MM-DD.
    "BIRTHDAY_ATTRIBUTE": "birthday",
    # Contacts' timezone when their profile has none.
    "DEFAULT_TIMEZONE": "UTC",
    # Marketing only (transactional and staff messages bypass these; see engine/gate.py):
    # at most one marketing message per channel per this many hours (0/None: no cap),
    "FREQUENCY_CAP_HOURS": {"email": 16, "sms": 24},
    # no marketing message inside these local hours of the contact ("HH:MM-HH:MM", None: none),
    "QUIET_HOURS": {"sms": "21:00-08:00", "email": None},
    # and a message held back longer than this past its due time is dropped as stale
    # (a flow or send step may set its own "stale_after").
    "STALE_AFTER_HOURS": 72,
    # Sender per Saleor channel (the trigger event's channel):
    # {"<channel-slug>": {"from_email", "reply_to", "sms_from"}}; missing keys fall back
    # to FROM_EMAIL / REPLY_TO / SMS_FROM.
    "SENDERS": {},
    # Marketing and transactional mail kept apart: per kind ("marketing", "transactional",
    # "staff") an optional {"from_email", "reply_to", "headers", "tags", "esp_extra", "smtp"}.
    "MESSAGE_STREAMS": {},


    # An SMTP server for our mail instead of the host's EMAIL_BACKEND:
    # {"host", "port", "username", "password", "use_tls", "use_ssl"}.
    "SMTP": None,
    # Where the shop's public pages live (links in emails, unsubscribe).
    "PUBLIC_URL": "",
    # Host edges: the user metadata key where storefronts store marketing consent,
    # and the storefront link back to a checkout ("{token}" is replaced).
    "CONSENT_METADATA_KEY": "marketing_consent",
    "CHECKOUT_URL_TEMPLATE": "",
}

# Edges may add a source that overrides settings at run time, e.g. the Saleor
# plugin's configuration stored in Saleor's database. A source returns a dict.
_sources: list = []


def add_settings_source(source):
    if source not in _sources:
        _sources.append(source)


def flows_setting(name):
    for source in _sources:
        value = source().get(name)
        if value not in (None, ""):
            return value
    return getattr(settings, "SALEOR_FLOWS", {}).get(name, DEFAULTS[name])
