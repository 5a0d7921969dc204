"""The simulated store: Northwind Outfitters' customers over a month, fed to the real engine.

Two halves, kept apart on purpose:

* ``plan_events()`` decides everything up front from the seed: who signs up
  when, who gives consent, who buys straight away, who abandons a checkout and
  whether they come back (on their own within hours, around one of the
  reminders, or never), who buys again. It returns plain event records in the
  payload shapes of Saleor's legacy webhooks, so the same run comes out of
  the same seed and the engine is the only thing that reacts.
* ``run()`` walks the clock through the month in 15-minute ticks. Each event
  is recorded at its own simulated moment (the clock is set to it, so an order
  placed at 10:07 counts as "since entered" for a journey entered at 10:05),
  then the sweep runs at the end of the tick (when anything is due), as the
  periodic sweep of a live install would. After the month come quiet days
  with no customer activity so the journeys can finish (the shop still
  fulfils orders placed in the month).

``checkout_abandoned`` is not simulated: the engine derives it from the
checkout events (a checkout with lines and an email that stays idle for an
hour without an order; ``engine/derived.py``), as it will for a real shop.
Browsing leaves no event (there is no storefront tracking in this demo), so
"window shoppers" are customers who sign up and never check out.
"""

import base64
import random
import unicodedata
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from django.db.models import Min

from saleor_flows import clock
from saleor_flows.engine.definition import create_flow, publish_flow
from saleor_flows.engine.sweep import sweep
from saleor_flows.events import record_event
from saleor_flows.journeys import load_journey
from saleor_flows.models import Flow, IdleTimer, Message, StepExecution

START = datetime(2026, 6, 1, tzinfo=timezone.utc)  # a Monday
MINUTE, HOUR, DAY = 60, 3600, 86400  # seconds
TICK = timedelta(minutes=15)
QUIET_DAYS = 14
# Of the prebuilt journeys, the ones whose events this store produces (no birthdays, product views or restocks).
DEMO_JOURNEYS = ["welcome", "abandoned_checkout", "post_purchase"]
SHOP_URL = "https://northwind-outfitters.example.com"
# The shop's product images (demo/catalog.py draws them; the outbox's .html files show local copies).
THUMBNAILS = f"{SHOP_URL}/media"

# slug, name, variants, price (Saleor sends money as decimal strings)
CATALOGUE = [
    ("merino-crew-sweater", "Merino Crew Sweater", ["S", "M", "L", "XL"], "89.00"),
    ("waxed-canvas-jacket", "Waxed Canvas Jacket", ["S", "M", "L"], "189.00"),
    ("trail-runner-sneakers", "Trail Runner Sneakers", ["EU 40", "EU 42", "EU 44"], "129.00"),
    ("organic-cotton-tee", "Organic Cotton Tee", ["White / M", "Black / M", "Navy / L"], "29.00"),
    ("selvedge-denim-jeans", "Selvedge Denim Jeans", ["30/32", "32/32", "34/34"], "119.00"),
    ("wool-beanie", "Wool Beanie", ["Charcoal", "Rust", "Navy"], "24.00"),
    ("leather-belt", "Leather Belt", ["85 cm", "95 cm", "105 cm"], "45.00"),
    ("canvas-weekender-bag", "Canvas Weekender Bag", ["Olive", "Sand"], "149.00"),
    ("insulated-water-bottle", "Insulated Water Bottle", ["500 ml", "750 ml"], "32.00"),
    ("flannel-overshirt", "Flannel Overshirt", ["S", "M", "L", "XL"], "69.00"),
    ("hiking-socks-3-pack", "Hiking Socks (3 pack)", ["S/M", "L/XL"], "19.50"),
    ("packable-rain-shell", "Packable Rain Shell", ["S", "M", "L"], "99.00"),
]

FIRST_NAMES = {
    "en": ["Olivia", "Liam", "Emma", "Noah", "Ava", "James", "Sophia", "Lucas", "Mia", "Ethan", "Grace", "Owen"],
    "de": ["Lena", "Jonas", "Hannah", "Lukas", "Marie", "Felix", "Clara", "Jürgen", "Sophie", "Maximilian"],
}
LAST_NAMES = {
    "en": ["Smith", "Johnson", "Brown", "Taylor", "Walker", "Clarke", "Hughes", "Reed", "Carter", "Murphy"],
    "de": ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Schäfer"],
}
TIMEZONES = {
    "en": ["America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London", "Australia/Sydney"],
    "de": ["Europe/Berlin", "Europe/Vienna", "Europe/Zurich"],
}

# What the summary reports about the simulated shoppers, in reading order.
STATS = ["customers", "consented", "unsubscribed", "window shoppers", "checkouts", "bought directly",
         "left idle (abandoned)", "came back within hours", "came back later", "never came back", "orders"]

SHIPPING = Decimal("7.95")
FREE_SHIPPING_FROM = Decimal("100")


@dataclass
class PlannedEvent:
    at: datetime
    name: str
    email: str
    user_id: str
    payload: dict
    dedupe_key: str


@dataclass
class Customer:
    number: int
    first_name: str
    last_name: str
    email: str
    user_id: str
    language: str
    timezone: str
    consent: bool
    signed_up_at: datetime


@dataclass
class Plan:
    """What the month holds; ``stats`` counts the planned behaviour for the summary."""

    events: list[PlannedEvent] = field(default_factory=list)
    stats: dict = field(default_factory=lambda: dict.fromkeys(STATS, 0))

    def add(self, *args, **kwargs):
        self.events.append(PlannedEvent(*args, **kwargs))

    def count(self, key: str):
        self.stats[key] = self.stats.get(key, 0) + 1


def global_id(kind: str, pk) -> str:
    """Saleor's GraphQL ids: base64 of "Type:pk"."""
    return base64.b64encode(f"{kind}:{pk}".encode()).decode()


def ascii_lower(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def seconds(rng: random.Random, low: float, high: float) -> timedelta:
    """A random duration between ``low`` and ``high`` seconds, in whole seconds."""
    return timedelta(seconds=int(rng.uniform(low, high)))


# --- planning -------------------------------------------------------------------------

def make_customer(rng: random.Random, number: int, start: datetime, days: int) -> Customer:
    language = "de" if rng.random() < 0.2 else "en"
    first, last = rng.choice(FIRST_NAMES[language]), rng.choice(LAST_NAMES[language])
    return Customer(
        number=number, first_name=first, last_name=last,
        email=f"{ascii_lower(first)}.{ascii_lower(last)}.{number}@example.com",
        user_id=global_id("User", number), language=language, timezone=rng.choice(TIMEZONES[language]),
        consent=rng.random() < 0.7, signed_up_at=start + seconds(rng, 0, days * DAY),
    )


def checkout_lines(rng: random.Random) -> list[dict]:
    lines = []
    for slug, name, variants, price in rng.sample(CATALOGUE, rng.choice([1, 1, 1, 2, 2, 3])):
        variant = rng.choice(variants)
        index = CATALOGUE.index((slug, name, variants, price)) * 10 + variants.index(variant) + 1
        lines.append({
            "product_name": name, "variant_name": variant, "full_name": f"{name} ({variant})",
            "quantity": rng.choice([1, 1, 1, 2]), "base_price": price, "currency": "USD",
            "sku": f"NW-{''.join(word[0] for word in slug.split('-')).upper()}-{index:03d}", "variant_id": global_id("ProductVariant", index),
            "thumbnail": f"{THUMBNAILS}/{slug}.png", "product_id": slug, "product_url": f"{SHOP_URL}/products/{slug}/",
        })
    return lines


def subtotal(lines: list[dict]) -> Decimal:
    return sum((Decimal(line["base_price"]) * line["quantity"] for line in lines), Decimal("0"))


def signup(plan: Plan, customer: Customer):
    """Consent first, then the account: the welcome email goes out the moment the account exists."""
    at = customer.signed_up_at
    if customer.consent:
        plan.add(at, "consent_updated", customer.email, customer.user_id,
                 {"channel": "email", "status": "subscribed", "source": "signup_form"},
                 f"consent_updated:{customer.user_id}:signup")
    plan.add(at + timedelta(seconds=1), "customer_created", customer.email, customer.user_id, {
        "email": customer.email, "first_name": customer.first_name, "last_name": customer.last_name,
        "language_code": customer.language, "is_active": True, "date_joined": at.isoformat(),
        "timezone": customer.timezone,
    }, f"customer_created:{customer.user_id}")
    plan.count("customers")
    if customer.consent:
        plan.count("consented")


def place_order(plan: Plan, rng: random.Random, customer: Customer, lines: list[dict], at: datetime, *,
                checkout_token: str):
    """order_created, order_fully_paid minutes later, order_fulfilled 1–3 days later (4% never ship)."""
    order_id = global_id("Order", uuid.UUID(int=rng.getrandbits(128), version=4))
    sub = subtotal(lines)
    shipping = Decimal("0.00") if sub >= FREE_SHIPPING_FROM else SHIPPING
    payload = {
        "id": order_id, "number": None,  # numbered in time order once the month is planned
        "user_email": customer.email, "currency": "USD", "language_code": customer.language,
        "total_gross_amount": str(sub + shipping), "shipping_price_gross_amount": str(shipping),
        "lines": [{
            "product_name": line["product_name"], "variant_name": line["variant_name"],
            "product_sku": line["sku"], "quantity": line["quantity"], "currency": "USD",
            "unit_price_gross_amount": line["base_price"],
            "total_price_gross_amount": str(Decimal(line["base_price"]) * line["quantity"]),
            "thumbnail": line["thumbnail"], "product_id": line["product_id"], "product_url": line["product_url"],
        } for line in lines],
        "billing_address": {"first_name": customer.first_name, "last_name": customer.last_name},
        "checkout_token": checkout_token,  # what the plugin adds; it ends the checkout's idle timer
    }
    plan.add(at, "order_created", customer.email, customer.user_id, payload, f"order_created:{order_id}")
    plan.add(at + seconds(rng, 2 * MINUTE, 10 * MINUTE), "order_fully_paid", customer.email, customer.user_id,
             payload, f"order_fully_paid:{order_id}")
    if rng.random() >= 0.04:
        plan.add(at + seconds(rng, 1 * DAY, 3 * DAY), "order_fulfilled", customer.email, customer.user_id,
                 payload, f"order_fulfilled:{order_id}")
    plan.count("orders")


def shop(plan: Plan, rng: random.Random, customer: Customer, at: datetime, end: datetime) -> datetime | None:
    """One visit that ends in a checkout: returns when they ordered, or None.

    The checkout is created at ``at`` with one item and updated minutes later
    with the rest (``checkout_created`` / ``checkout_updated``, as the Saleor
    plugin records them). ``checkout_abandoned`` is not planned here: the
    engine derives it (an idle timer fires an hour after the last update unless
    an order carrying this checkout's token comes first), so the simulation
    only decides whether and when the shopper pays.
    """
    lines = checkout_lines(rng)
    token = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    updated_at = at + seconds(rng, 2 * MINUTE, 12 * MINUTE)
    if updated_at >= end:
        return None
    checkout = {
        "id": global_id("Checkout", token), "token": token, "email": customer.email, "currency": "USD",
        "language_code": customer.language, "checkout_url": f"{SHOP_URL}/checkout/{token}",
    }
    plan.add(at, "checkout_created", customer.email, customer.user_id,
             {**checkout, "total_gross_amount": str(subtotal(lines[:1])), "lines": lines[:1]},
             f"checkout_created:{token}")
    plan.add(updated_at, "checkout_updated", customer.email, customer.user_id,
             {**checkout, "total_gross_amount": str(subtotal(lines)), "lines": lines},
             f"checkout_updated:{token}:{updated_at.isoformat()}")
    plan.count("checkouts")
    if rng.random() < 0.35:
        ordered_at = updated_at + seconds(rng, 3 * MINUTE, 25 * MINUTE)
        if ordered_at < end:
            place_order(plan, rng, customer, lines, ordered_at, checkout_token=token)
            plan.count("bought directly")
            return ordered_at
        return None
    plan.count("left idle (abandoned)")
    abandoned_at = updated_at + timedelta(hours=1)
    roll = rng.random()
    if roll < 0.2:
        # Came back on their own the same day.
        ordered_at, outcome = abandoned_at + seconds(rng, 20 * MINUTE, 5 * HOUR), "came back within hours"
    elif roll < 0.2 + (0.4 if customer.consent else 0.1):
        # Came back later: with consent, around one of the reminders (1 hour, 1 day, 3 days in).
        nudge = rng.choice([1 * HOUR, 1 * DAY, 3 * DAY])
        ordered_at, outcome = abandoned_at + seconds(rng, nudge + 10 * MINUTE, nudge + 4 * HOUR), "came back later"
    else:
        plan.count("never came back")
        return None
    if ordered_at >= end:
        return None
    place_order(plan, rng, customer, lines, ordered_at, checkout_token=token)
    plan.count(outcome)
    return ordered_at


def plan_events(*, customers: int, days: int, seed: int, start: datetime = START) -> Plan:
    """Every event of the month, in time order, decided by ``seed`` alone."""
    rng = random.Random(seed)
    end = start + timedelta(days=days)
    plan = Plan()
    for number in range(1, customers + 1):
        customer = make_customer(rng, number, start, days)
        signup(plan, customer)
        if customer.consent and rng.random() < 0.05:
            unsubscribed_at = customer.signed_up_at + seconds(rng, 1 * DAY, 10 * DAY)
            if unsubscribed_at < end:
                plan.add(unsubscribed_at, "consent_updated", customer.email, customer.user_id,
                         {"channel": "email", "status": "unsubscribed", "source": "preference_center"},
                         f"consent_updated:{customer.user_id}:unsubscribe")
                plan.count("unsubscribed")
        if rng.random() < 0.2:
            plan.count("window shoppers")
            continue
        # First checkout: often right after signing up, sometimes days later.
        visit = customer.signed_up_at + seconds(rng, 5 * MINUTE, rng.choice([2 * HOUR, 2 * DAY, 6 * DAY]))
        while visit < end:
            ordered_at = shop(plan, rng, customer, visit, end)
            if ordered_at and rng.random() < 0.3:
                visit = ordered_at + seconds(rng, 4 * DAY, 14 * DAY)  # a repeat customer
            elif not ordered_at and rng.random() < 0.25:
                visit = visit + seconds(rng, 3 * DAY, 10 * DAY)  # another try after an abandoned cart
            else:
                break
    plan.events.sort(key=lambda e: e.at)  # stable: consent stays before its account
    number = 1000
    for event in plan.events:
        if event.name == "order_created":
            number += 1
            event.payload["number"] = str(number)
    return plan


# --- running ----------------------------------------------------------------------------

def install_journeys() -> list[Flow]:
    """The prebuilt journeys this month's shoppers can trigger, published as they ship."""
    flows = []
    for slug in DEMO_JOURNEYS:
        definition = load_journey(slug)
        flow = create_flow(slug, definition, name=definition["name"])
        publish_flow(flow)
        flow.refresh_from_db()
        flows.append(flow)
    return flows


def record(event: PlannedEvent):
    return record_event(event.name, email=event.email, user_id=event.user_id, payload=event.payload,
                        occurred_at=event.at, dedupe_key=event.dedupe_key)


def next_due() -> datetime | None:
    """When the sweep next has work: the earliest pending step or waiting idle timer.

    A live install sweeps every few seconds whether or not anything is due; the
    demo's month has over 4,000 ticks and most of them are idle, so it asks
    when the next work is (two indexed queries, only after something changed)
    and skips the empty ticks. Nothing the sweep repairs (lost claims, stuck
    sends, lost enqueues) can occur here: no worker is killed.
    """
    due = [StepExecution.objects.filter(state=StepExecution.State.PENDING).aggregate(at=Min("due_at"))["at"],
           IdleTimer.objects.filter(state=IdleTimer.State.WAITING).aggregate(at=Min("due_at"))["at"]]
    return min(filter(None, due), default=None)


def run(plan: Plan, *, start: datetime, days: int, quiet_days: int = QUIET_DAYS, settle=None, progress=None):
    """Step the clock from ``start`` through ``days + quiet_days`` days, recording and sweeping.

    ``settle()`` is called after every event and every sweep; in Celery mode it
    waits for the worker, so nothing runs at a later simulated time than it should.
    ``progress(day, total_days)`` is called as each simulated day ends.
    """
    settle = settle or (lambda: None)
    total_days = days + quiet_days
    end = start + timedelta(days=total_days)
    events, index, now = plan.events, 0, start
    clock.set_now(start)
    due = None
    while now < end:
        now += TICK
        changed = False
        while index < len(events) and events[index].at <= now:
            clock.set_now(events[index].at)
            record(events[index])
            settle()
            index += 1
            changed = True
        clock.set_now(now)
        if changed:
            due = next_due()
        if due is not None and due <= now:
            sweep()
            settle()
            due = next_due()
        if progress and (now - start) % timedelta(days=1) == timedelta(0):
            progress((now - start) // timedelta(days=1), total_days)


def simulate(*, customers: int = 300, days: int = 30, seed: int = 7, start: datetime = START,
             quiet_days: int = QUIET_DAYS, settle=None, progress=None) -> dict:
    """Install the journeys, plan the month and run it. Returns the flows and what was planned."""
    flows = install_journeys()
    plan = plan_events(customers=customers, days=days, seed=seed, start=start)
    run(plan, start=start, days=days, quiet_days=quiet_days, settle=settle, progress=progress)
    return {"flows": flows, "stats": plan.stats, "events": len(plan.events),
            "emails": Message.objects.filter(status=Message.Status.SENT).count()}
