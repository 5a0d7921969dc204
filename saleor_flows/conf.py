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
    # Seconds an SMTP server may stay silent before the send counts as failed, when the
    # host's EMAIL_TIMEOUT (or the SMTP setting's "timeout") is unset: never wait for ever.
    "SMTP_TIMEOUT_SECONDS": 30,
    # Data every template can use as {{ shop.* }}.
    "SHOP": {"name": "Our shop", "url": "https://example.com", "logo_url": "", "currency": "USD"},
    # SMS backend, a dotted path in the spirit of EMAIL_BACKEND.
    "SMS_BACKEND": "saleor_flows.channels.sms.console.SmsBackend",
    "SMS_FROM": "",
    # SMS sender per Saleor channel slug (a number in E.164 or an alphanumeric
    # sender ID); a channel not listed uses SMS_FROM.
    "SMS_SENDERS": {},
    # Provider credentials for the Twilio, Vonage and AWS backends (see docs/sms.md):
    # {"account", "secret", "signature_secret", "region", "configuration_set", "base_url"}.
    "SMS_PROVIDER": {},
    "SMS_TIMEOUT_SECONDS": 10,
    # Signed status/inbound webhooks older than this are refused (JWT iat, SNS Timestamp).
    "SMS_WEBHOOK_MAX_AGE_SECONDS": 3600,
    # Where AWS SNS signing certificates are fetched from and subscriptions confirmed
    # (a regular expression on the URL): AWS's own hosts only.
    "SMS_SNS_URL_PATTERN": r"^https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/",
    # Answer STOP/START/HELP texts (off when the provider answers keywords itself).
    "SMS_KEYWORD_REPLIES": True,
    # Replies to STOP/START/HELP per language, overriding the built-in en/de texts:
    # {"en": {"stop": "...", "start": "...", "help": "..."}}; {shop} and {support} are filled in.
    "SMS_REPLIES": {},
    # Region for reading national phone numbers ("DE": 0151 1234567 → +49151...); "" reads only +-numbers.
    "PHONE_REGION": "",
    # How the engine hands work to workers: "celery" (tasks on the host's
    # Celery app) or "inline" (run in the calling process; demo and tests).
    "TASK_MODE": "celery",
    # Celery queues per kind of work: {"events": "flows-events", "sends": "flows-sends"}. Empty (the
    # default): everything goes to the host's default queue, which a plain `celery worker` consumes.
    # Set it only together with workers that consume these queues (docs/operations.md).
    "TASK_QUEUES": {},
    # Sweep: how many due executions one claim takes, and how many go into one task.
    "SWEEP_BATCH_SIZE": 1000,
    "SWEEP_CHUNK_SIZE": 50,
    # Send steps of a chunk go out in windows: each window is decided under its contacts' locks and
    # committed as `sending` in one transaction, then handed to one open connection message by message.
    # A worker killed mid-window leaves at most this many messages `ambiguous` (never resent); the
    # chunk's later windows are still `claimed` and are sent after the lease.
    "SEND_WINDOW": 10,
    # A claimed execution whose task never started is handed out again after this.
    "CLAIM_LEASE_SECONDS": 300,
    # The sweep leases no more than this many due steps ahead of the workers (PostgreSQL): leases
    # still running count against it. Above what the workers send in CLAIM_LEASE_SECONDS, a long
    # drain's leases would run out while their tasks wait in the broker, and be leased and queued
    # again; below what they send in one sweep interval, the workers wait for the sweep.
    "SWEEP_MAX_LEASED": 20_000,
    # A send still in `sending` after this is marked ambiguous, never resent.
    "SENDING_LEASE_SECONDS": 600,
    # An event still pending after this is enqueued again (its enqueue was lost).
    "EVENT_REQUEUE_SECONDS": 60,
    # Outgoing webhook steps.
    "WEBHOOK_TIMEOUT_SECONDS": 10,
    "WEBHOOK_MAX_ATTEMPTS": 5,
    "WEBHOOK_BACKOFF_SECONDS": 30,
    # Webhook targets allowed although they are not public internet addresses (docs/security.md):
    # host names (exact, e.g. "crm.internal") and networks ("10.20.0.0/16", "127.0.0.1/32").
    # Read from Django settings only, never from the plugin configuration (which MANAGE_PLUGINS edits).
    "WEBHOOK_ALLOWED_TARGETS": [],
    # Staff notifications (notify_staff steps, NEW_SUBSCRIBER_NOTIFY) go only to staff addresses:
    # inside Saleor its active staff users' emails, plus these (Django settings only, like the above).
    "STAFF_NOTIFY_RECIPIENTS": [],
    # A checkout with an email and lines that sees no activity for this long is abandoned.
    "ABANDONED_CHECKOUT_IDLE_MINUTES": 60,
    # No order for this many days: the contact has lapsed (the win-back trigger).
    "LAPSED_AFTER_DAYS": 90,
    # The custom field (contact.attributes.<name>) holding a birthday as YYYY-MM-DD.
    "BIRTHDAY_ATTRIBUTE": "birthday",
    # Contacts' timezone when their profile has none.
    "DEFAULT_TIMEZONE": "UTC",
    # Attribution: an order is credited to the flow message last clicked within this many days
    # before it; opens count too within this many hours (0: opens never earn credit).
    "ATTRIBUTION_WINDOW_DAYS": 5,
    "ATTRIBUTION_OPEN_WINDOW_HOURS": 0,
    # Orders within this many days of entering a flow are its conversions (both for treated
    # and held-out contacts); held-out enrolments end after it.
    "CONVERSION_WINDOW_DAYS": 30,
    # Counting changes folded into the report's rollup per statement.
    "ROLLUP_BATCH_SIZE": 200000,
    # Data lifecycle (engine/retention.py, docs/retention.md): days to keep each kind of row, pruned
    # nightly in small batches. None keeps them forever. Consent changes and suppressions are never pruned.
    "RETENTION_EVENT_DAYS": 90,  # processed events (payloads); pending events are never pruned
    "RETENTION_DEAD_EVENT_DAYS": 180,  # dead-lettered events, kept longer so they can be replayed
    # A pruned event's dedupe key is kept as a 64-character digest this long after the event was
    # received: a re-delivery of it (host retries, a replayed webhook, a re-import) still counts as a duplicate.
    "RETENTION_DEDUPE_DAYS": 365,
    "RETENTION_TRAIL_DAYS": 180,  # why-trail rows, except those of journeys still running
    # Finished enrolments with their step executions, trail and conversions (a compact PastEntry row
    # per flow and contact keeps the re-entry rules exact). Versions with a holdout group keep theirs.
    "RETENTION_ENROLMENT_DAYS": 180,
    "RETENTION_MESSAGE_DAYS": 180,  # sent messages (no bodies are stored: see docs/retention.md)
    "RETENTION_MESSAGE_EVENT_DAYS": 180,  # delivery and engagement events of messages
    "RETENTION_SIMULATION_DAYS": 30,  # finished dry runs and their results
    # Rows deleted per transaction (one short DELETE by primary-key range each).
    "RETENTION_BATCH_SIZE": 5000,
    # Marketing only (transactional and staff messages bypass these; see engine/gate.py):
    # at most one marketing message per channel per this many hours (0/None: no cap),
    "FREQUENCY_CAP_HOURS": {"email": 16, "sms": 24},
    # High-intent messages (flows with "frequency_cap": "high_intent": cart, browse and stock
    # reminders) skip that cap but have a short one among themselves, so two reminders never
    # land within a few hours.
    "HIGH_INTENT_CAP_HOURS": {"email": 4, "sms": 12},
    # no marketing message inside these local hours of the contact ("HH:MM-HH:MM", None: none),
    "QUIET_HOURS": {"sms": "21:00-08:00", "email": None},
    # and a message held back longer than this past its due time is dropped as stale
    # (a flow or send step may set its own "stale_after").
    "STALE_AFTER_HOURS": 72,
    # Smart send time (wait_best_time steps, engine/send_time.py): the engagement history read,
    # and how many opens/clicks a contact needs before their own best hour is trusted.
    "SEND_TIME_HISTORY_DAYS": 180,
    "SEND_TIME_MIN_ENGAGEMENTS": 3,
    # Sender per Saleor channel (the trigger event's channel):
    # {"<channel-slug>": {"from_email", "reply_to", "sms_from"}}; missing keys fall back
    # to SMS_SENDERS (SMS only) and FROM_EMAIL / REPLY_TO / SMS_FROM.
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
    # Who may receive marketing email (docs/consent.md): "opt_in" (explicit consent, as in the EU),
    # "soft_opt_in" (also customers who bought and never objected: ePrivacy art. 13(2)) or "opt_out"
    # (anyone not unsubscribed or suppressed, as CAN-SPAM allows). A string for the whole shop or
    # {"default": ..., "<saleor-channel-slug>": ...}. Marketing SMS always needs explicit consent.
    "CONSENT_POLICY": "opt_in",
    "CHECKOUT_URL_TEMPLATE": "",
    # Consent and the public pages (docs/consent.md).
    # The key storefront signup forms send to POST subscribe/ (public, not a secret; empty: endpoint off).
    "PUBLIC_KEY": "",
    # Storefront origins allowed to call subscribe/ from a browser (CORS), e.g. ["https://shop.example.com"].
    "SUBSCRIBE_ALLOWED_ORIGINS": [],
    # Requests to subscribe/ allowed per hour from one IP address, and for one email address or phone number.
    "SUBSCRIBE_RATE_PER_IP": 20,
    "SUBSCRIBE_RATE_PER_ADDRESS": 5,
    # Storefront signups confirm their email address through a signed link before they count as subscribed.
    "DOUBLE_OPT_IN": False,
    # How long a double opt-in confirmation link works.
    "OPT_IN_CONFIRM_DAYS": 30,
    # Staff addresses told about every new subscriber (one short email each).
    "NEW_SUBSCRIBER_NOTIFY": [],
    # A mailbox for List-Unsubscribe's mailto: variant (next to the one-click HTTPS link), e.g. "unsubscribe@shop.example.com".
    "UNSUBSCRIBE_MAILTO": "",
    # The shop's email topics for the preference centre: [{"key": "newsletter", "label": {"en": "Newsletter", "de": "Newsletter"}}].
    "TOPICS": [],
    # Language of the public pages and consent emails when the contact's own is unknown or not available.
    "DEFAULT_LANGUAGE": "en",
    # GraphQL API (see docs/api.md). Tokens are verified against Saleor's key set:
    # API_JWKS_URL (e.g. https://store.example.com/.well-known/jwks.json) or a
    # JWKS dict in API_JWKS; API_TOKEN_ISSUER is the store's /graphql/ URL
    # (derived from API_JWKS_URL when empty). Inside Saleor, Saleor's own keys are used.
    "API_JWKS_URL": "",
    "API_JWKS": None,
    "API_TOKEN_ISSUER": "",
    "API_JWKS_TIMEOUT_SECONDS": 5,
    "API_JWKS_CACHE_SECONDS": 3600,
    # Origins (e.g. the dashboard App's) allowed to call the API from a browser.
    "API_ALLOWED_ORIGINS": [],
    # The Dashboard App (docs/api.md, README "Dashboard (Saleor App)"). Outside Saleor: the store's /graphql/
    # URL allowed to install the App (empty: API_TOKEN_ISSUER); inside Saleor, Saleor's own URL is used.
    "APP_SALEOR_API_URL": "",
    # App mode (saleor_app/, docs/app-mode.md): the largest webhook delivery accepted, and how old a delivery
    # (its issuedAt) may be before it is refused as stale. Saleor's own retries end within minutes.
    "APP_WEBHOOK_MAX_BYTES": 512 * 1024,
    # Where the instance's signing keys are fetched (empty: <APP_SALEOR_API_URL's origin>/.well-known/jwks.json).
    "APP_SALEOR_JWKS_URL": "",
    "APP_WEBHOOK_MAX_AGE_SECONDS": 24 * 3600,
    # Calls to Saleor's GraphQL API with the App token (saleor_app/client.py): timeout and attempts.
    "APP_GRAPHQL_TIMEOUT_SECONDS": 10,
    "APP_GRAPHQL_ATTEMPTS": 3,
    # Who may embed the App's pages in a frame (CSP frame-ancestors): "*" or a list of origins,
    # e.g. ["https://dashboard.shop.example"] when the Dashboard is self-hosted.
    "DASHBOARD_FRAME_ANCESTORS": "*",
    # Bounds on every GraphQL document, checked before it is validated or run (api/limits.py,
    # docs/api.md): its size, tokens, operations, fields (aliases and fragments expanded), depth,
    # and cost (about a millisecond of work per unit: expensive fields weigh more, a connection's
    # `first` multiplies what is under it).
    "API_QUERY_MAX_BYTES": 50_000,
    "API_QUERY_MAX_TOKENS": 5_000,
    "API_QUERY_MAX_OPERATIONS": 10,
    "API_QUERY_MAX_FIELDS": 500,
    # Fields answering under the same name in one selection (repeats, aliases, fragments): graphql-core
    # compares them pairwise.
    "API_QUERY_MAX_SAME_NAME_FIELDS": 25,
    "API_QUERY_MAX_DEPTH": 15,
    "API_QUERY_MAX_COST": 5_000,
    # Schema introspection (__schema, __type) for callers without a token; staff and Apps may always.
    "API_INTROSPECTION_ANONYMOUS": False,
    # trackEvent calls allowed per client IP per minute.
    "TRACK_RATE_LIMIT_PER_MINUTE": 120,
    # Our open pixel and click redirect in marketing emails (docs/tracking.md). Turn off when the
    # ESP tracks opens and clicks itself (its events still arrive through anymail's webhooks).
    "TRACKING": True,
    # Transactional mail is not tracked unless this is on (privacy; deliverability).
    "TRACKING_TRANSACTIONAL": False,
    # An open or click this soon after sending is a machine's (privacy proxy, security scanner).
    "TRACKING_MACHINE_SECONDS": 5,
    # Hosts a link whose host is itself a placeholder ("{{ event.checkout_url }}") may lead to
    # through our redirect, besides the shop's and PUBLIC_URL's. Other such links stay untracked.
    "TRACKING_REDIRECT_HOSTS": [],
    # Storefront data in mail (docs/security.md). A callable ("module.function") that looks products up
    # by id for trackEvent: lookup(product_id=, variant_id=, channel=) -> {product_name, product_url, ...} | None.
    # The Saleor plugin registers its own (Saleor's products); empty: storefront values are cleaned instead.
    "CATALOG": "",
    # The storefront's product page for links built from the catalog ("{slug}" and "{id}" are replaced),
    # e.g. "https://shop.example.com/products/{slug}/"; empty: product emails link to the shop.
    "PRODUCT_URL_TEMPLATE": "",
    # Recommendations (engine/recommendations.py, docs/recommendations.md): two products count as
    # "bought together" once at least this many orders held both.
    "RECOMMENDATION_MIN_SUPPORT": 2,
    # Listings the prebuilt journeys link to ({{ shop.best_sellers_url }}, {{ shop.new_arrivals_url }}):
    # full URLs on the storefront, or paths under the SHOP url; defaults are Saleor storefront collection pages.
    "BEST_SELLERS_URL": "/collections/best-sellers/",
    "NEW_ARRIVALS_URL": "/collections/new-arrivals/",
    # Hosts (e.g. a CDN for product images) that storefront-supplied links and images may point to,
    # besides the shop's (SHOP url) and PUBLIC_URL's. Any other link or image from a storefront is dropped.
    "STOREFRONT_URL_HOSTS": [],
}

# Edges may add a source that overrides settings at run time, e.g. the Saleor
# plugin's configuration stored in Saleor's database. A source returns a dict.
_sources: list = []


def add_settings_source(source, *, first=False):
    """``first``: this source wins over those added before (the flow settings stored in our table do)."""
    if source not in _sources:
        _sources.insert(0, source) if first else _sources.append(source)


def deployment_setting(name):
    """A setting only whoever deploys the host may set: ``SALEOR_FLOWS`` alone, never a settings source.

    For what guards the shop against its own staff (the plugin configuration
    is editable by anyone with MANAGE_PLUGINS).
    """
    return getattr(settings, "SALEOR_FLOWS", {}).get(name, DEFAULTS[name])


def flows_setting(name):
    for source in _sources:
        value = source().get(name)
        if value not in (None, ""):
            return value
    return getattr(settings, "SALEOR_FLOWS", {}).get(name, DEFAULTS[name])
