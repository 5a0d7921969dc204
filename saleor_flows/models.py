"""Tables of saleor-flows.

Effectively-once lives here as constraints, not as hopes: an event is stored
once per dedupe key, an enrolment once per (flow, contact, trigger event), a
step execution once per (enrolment, step, occurrence). State changes are
conditional UPDATEs on these rows (see ``engine/runner.py``).
"""

from decimal import Decimal

from django.db import models
from django.db.models import Q

from .fields import CONTACT_FIELDS


class Event(models.Model):
    """A normalized event from any edge (Saleor hooks, App webhooks, storefront, API)."""

    class Status(models.TextChoices):
        PENDING = "pending"
        PROCESSED = "processed"
        DEAD = "dead"  # kept with a reason, never lost

    name = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    email = models.CharField(max_length=254, blank=True, default="")
    user_id = models.CharField(max_length=100, blank=True, default="")
    channel = models.CharField(max_length=100, blank=True, default="")
    payload = models.JSONField(default=dict)
    dedupe_key = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(blank=True, default="")
    # Indexed by flows_event_history (contact, name, occurred_at); no index of its own.
    contact = models.ForeignKey("Contact", null=True, blank=True, on_delete=models.SET_NULL, related_name="events",
                                db_index=False)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["contact", "name", "occurred_at"], name="flows_event_history"),
            models.Index(fields=["received_at"], name="flows_event_pending", condition=Q(status="pending")),
        ]

    def __str__(self):
        return f"{self.name} #{self.pk} ({self.status})"


class Contact(models.Model):
    """One person, keyed by normalized email, linked to the host's user id when known."""

    class Consent(models.TextChoices):
        SUBSCRIBED = "subscribed"
        UNSUBSCRIBED = "unsubscribed"
        NEVER = "never"  # never asked
        PENDING = "pending"  # double opt-in: asked, confirmation link not clicked yet

    email = models.CharField(max_length=254, unique=True, null=True, blank=True)
    user_id = models.CharField(max_length=100, unique=True, null=True, blank=True)
    phone = models.CharField(max_length=32, blank=True, default="")
    first_name = models.CharField(max_length=150, blank=True, default="")
    last_name = models.CharField(max_length=150, blank=True, default="")
    locale = models.CharField(max_length=35, blank=True, default="")
    timezone = models.CharField(max_length=64, blank=True, default="")
    attributes = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    lists = models.JSONField(default=list, blank=True)

    email_consent = models.CharField(max_length=16, choices=Consent.choices, default=Consent.NEVER)
    email_consent_source = models.CharField(max_length=64, blank=True, default="")
    email_consent_at = models.DateTimeField(null=True, blank=True)
    sms_consent = models.CharField(max_length=16, choices=Consent.choices, default=Consent.NEVER)
    sms_consent_source = models.CharField(max_length=64, blank=True, default="")
    sms_consent_at = models.DateTimeField(null=True, blank=True)
    # Preference centre: topics the contact opted out of, "at most one marketing
    # message per day/week/month" ("" = no limit of their own), and a pause.
    unsubscribed_topics = models.JSONField(default=list, blank=True)
    frequency = models.CharField(max_length=16, blank=True, default="")
    paused_until = models.DateTimeField(null=True, blank=True)

    # The email address is suppressed (a cache of its Suppression row, see engine/suppression.py).
    suppressed = models.BooleanField(default=False)
    suppressed_reason = models.CharField(max_length=64, blank=True, default="")
    suppressed_at = models.DateTimeField(null=True, blank=True)

    order_count = models.PositiveIntegerField(default=0)
    total_spent = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    currency = models.CharField(max_length=3, blank=True, default="")
    first_order_at = models.DateTimeField(null=True, blank=True)
    last_order_at = models.DateTimeField(null=True, blank=True)
    # Predictions from order history, refitted nightly (engine/predictive.py); null before the first fit.
    predicted_next_order_at = models.DateTimeField(null=True, blank=True)
    churn_risk = models.FloatField(null=True, blank=True)  # P(no order in the next 90 days)
    predicted_clv = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)  # next 365 days
    predicted_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self):
        return self.email or f"user {self.user_id}"

    @property
    def historic_clv(self) -> Decimal:
        """What the customer has spent so far: always current, so not stored twice."""
        return self.total_spent

    def as_context(self) -> dict:
        """The contact as plain JSON-like data: what conditions and templates see."""
        data = {name: getattr(self, name) for name in CONTACT_FIELDS}
        data["total_spent"] = data["historic_clv"] = float(self.total_spent)
        if self.predicted_clv is not None:
            data["predicted_clv"] = float(self.predicted_clv)
        return data


class Flow(models.Model):
    """A journey a merchant edits. Its ``definition`` is the draft; running contacts use versions."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        LIVE = "live"
        PAUSED = "paused"
        ARCHIVED = "archived"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    definition = models.JSONField(default=dict)
    trigger_event = models.CharField(max_length=100, blank=True, default="", db_index=True)
    live_version = models.ForeignKey(
        "FlowVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self):
        return self.name


class FlowVersion(models.Model):
    """An immutable published definition (templates compiled). Enrolments stay on theirs."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="versions", db_index=False)  # (flow, number)
    number = models.PositiveIntegerField()
    definition = models.JSONField()
    published_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "number"], name="flows_version_unique")]

    def __str__(self):
        return f"{self.flow} v{self.number}"


class Enrolment(models.Model):
    """One contact's journey through one flow version, started by one event."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"  # reached the end of the graph
        EXITED = "exited"  # exit criteria, exit step, goal, filter no longer matching
        CONVERTED = "converted"  # goal reached

    # Both lead composite indexes below; single-column ones would only cost writes (and mislead the planner).
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="enrolments", db_index=False)
    version = models.ForeignKey(FlowVersion, on_delete=models.PROTECT, related_name="enrolments")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="enrolments", db_index=False)
    trigger_event = models.ForeignKey(Event, on_delete=models.PROTECT, related_name="enrolments")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    exit_reason = models.CharField(max_length=64, blank=True, default="")
    # Held out of the flow (its holdout group): no steps run, but goals, exits
    # and orders are tracked so the report can compare (engine/analytics.py).
    holdout = models.BooleanField(default=False)
    entered_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["flow", "contact", "trigger_event"], name="flows_enrolment_once_per_event"
            )
        ]
        indexes = [
            models.Index(fields=["contact", "status"], name="flows_enrolment_contact"),
            models.Index(fields=["flow", "contact", "entered_at"], name="flows_enrolment_reentry"),
        ]


class StepExecution(models.Model):
    """One step of one enrolment, due at ``due_at``. The database is the clock."""

    class State(models.TextChoices):
        PENDING = "pending"  # waiting for due_at (or for an event)
        CLAIMED = "claimed"  # taken by a sweep or an inline run
        SENDING = "sending"  # committed before the provider is called
        SENT = "sent"
        DONE = "done"  # a step that sends nothing ran
        SKIPPED = "skipped"  # with a reason in `result`
        FAILED = "failed"
        AMBIGUOUS = "ambiguous"  # a send whose outcome is unknown: reported, never resent

    # Leads the unique (enrolment, step_id, occurrence) key.
    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="executions", db_index=False)
    step_id = models.CharField(max_length=100)
    occurrence = models.PositiveIntegerField(default=1)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    due_at = models.DateTimeField()
    # For "wait until an event happens": the awaited event's name while pending.
    waiting_for = models.CharField(max_length=100, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrolment", "step_id", "occurrence"], name="flows_execution_once"
            )
        ]
        # No index of pending rows by due time: the sweep claims from the due queue (DueExecution,
        # migration 0015), and such an index only cost a write on every insert and state change
        # (dropped by 0017; the demo's SQLite claims by scanning its few rows).
        indexes = [
            models.Index(fields=["claimed_at"], name="flows_execution_inflight",
                         condition=Q(state__in=["claimed", "sending"])),
            models.Index(fields=["waiting_for"], name="flows_execution_waiting",
                         condition=Q(state="pending") & ~Q(waiting_for="")),
        ]


class DueExecution(models.Model):
    """The sweep's queue: one narrow row per pending step execution (PostgreSQL only).

    Kept by triggers on the execution table (migration 0015), so no path that makes an
    execution pending, moves its ``due_at`` or takes it out of pending can forget it. The
    sweep claims here, not on the wide execution rows: it moves ``due_at`` on by the claim
    lease (a 16-byte row, two small indexes) and leaves the execution pending; the worker
    then flips the execution ``pending -> claimed`` with a conditional UPDATE
    (``runner.take``), which deletes this row. A claim whose task is lost becomes due again
    when its lease runs out. The demo's SQLite has no triggers: there the sweep claims on
    the execution rows directly and this table stays empty.
    """

    execution_id = models.BigIntegerField(primary_key=True)
    due_at = models.DateTimeField()
    # Set by the claim, cleared when the execution is rescheduled: the sweep counts the leases
    # still running (tasks waiting in the broker) on their own small index and leases no more
    # than SWEEP_MAX_LEASED, so a backlog longer than the lease is not leased and queued twice.
    leased = models.BooleanField(default=False, db_default=False)

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="flows_due_at"),
                   models.Index(fields=["due_at"], name="flows_due_leased", condition=Q(leased=True))]


class Message(models.Model):
    """An email or SMS the engine sent (or tried to). Engagement attaches here later."""

    class Channel(models.TextChoices):
        EMAIL = "email"
        SMS = "sms"

    class Status(models.TextChoices):
        SENDING = "sending"
        SENT = "sent"
        FAILED = "failed"
        AMBIGUOUS = "ambiguous"

    class Kind(models.TextChoices):
        MARKETING = "marketing"
        TRANSACTIONAL = "transactional"
        STAFF = "staff"

    send_id = models.UUIDField(unique=True)
    # Kept (anonymized) when a journey is erased, so a flow's report keeps its counts.
    execution = models.OneToOneField(
        StepExecution, null=True, blank=True, on_delete=models.SET_NULL, related_name="message"
    )
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages",
                                db_index=False)  # (contact, created_at)
    flow = models.ForeignKey(Flow, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages")
    step_id = models.CharField(max_length=100, blank=True, default="")
    channel = models.CharField(max_length=8, choices=Channel.choices)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.MARKETING)
    # Marketing only: the consent rule that let it out (engine/consent.marketing_basis: consent,
    # soft_opt_in, opt_out), counted by the reports; "" for other kinds and for sends before 0012.
    basis = models.CharField(max_length=16, blank=True, default="")
    # Sent under the high-intent cap (its step or flow said "frequency_cap": "high_intent"): what
    # that cap counts as the previous reminder (engine/gate.py).
    high_intent = models.BooleanField(default=False)
    is_test = models.BooleanField(default=False)  # a test send: never in analytics
    to = models.CharField(max_length=254)
    subject = models.CharField(max_length=255, blank=True, default="")
    message_id = models.CharField(max_length=255, blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SENDING)
    error = models.TextField(blank=True, default="")
    # The provider's own id (anymail's message_id, an SMS provider's sid), to match its events.
    provider_message_id = models.CharField(max_length=255, blank=True, default="")
    segments = models.PositiveSmallIntegerField(default=0)  # SMS parts billed
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    # Engagement, first time each happened (MessageEvent keeps every event).
    # opened_at counts human opens only; machine opens (privacy proxies,
    # scanners) go to machine_opened_at so reports can show them apart.
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    machine_opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    bounced_at = models.DateTimeField(null=True, blank=True)
    complained_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)  # rejected or undeliverable, per the provider

    class Meta:
        indexes = [
            models.Index(fields=["contact", "created_at"], name="flows_message_contact"),
            models.Index(fields=["provider_message_id"], name="flows_message_provider_id",
                         condition=~Q(provider_message_id="")),
        ]


class MessageEvent(models.Model):
    """A delivery or engagement event from a provider, our pixel or our redirect, stored once.

    Every edge (anymail's tracking signal, an SMS provider's status webhook,
    the open pixel, the click redirect) normalizes into this one vocabulary.
    """

    class Type(models.TextChoices):
        QUEUED = "queued"
        SENT = "sent"
        DELIVERED = "delivered"
        DEFERRED = "deferred"
        OPENED = "opened"
        CLICKED = "clicked"
        BOUNCED = "bounced"  # hard: the address does not work
        COMPLAINED = "complained"
        UNSUBSCRIBED = "unsubscribed"
        REJECTED = "rejected"
        FAILED = "failed"
        INBOUND = "inbound"  # an SMS reply (STOP, HELP, ...)

    # Null when no message of ours matches (kept for reconciling, e.g. an ambiguous send).
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    provider = models.CharField(max_length=32)  # "sendgrid", "twilio", "pixel", "redirect", ...
    # The provider's event id, or a digest of the event when it has none: ESPs retry.
    event_id = models.CharField(max_length=255)
    type = models.CharField(max_length=16, choices=Type.choices)
    machine = models.BooleanField(default=False)  # an open/click that looks machine-generated
    url = models.TextField(blank=True, default="")
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    detail = models.JSONField(default=dict, blank=True)  # reason, description, user agent, ...

    class Meta:
        constraints = [models.UniqueConstraint(fields=["provider", "event_id"], name="flows_message_event_once")]


class TrackedLink(models.Model):
    """A link of a published email, stored at publish time: click redirects carry only signed ids.

    ``url`` may hold template placeholders ({{ event.checkout_url }}); the
    redirect renders it for the message's contact, and only ever to http(s).
    """

    version = models.ForeignKey(FlowVersion, on_delete=models.CASCADE, related_name="links", db_index=False)
    step_id = models.CharField(max_length=100)
    url = models.TextField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "step_id", "url"], name="flows_link_once")]


class ConsentChange(models.Model):
    """Proof of consent: every change of a contact's consent, with its source and evidence."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="consent_changes", db_index=False)
    channel = models.CharField(max_length=8)  # "email" or "sms"
    status = models.CharField(max_length=16, choices=Contact.Consent.choices)
    # checkout, storefront_form, import, api, preference_centre, unsubscribe_link,
    # list_unsubscribe, provider_stop, provider_start, double_opt_in, complaint, host, ...
    source = models.CharField(max_length=64)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True, default="")
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["contact", "at"], name="flows_consent_contact")]


class Suppression(models.Model):
    """An address (email or phone) we must not contact, kept as a hash so it survives erasing the person.

    See ``engine/suppression.py`` for which reasons block which messages.
    """

    channel = models.CharField(max_length=8, default="email")  # "email" or "sms"
    address_hash = models.CharField(max_length=64)
    reason = models.CharField(max_length=64)
    source = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "address_hash"], name="flows_suppression_once")]


class StockAlert(models.Model):
    """A contact asked to be told when a sold-out variant is back."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="stock_alerts")
    variant_id = models.CharField(max_length=100)
    channel = models.CharField(max_length=100, blank=True, default="")
    payload = models.JSONField(default=dict)  # product name, url, thumbnail, price as asked
    created_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["contact", "variant_id"], condition=Q(notified_at__isnull=True),
                                               name="flows_stock_alert_open_once")]
        indexes = [models.Index(fields=["variant_id"], name="flows_stock_alert_open",
                                condition=Q(notified_at__isnull=True))]


class IdleTimer(models.Model):
    """A derived event that fires after a quiet period, e.g. "checkout abandoned" an hour after its last change.

    Every activity pushes ``due_at`` back; the order cancels it; the sweep
    fires the due ones as events (once per quiet period, by dedupe key).
    """

    class State(models.TextChoices):
        WAITING = "waiting"
        FIRED = "fired"
        CANCELLED = "cancelled"

    key = models.CharField(max_length=200, unique=True)
    event_name = models.CharField(max_length=100)
    email = models.CharField(max_length=254, blank=True, default="")
    user_id = models.CharField(max_length=100, blank=True, default="")
    channel = models.CharField(max_length=100, blank=True, default="")
    payload = models.JSONField(default=dict)
    last_activity_at = models.DateTimeField()
    due_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.WAITING)

    class Meta:
        indexes = [models.Index(fields=["due_at"], name="flows_timer_due", condition=Q(state="waiting"))]


class TrailEntry(models.Model):
    """The per-contact "why" trail: every enrolment, branch, wait, send, skip and exit."""

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="trail", db_index=False)  # (contact, at)
    enrolment = models.ForeignKey(Enrolment, null=True, blank=True, on_delete=models.CASCADE, related_name="trail")
    step_id = models.CharField(max_length=100, blank=True, default="")
    kind = models.CharField(max_length=32)
    detail = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["contact", "at"], name="flows_trail_contact")]
        ordering = ["at", "id"]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M} {self.kind} {self.step_id} {self.detail}"


class Simulation(models.Model):
    """A dry run of a draft over the stored events of the last ``days`` days (see ``engine/simulation.py``).

    The only row a simulation writes: no enrolment, step, message or trail.
    """

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="simulations")
    definition = models.JSONField()  # the draft as it was when the simulation was asked for
    days = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)  # 0..1
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)


# --- analytics (engine/analytics.py explains the design) ------------------------------

class StatDelta(models.Model):
    """Something countable happened (a send, a click, an exit...): appended by database triggers.

    Triggers on messages, enrolments, step executions and attributions write
    one row per change, whoever makes it (the engine, a tracking edge, an
    import), with the flow, version, step and branch it counts for;
    ``analytics.fold_deltas`` moves them into ``FlowStat``. Insert-only, so
    parallel writers never wait on each other.
    """

    flow_id = models.BigIntegerField()  # no foreign key: a delta must never block deleting a flow
    version_number = models.PositiveIntegerField(default=0)
    step_id = models.CharField(max_length=100, blank=True, default="")
    branch = models.CharField(max_length=201, blank=True, default="")
    metric = models.CharField(max_length=32)
    reason = models.CharField(max_length=255, blank=True, default="")
    currency = models.CharField(max_length=3, blank=True, default="")
    amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0"))
    at = models.DateTimeField()

    class Meta:
        # A report reads one flow's unfolded deltas through this, never the table's (dead) pages.
        indexes = [models.Index(fields=["flow_id", "id"], name="flows_statdelta_flow")]


class FlowStat(models.Model):
    """Daily counts per flow, version, step and branch: the rollup the flow report reads."""

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="stats", db_index=False)
    version_number = models.PositiveIntegerField(default=0)
    step_id = models.CharField(max_length=100, blank=True, default="")
    # "<split step>:<variant>" for what happened after a random split, "holdout" for held-out enrolments.
    branch = models.CharField(max_length=201, blank=True, default="")
    day = models.DateField()
    metric = models.CharField(max_length=32)
    reason = models.CharField(max_length=255, blank=True, default="")  # exit/skip reason, split branch
    currency = models.CharField(max_length=3, blank=True, default="")  # revenue only
    count = models.BigIntegerField(default=0)
    amount = models.DecimalField(max_digits=18, decimal_places=2, default=Decimal("0"))

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["flow", "version_number", "step_id", "branch", "day", "metric", "reason", "currency"],
            name="flows_stat_key")]


class Attribution(models.Model):
    """An order credited to the flow message the contact last clicked (or opened) before ordering. Once per order."""

    order_key = models.CharField(max_length=255, unique=True)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="attributions")
    message = models.ForeignKey(Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    step_id = models.CharField(max_length=100, blank=True, default="")
    touch = models.CharField(max_length=8)  # "click" or "open"
    touched_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    ordered_at = models.DateTimeField()


class Conversion(models.Model):
    """An order placed within the conversion window after a contact entered a flow (held out or not)."""

    enrolment = models.ForeignKey(Enrolment, on_delete=models.CASCADE, related_name="conversions", db_index=False)
    order_key = models.CharField(max_length=255)
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    currency = models.CharField(max_length=3)
    ordered_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["enrolment", "order_key"], name="flows_conversion_once")]


class SplitWinner(models.Model):
    """The variant a random split sends every new contact to, once the experiment has decided."""

    version = models.ForeignKey(FlowVersion, on_delete=models.CASCADE, related_name="+", db_index=False)
    step_id = models.CharField(max_length=100)
    variant = models.CharField(max_length=100)
    metric = models.CharField(max_length=32)
    probability = models.FloatField()
    decided_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["version", "step_id"], name="flows_split_winner_once")]


class FlowSettings(models.Model):
    """The flow-level settings a merchant edits in the Dashboard App (one row), over the plugin's configuration.

    A null column means "not set here": the plugin's configuration (or
    ``SALEOR_FLOWS``) applies. See ``saleor_flows/flow_settings.py``.
    """

    frequency_cap_hours = models.JSONField(null=True, blank=True)  # {"email": 16, "sms": 24}; null or 0: no cap
    quiet_hours = models.JSONField(null=True, blank=True)  # {"email": null, "sms": "21:00-08:00"}
    senders = models.JSONField(null=True, blank=True)  # {"<channel-slug>": {"from_email", "reply_to", "sms_from"}}
    topics = models.JSONField(null=True, blank=True)  # [{"key": "newsletter", "label": {"en": "Newsletter"}}]
    updated_at = models.DateTimeField()


class SaleorAppInstallation(models.Model):
    """The Saleor instance that installed the Dashboard App, and the App token it gave us (encrypted at rest).

    One row: the App belongs to the Saleor this plugin serves. Registering
    again from the same Saleor replaces the token; another Saleor is refused.
    """

    saleor_api_url = models.URLField(max_length=500)
    saleor_domain = models.CharField(max_length=255, blank=True, default="")
    app_id = models.CharField(max_length=100, blank=True, default="")
    token_encrypted = models.TextField()
    registered_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    # App mode (saleor_app/): set when Saleor told us the App was removed (APP_DELETED) or refused its token.
    # While set, nothing is sent (engine/holds.py); registering again clears it and journeys go on.
    removed_at = models.DateTimeField(null=True, blank=True)
    removed_reason = models.CharField(max_length=200, blank=True, default="")


# --- data lifecycle (engine/retention.py explains what is pruned and what must stay) ---

class PastEntry(models.Model):
    """A contact entered this flow before, though its enrolment rows were pruned: re-entry rules stay exact.

    One row per (flow, contact), written by the pruner as it deletes finished
    enrolments; ``last_entered_at`` answers "once per period", its existence "once".
    """

    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+", db_index=False)  # (flow, contact)
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    last_entered_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["flow", "contact"], name="flows_past_entry_once")]


class PrunedEventKey(models.Model):
    """The dedupe key of a pruned event, as 16 bytes of its SHA-256: a re-delivery of it is still a duplicate.

    Kept ``RETENTION_DEDUPE_DAYS`` after the event was received (the host's
    redelivery horizon); holds no personal data; about 70 bytes with its index.
    """

    digest = models.BinaryField(max_length=16, unique=True)
    received_at = models.DateTimeField()


class ProductAffinity(models.Model):
    """How many orders held both ``product_id`` and ``other_id``: "bought together", from the shop's own orders.

    Both directions are stored (a row for (a, b) and one for (b, a)), so the
    products bought with a set of products are one indexed range read on the
    unique constraint's index. Counted once per order as its ``order_created``
    event is processed (``engine/recommendations.py``); ids are the catalog's
    product ids (Saleor: the Product global id).
    """

    product_id = models.CharField(max_length=100)
    other_id = models.CharField(max_length=100)
    orders = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["product_id", "other_id"], name="flows_affinity_pair")]


class ProductSales(models.Model):
    """Orders holding a product, per sales channel: the shop's best sellers when nothing else is known."""

    channel = models.CharField(max_length=100, blank=True)
    product_id = models.CharField(max_length=100)
    orders = models.PositiveIntegerField(default=0)
    last_ordered_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["channel", "product_id"], name="flows_sales_product")]
        indexes = [models.Index(fields=["channel", "-orders"], name="flows_sales_best")]
