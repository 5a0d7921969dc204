"""Events the host does not send, derived from the ones it does.

Saleor has no "checkout abandoned" and no "first order" event. They are
derived here, in the worker, while the normalized event that implies them is
processed, so the host's request path still does one INSERT and one enqueue.

- ``checkout_abandoned``: an idle timer per checkout that has an email and
  lines, pushed back by every update, cancelled when the checkout becomes an
  order; fired by the sweep with the checkout's latest snapshot, dated at its
  last activity.
- ``first_order`` / ``nth_order``: when an order makes the contact's order count 1 / n.
- ``customer_lapsed``, ``birthday``, ``signup_anniversary``: found by a scan
  (``scan_dates``, run hourly by beat) in each contact's own timezone, once
  per lapse / per year thanks to their dedupe keys.
"""

from calendar import isleap
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Q

from .. import clock
from ..conf import flows_setting
from ..db import any_of, insert_rows
from ..events import normalize_email, record_event, record_events  # the door every event goes through, derived ones too
from ..models import Contact, Event, IdleTimer, StockAlert
from .waits import contact_zone

CHECKOUT_ACTIVITY = {"checkout_created", "checkout_updated"}
CHECKOUT_DONE = {"checkout_fully_paid", "checkout_completed"}


def checkout_timer_key(token) -> str:
    return f"checkout:{token}"


TIMER_UPDATE = ("event_name = excluded.event_name, email = excluded.email, user_id = excluded.user_id,"
                " channel = excluded.channel, payload = excluded.payload, last_activity_at = excluded.last_activity_at,"
                " due_at = excluded.due_at, state = excluded.state"
                " WHERE {table}.last_activity_at <= excluded.last_activity_at")


def _write_timers(actions: list[tuple[str, dict | None]]):
    """Arm, push back (a newer activity always wins) or cancel idle timers: ("touch", row) or ("cancel", key).

    Actions on different keys are written with one upsert and one UPDATE; when a key comes twice
    (one caller's events about one checkout) they are applied one by one, in order.
    """
    keys = [row["key"] if kind == "touch" else row for kind, row in actions]
    if len(set(keys)) < len(keys):
        for action in actions:
            _write_timers([action])
        return
    insert_rows(IdleTimer, [row for kind, row in actions if kind == "touch"], conflict=["key"], update=TIMER_UPDATE)
    cancels = [key for kind, key in actions if kind == "cancel"]
    if cancels:
        IdleTimer.objects.filter(any_of("key", cancels), state=IdleTimer.State.WAITING).update(state=IdleTimer.State.CANCELLED)


def derive(pairs: list[tuple[Event, object]]) -> None:
    """Called while these events are processed (inside their transaction), with their contacts."""
    timers = []
    for event, contact in pairs:
        payload = event.payload
        if event.name in CHECKOUT_ACTIVITY and payload.get("token"):
            key = checkout_timer_key(payload["token"])
            email = normalize_email(payload.get("email") or event.email)
            if email and payload.get("lines"):
                idle = timedelta(minutes=flows_setting("ABANDONED_CHECKOUT_IDLE_MINUTES"))
                timers.append(("touch", {
                    "key": key, "event_name": "checkout_abandoned", "email": email, "user_id": event.user_id,
                    "channel": event.channel, "payload": payload, "last_activity_at": event.occurred_at,
                    "due_at": event.occurred_at + idle, "state": IdleTimer.State.WAITING}))
            else:
                timers.append(("cancel", key))  # emptied, or no one to write to
        elif event.name in CHECKOUT_DONE and payload.get("token"):
            timers.append(("cancel", checkout_timer_key(payload["token"])))
        elif event.name == "back_in_stock_requested" and payload.get("variant_id"):
            StockAlert.objects.get_or_create(
                contact=contact, variant_id=str(payload["variant_id"]), notified_at=None,
                defaults={"channel": event.channel, "payload": payload, "created_at": event.occurred_at})
        elif event.name == "order_created" and payload.get("checkout_token"):
            timers.append(("cancel", checkout_timer_key(payload["checkout_token"])))
    _write_timers(timers)
    record_events([derived for event, contact in pairs if event.name == "order_created"
                   for derived in _nth_order(event, contact)])


def _nth_order(event: Event, contact) -> list[dict]:
    count = contact.order_count
    common = {"email": contact.email or "", "user_id": contact.user_id, "channel": event.channel,
              "payload": {**event.payload, "order_count": count}, "occurred_at": event.occurred_at}
    first = [{"name": "first_order", "dedupe_key": f"first_order:{event.pk}", **common}] if count == 1 else []
    return [*first, {"name": "nth_order", "dedupe_key": f"nth_order:{event.pk}", **common}]


def fire_due_timers(now=None, limit: int = 1000) -> int:
    """Turn due timers into events, once: claimed with SKIP LOCKED, fired and marked in one transaction."""
    now = now or clock.now()
    with transaction.atomic():
        due = list(IdleTimer.objects.select_for_update(skip_locked=True)
                   .filter(state=IdleTimer.State.WAITING, due_at__lte=now).order_by("due_at")[:limit])
        for timer in due:
            record_event(
                timer.event_name, email=timer.email, user_id=timer.user_id or None, channel=timer.channel,
                payload=timer.payload, occurred_at=timer.last_activity_at,
                dedupe_key=f"{timer.event_name}:{timer.key}:{timer.last_activity_at.isoformat()}",
            )
        IdleTimer.objects.filter(pk__in=[t.pk for t in due]).update(state=IdleTimer.State.FIRED)
    return len(due)


def _local_date(moment, contact):
    return moment.astimezone(contact_zone({"timezone": contact.timezone})).date()


def _month_days(now) -> list[str]:
    """Every "-MM-DD" that is today somewhere on Earth at ``now``."""
    days = {(now + timedelta(hours=offset)).date() for offset in (-12, 0, 14)}
    return [f"-{day:%m-%d}" for day in days]


def _is_today(day: date, local_today: date) -> bool:
    if (day.month, day.day) == (local_today.month, local_today.day):
        return True
    # Born on 29 February: celebrated on the 28th when the year has no 29th.
    return (day.month, day.day) == (2, 29) and (local_today.month, local_today.day) == (2, 28) and not isleap(
        local_today.year)


def scan_dates(now=None) -> dict:
    """Record the date-driven events due now. Safe to run as often as you like."""
    now = now or clock.now()
    counts = {"customer_lapsed": 0, "birthday": 0, "signup_anniversary": 0}
    days = flows_setting("LAPSED_AFTER_DAYS")
    threshold = now - timedelta(days=days)
    # A week of slack: a scan that did not run for a few days still catches everyone, once.
    for contact in Contact.objects.filter(order_count__gte=1, last_order_at__lte=threshold,
                                          last_order_at__gt=threshold - timedelta(days=7)).iterator():
        recorded = record_event(
            "customer_lapsed", email=contact.email or "", user_id=contact.user_id, occurred_at=now,
            payload={"days_since_last_order": (now - contact.last_order_at).days,
                     "last_order_at": contact.last_order_at.isoformat(), "order_count": contact.order_count,
                     "total_spent": str(contact.total_spent), "currency": contact.currency},
            dedupe_key=f"customer_lapsed:{contact.pk}:{contact.last_order_at.isoformat()}")
        counts["customer_lapsed"] += not recorded.duplicate

    field = flows_setting("BIRTHDAY_ATTRIBUTE")
    month_days = _month_days(now)
    # Signup dates are stored in UTC: a local anniversary can sit a day either side of them.
    signup_days = {now.date() + timedelta(days=offset) for offset in range(-2, 3)}
    joined_today = Q()
    for day in signup_days:
        joined_today |= Q(created_at__month=day.month, created_at__day=day.day)
    candidates = Contact.objects.filter(suppressed=False).filter(
        Q(**{f"attributes__{field}__regex": r"-(%s)$" % "|".join(md[1:] for md in month_days + ["-02-29"])})
        | (joined_today & Q(created_at__lt=now - timedelta(days=300))))
    for contact in candidates.iterator():
        local_today = _local_date(now, contact)
        birthday = _parse_date(contact.attributes.get(field))
        if birthday and _is_today(birthday, local_today):
            payload = {"date": birthday.isoformat()}
            if birthday.year > 1900:
                payload["age"] = local_today.year - birthday.year
            recorded = record_event("birthday", email=contact.email or "", user_id=contact.user_id, occurred_at=now,
                                    payload=payload, dedupe_key=f"birthday:{contact.pk}:{local_today.year}")
            counts["birthday"] += not recorded.duplicate
        joined = _local_date(contact.created_at, contact)
        if joined.year < local_today.year and _is_today(joined, local_today):
            recorded = record_event(
                "signup_anniversary", email=contact.email or "", user_id=contact.user_id, occurred_at=now,
                payload={"signed_up": joined.isoformat(), "years": local_today.year - joined.year},
                dedupe_key=f"signup_anniversary:{contact.pk}:{local_today.year}")
            counts["signup_anniversary"] += not recorded.duplicate
    return counts


def _parse_date(value) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def notify_restocked(available_quantities) -> int:
    """Record ``back_in_stock`` for open requests whose variant is available again.

    ``available_quantities(variant_ids) -> {variant_id: quantity}`` is the
    host's answer (the Saleor edge asks Saleor's stock); only variants someone
    is waiting for are asked about. Each request is told once.
    """
    waiting = list(StockAlert.objects.filter(notified_at__isnull=True).values_list("variant_id", flat=True).distinct())
    if not waiting:
        return 0
    quantities = available_quantities(waiting)
    restocked = [variant for variant in waiting if (quantities.get(variant) or 0) > 0]
    told = 0
    now = clock.now()
    with transaction.atomic():
        for alert in StockAlert.objects.select_for_update(skip_locked=True).select_related("contact").filter(
                notified_at__isnull=True, variant_id__in=restocked):
            record_event("back_in_stock", email=alert.contact.email or "", user_id=alert.contact.user_id,
                         channel=alert.channel, occurred_at=now,
                         payload={**alert.payload, "quantity_available": quantities[alert.variant_id]},
                         dedupe_key=f"back_in_stock:{alert.pk}")
            alert.notified_at = now
            alert.save(update_fields=["notified_at"])
            told += 1
    return told
