"""Smart send time: the hour of the week a contact reads their mail.

A ``wait_best_time`` step holds a contact until the next occurrence of the
hour of the week (in their own timezone) at which they have engaged most:
human opens (machine opens from Apple Mail Privacy Protection and scanners
are left out, they say nothing about a person) and clicks, which count
double (a click is the stronger sign). Three steps down, each used only
when it has enough evidence:

1. the contact's own history over ``SEND_TIME_HISTORY_DAYS`` (at least
   ``SEND_TIME_MIN_ENGAGEMENTS`` engagements);
2. the shop's best hour: the same count over every contact's engagements,
   each in that contact's own local time (at least ten times as many);
3. the step's ``default`` local time ("10:00"), or no wait at all.

Ties go to the earliest hour of the week. The moment found is only a due
time: quiet hours, caps and consent are checked when the next step sends,
as for any other message. Compare it with a fixed time by putting both
behind a ``random_split`` (the A/B report then shows which reads better).
"""

import time as monotonic_time
from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from ..conf import flows_setting
from ..models import Message
from .conditions import parse_duration
from .waits import WEEKDAYS, contact_zone, next_matching_moment, parse_time_of_day

HOURS_PER_WEEK = 7 * 24
SHOP_SAMPLE = 20000  # the most recent engagements the shop's best hour is computed from
_shop_cache: dict = {"at": -1e9, "key": None, "value": None}
SHOP_CACHE_SECONDS = 3600


def hour_of_week(moment: datetime, zone: ZoneInfo) -> int:
    """0 = Monday 00:00-00:59 local, 167 = Sunday 23:00-23:59 local."""
    local = moment.astimezone(zone)
    return local.weekday() * 24 + local.hour


def _tally(rows) -> Counter:
    """rows: (opened_at, clicked_at, the contact's zone); clicks weigh two."""
    counts: Counter = Counter()
    for opened_at, clicked_at, zone in rows:
        if opened_at:
            counts[hour_of_week(opened_at, zone)] += 1
        if clicked_at:
            counts[hour_of_week(clicked_at, zone)] += 2
    return counts


def _best(counts: Counter, minimum: int) -> int | None:
    if sum(counts.values()) < minimum:
        return None
    top = max(counts.values())
    return min(hour for hour, count in counts.items() if count == top)


def _engagements(since: datetime):
    return (Message.objects.filter(is_test=False, channel=Message.Channel.EMAIL, created_at__gte=since)
            .exclude(opened_at__isnull=True, clicked_at__isnull=True))


def contact_best_hour(contact_id: int, zone: ZoneInfo, *, now: datetime) -> int | None:
    since = now - timedelta(days=flows_setting("SEND_TIME_HISTORY_DAYS"))
    rows = _engagements(since).filter(contact_id=contact_id).values_list("opened_at", "clicked_at")
    counts = _tally((opened, clicked, zone) for opened, clicked in rows)
    return _best(counts, flows_setting("SEND_TIME_MIN_ENGAGEMENTS"))


def shop_best_hour(*, now: datetime) -> int | None:
    """The shop's best hour of the week in each engaging contact's local time (cached for an hour)."""
    days = flows_setting("SEND_TIME_HISTORY_DAYS")
    key = (now.date(), days)
    if _shop_cache["key"] == key and monotonic_time.monotonic() - _shop_cache["at"] < SHOP_CACHE_SECONDS:
        return _shop_cache["value"]
    rows = (_engagements(now - timedelta(days=days)).order_by("-created_at")
            .values_list("opened_at", "clicked_at", "contact__timezone")[:SHOP_SAMPLE])
    engagements = ((opened, clicked, contact_zone({"timezone": name})) for opened, clicked, name in rows)
    value = _best(_tally(engagements), 10 * flows_setting("SEND_TIME_MIN_ENGAGEMENTS"))
    _shop_cache.update(at=monotonic_time.monotonic(), key=key, value=value)
    return value


def next_hour_of_week(now: datetime, zone: ZoneInfo, hour: int) -> datetime:
    """The first moment at or after ``now`` that starts local hour-of-week ``hour``."""
    return next_matching_moment(now, zone, parse_time_of_day(f"{hour % 24:02d}:00"), [WEEKDAYS[hour // 24]])


def best_moment(step: dict, *, now: datetime, contact_id: int | None, zone: ZoneInfo) -> tuple[datetime, str]:
    """(when, why): the due time of a ``wait_best_time`` step and which rule chose it."""
    limit = now + parse_duration(step.get("within") or {"days": 7})
    for source, hour in (("contact", contact_best_hour(contact_id, zone, now=now) if contact_id else None),
                         ("shop", shop_best_hour(now=now))):
        if hour is not None:
            moment = next_hour_of_week(now, zone, hour)
            if moment <= limit:
                return moment, source
    if step.get("default"):
        moment = next_matching_moment(now, zone, parse_time_of_day(step["default"]), None)
        if moment <= limit:
            return moment, "default"
    return now, "now"


def reset_cache():
    _shop_cache.update(at=-1e9, key=None, value=None)

