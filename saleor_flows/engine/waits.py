"""Due times for wait steps, computed once when a contact reaches the step.

Times of day are wall-clock times in the contact's timezone, so "Tuesday at
09:00" stays 09:00 across a DST change; a wall time that does not exist that
day (spring forward) resolves to the next real instant.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..conf import flows_setting
from .conditions import dig, parse_duration
from .contacts import parse_when

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def contact_zone(contact: dict) -> ZoneInfo:
    for name in (contact.get("timezone"), flows_setting("DEFAULT_TIMEZONE"), "UTC"):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def parse_time_of_day(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def _at_wall_time(day: date, wall: time, zone: ZoneInfo) -> datetime:
    local = datetime.combine(day, wall, tzinfo=zone)
    # A wall time skipped by DST does not survive a round trip through UTC.
    roundtrip = local.astimezone(ZoneInfo("UTC")).astimezone(zone)
    if roundtrip.replace(tzinfo=None) != local.replace(tzinfo=None):
        return roundtrip
    return local


def next_matching_moment(now: datetime, zone: ZoneInfo, wall: time | None, weekdays: list[str] | None) -> datetime:
    """The first moment at or after ``now`` that is at ``wall`` on one of ``weekdays`` (local time)."""
    local_now = now.astimezone(zone)
    allowed = {WEEKDAYS.index(day) for day in weekdays} if weekdays else set(range(7))
    for offset in range(8):
        day = local_now.date() + timedelta(days=offset)
        if day.weekday() not in allowed:
            continue
        if wall is None:
            # Any time on an allowed day: now if today is allowed, else that day's start.
            moment = now if offset == 0 else _at_wall_time(day, time(0, 0), zone)
        else:
            moment = _at_wall_time(day, wall, zone)
        if moment >= now:
            return moment
    raise AssertionError("unreachable: a week always has a matching moment")


def resolve_date_field(path: str, contact: dict, event_payload: dict) -> datetime | date | None:
    root, _, rest = path.partition(".")
    value = dig(contact if root == "contact" else event_payload, rest)
    if isinstance(value, (datetime, date)):
        return value
    if isinstance(value, str):
        parsed = parse_when(value)
        if parsed is not None:
            return parsed
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def due_at_for(step: dict, *, now: datetime, contact: dict, event_payload: dict, contact_id=None,
               explain: dict | None = None) -> datetime:
    """When a contact reaching ``step`` at ``now`` should move on (``explain`` collects why, for the trail)."""
    kind = step["type"]
    zone = contact_zone(contact)
    if kind == "wait_best_time":
        from .send_time import best_moment

        moment, chosen_by = best_moment(step, now=now, contact_id=contact_id, zone=zone)
        if explain is not None:
            explain["chosen_by"] = chosen_by
        return moment
    if kind == "wait":
        return now + parse_duration(step["duration"])
    if kind == "wait_event":
        return now + parse_duration(step["timeout"])
    if kind == "wait_until":
        wall = parse_time_of_day(step["time"]) if step.get("time") else None
        return next_matching_moment(now, zone, wall, step.get("weekdays"))
    if kind == "wait_date":
        target = date.fromisoformat(step["date"]) if step.get("date") else resolve_date_field(
            step["field"], contact, event_payload)
        if target is None:
            return now  # no date to wait for: recorded by the runner, journey goes on
        if isinstance(target, datetime) and not step.get("time"):
            moment = target
        else:
            day = target.astimezone(zone).date() if isinstance(target, datetime) else target
            wall = parse_time_of_day(step["time"]) if step.get("time") else time(0, 0)
            moment = _at_wall_time(day, wall, zone)
        if step.get("offset"):
            moment += parse_duration(step["offset"])
        return max(moment, now)
    return now
