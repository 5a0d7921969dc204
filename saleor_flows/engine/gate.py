"""The send gate: whether a marketing message may go out now, later, or not at all.

Checked by the runner under the contact's lock, after consent and
suppression, so two sends to one person are decided one after the other and
the second sees the first's ``Message`` row. Transactional and staff
messages never pass through here: an order confirmation at 23:00 is
expected, a promotion is not.

What holds a marketing message back, in order:

1. Topics the contact opted out of in the preference centre: a matter of
   consent, so the message is dropped (never sent later).
2. A pause (``Contact.paused_until``): the message waits until the pause
   ends. Waiting rather than dropping keeps a one-day "not now" from
   costing a journey; staleness (below) keeps a month-long pause from
   ending in a flood of old promotions.
3. The frequency cap: at most one marketing message per channel within
   ``FREQUENCY_CAP_HOURS[channel]`` hours, or the contact's own, stricter
   choice (``frequency``: daily/weekly/monthly, counted across channels:
   "one a week" means one a week, not one email and one SMS).
4. Quiet hours per channel in the contact's timezone (``QUIET_HOURS``).

A held message is deferred to the first moment all of them allow, unless
the flow says ``on_blocked: "drop"`` or that moment is more than
``stale_after`` past the moment the message was first due: then it is
dropped, with the reason, and the journey goes on.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Max, Q

from ..conf import flows_setting
from ..models import Message
from .conditions import parse_duration
from .waits import contact_zone, next_matching_moment, parse_time_of_day

PERSONAL_FREQUENCY = {"daily": timedelta(days=1), "weekly": timedelta(days=7), "monthly": timedelta(days=30)}
ON_BLOCKED = {"defer", "drop"}
# ``"frequency_cap": "high_intent"``: out of the shop's cap, under HIGH_INTENT_CAP_HOURS among themselves.
HIGH_INTENT = "high_intent"


@dataclass(frozen=True)
class Decision:
    """``go``, ``defer`` (with ``until``) or ``drop``.

    ``reason`` is a stable category ("frequency cap (email)", "stale: quiet
    hours", ...): reports count skips by it, so it never holds a time.
    ``detail`` says exactly why, for the trail.
    """

    action: str
    reason: str = ""
    until: datetime | None = None
    detail: str = ""


GO = Decision("go")


def step_option(step: dict, definition: dict, key: str, default=None):
    """A send step's own value for ``key``, else its flow's (like ``kind``)."""
    return step.get(key, definition.get(key, default))


def high_intent(step: dict, definition: dict) -> bool:
    """A reminder (``"frequency_cap": "high_intent"`` on the step or its flow): out of the shop's cap, capped
    among the reminders by HIGH_INTENT_CAP_HOURS, and counted as one when it is sent (``Message.high_intent``)."""
    return step_option(step, definition, "frequency_cap") == HIGH_INTENT


def stale_after(step: dict, definition: dict) -> timedelta:
    value = step_option(step, definition, "stale_after")
    return parse_duration(value) if value is not None else timedelta(hours=flows_setting("STALE_AFTER_HOURS"))


def parse_window(value: str) -> tuple:
    """``"21:00-08:00"`` → (start, end) times; the window may wrap past midnight."""
    try:
        start, end = (parse_time_of_day(part.strip()) for part in value.split("-"))
    except (ValueError, AttributeError) as exc:
        raise ImproperlyConfigured(f"saleor-flows: quiet hours {value!r}: expected 'HH:MM-HH:MM'") from exc
    if start == end:
        raise ImproperlyConfigured(f"saleor-flows: quiet hours {value!r} start and end at the same time")
    return start, end


def quiet_until(moment: datetime, channel: str, contact: dict) -> tuple[datetime, str] | None:
    """The end of the quiet hours ``moment`` falls in (for this contact), with the reason; None if it is not quiet.

    The window is wall-clock time in the contact's zone, so 21:00-08:00 stays
    21:00-08:00 across DST; its end is the next local ``end`` time, found by
    the same code as ``wait_until`` (a wall time that does not exist that day
    resolves to the next real instant; one that happens twice, to the first).
    """
    window = (flows_setting("QUIET_HOURS") or {}).get(channel)
    if not window:
        return None
    start, end = parse_window(window)
    zone = contact_zone(contact)
    wall = moment.astimezone(zone).time()
    inside = (start <= wall < end) if start < end else (wall >= start or wall < end)
    if not inside:
        return None
    return next_matching_moment(moment, zone, end, None), f"quiet hours {window} ({zone.key})"


def _cap_windows(channel: str, contact) -> tuple[timedelta | None, timedelta | None]:
    hours = (flows_setting("FREQUENCY_CAP_HOURS") or {}).get(channel)
    shop = timedelta(hours=hours) if hours else None
    return shop, PERSONAL_FREQUENCY.get(contact.frequency)


def recent_marketing(contact_ids, *, now: datetime, exclude_executions, high_intent: bool = False) -> dict[int, dict]:
    """The last marketing messages of each contact, what the caps in ``check`` compare with: one query.

    ``{contact_id: {"email": last on email, "sms": …, "any": …, "high_intent:email": …}}``,
    over the longest window any cap may look at (an older message is simply
    not within a shorter one). One range scan per contact of the (contact,
    created_at) index. A failed hand-off never reached anyone and does not
    count; a test send is not marketing; the messages of the executions
    being decided (a retry's earlier attempt) are not "the previous one". A
    window holds one send per contact, so excluding all of the window's
    executions excludes just each contact's own earlier attempt.
    """
    caps = [hours for setting in ("FREQUENCY_CAP_HOURS", "HIGH_INTENT_CAP_HOURS")
            for hours in (flows_setting(setting) or {}).values() if hours]
    longest = max([timedelta(hours=hours) for hours in caps] + list(PERSONAL_FREQUENCY.values()))
    aggregates = {"any": Max("created_at")}
    for channel in ("email", "sms"):
        aggregates[channel] = Max("created_at", filter=Q(channel=channel))
        if high_intent:
            aggregates[f"high_intent:{channel}"] = Max(
                "created_at", filter=Q(channel=channel, high_intent=True))
    rows = (Message.objects.filter(contact_id__in=list(contact_ids), created_at__gte=now - longest,
                                   kind=Message.Kind.MARKETING, is_test=False)
            .exclude(status=Message.Status.FAILED).exclude(execution_id__in=list(exclude_executions))
            .values("contact_id").annotate(**{f"last_{i}": agg for i, agg in enumerate(aggregates.values())}))
    return {row["contact_id"]: {key: row[f"last_{i}"] for i, key in enumerate(aggregates)} for row in rows}


def check(step: dict, definition: dict, contact, *, channel: str, now: datetime, execution_id=None,
          held_since: datetime | None = None, recent: dict | None = None) -> Decision:
    """Decide a marketing send on ``channel`` (the runner skips this for other kinds).

    ``recent``: this contact's entry of ``recent_marketing()`` (the runner reads a window of sends at
    once), else it is read here for this contact alone.
    """
    topic = step_option(step, definition, "topic")
    if topic and topic in (contact.unsubscribed_topics or []):
        return Decision("drop", f"opted out of topic {topic}")

    until, reasons, details = now, [], []
    if contact.paused_until and contact.paused_until > now:
        until = contact.paused_until
        reasons.append("paused")
        details.append(f"paused until {contact.paused_until.isoformat()}")
    shop, personal = _cap_windows(channel, contact)
    capped = step_option(step, definition, "frequency_cap", True)
    reminder_cap = None
    if capped is False or capped == HIGH_INTENT:
        shop = None  # a message the merchant exempted (e.g. a cart reminder); the contact's choice still holds
    if capped == HIGH_INTENT:
        hours = (flows_setting("HIGH_INTENT_CAP_HOURS") or {}).get(channel)
        reminder_cap = timedelta(hours=hours) if hours else None
    if shop or personal or reminder_cap:
        if recent is None:
            recent = recent_marketing([contact.pk], now=now, high_intent=bool(reminder_cap),
                                      exclude_executions=[] if execution_id is None else [execution_id]
                                      ).get(contact.pk, {})
        last_here, last_any, last_reminder = (recent.get(channel), recent.get("any"),
                                              recent.get(f"high_intent:{channel}"))
        if shop and last_here and last_here + shop > until:
            until = last_here + shop
            reasons.append(f"frequency cap ({channel})")
            details.append(f"frequency cap: one marketing {channel} per {_hours(shop)} (last at {last_here.isoformat()})")
        if reminder_cap and last_reminder and last_reminder + reminder_cap > until:
            until = last_reminder + reminder_cap
            reasons.append(f"high-intent cap ({channel})")
            details.append(f"high-intent cap: one reminder {channel} per {_hours(reminder_cap)} "
                           f"(last at {last_reminder.isoformat()})")
        if personal and last_any and last_any + personal > until:
            until = last_any + personal
            reasons.append(f"contact's choice: {contact.frequency}")
            details.append(f"contact's choice: {contact.frequency} (last marketing message at {last_any.isoformat()})")
    quiet = quiet_until(until, channel, {"timezone": contact.timezone})  # all it reads
    if quiet:
        until = quiet[0]
        reasons.append("quiet hours")
        details.append(quiet[1])
    if not reasons:
        return GO
    reason, detail = "; ".join(reasons), "; ".join(details)
    if step_option(step, definition, "on_blocked", "defer") == "drop":
        return Decision("drop", f"{reason} (the flow drops blocked messages)", detail=detail)
    limit = stale_after(step, definition)
    if until - (held_since or now) > limit:
        return Decision("drop", f"stale: {reason}", detail=f"{detail}; would go out at {until.isoformat()}, "
                                                           f"more than {_hours(limit)} after it was due")
    return Decision("defer", reason, until, detail=detail)


def _hours(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:g}h"
