"""Conditions: the one small JSON language behind entry filters, splits, branches,
wait_event filters and exit/goal criteria (reference: ``docs/conditions.md``).

It has two halves that share one vocabulary (``fields.CONTACT_FIELDS``):

* :func:`validate_condition` runs at publish time and lists every problem as a
  readable string that names its location, so a merchant sees
  ``all[1].field: unknown contact field 'contact.frist_name'`` instead of a
  journey that silently never matches.
* :func:`evaluate` runs on live data, which is messy: payload money arrives as
  decimal strings, dates as ISO strings, fields go missing. So evaluation never
  raises because of data; an absent or mismatched value makes its comparison
  false. A malformed condition (one validation would have refused) is false as
  a whole rather than half-evaluated.

No ORM here: event/message history is reached through a :class:`HistoryLookup`
the engine passes in, so this module stays pure and testable without a database.
"""

import json
import math
import operator
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Protocol

from ..fields import CONTACT_FIELDS

UTC = timezone.utc
TYPES = {"string", "number", "datetime", "bool", "list", "any"}
DURATION_UNITS = ("weeks", "days", "hours", "minutes", "seconds")
MESSAGE_ACTIONS = ("sent", "opened", "clicked")
MAX_DEPTH = 32  # deeper nesting is a mistake, and would risk RecursionError
MAX_WINDOW = timedelta(days=36_525)  # a hundred years: windows (within_last, since…) are clamped, never overflow
MAX_MIN_COUNT = 1_000_000

_ORDERED = {"gt": operator.gt, "gte": operator.ge, "lt": operator.lt, "lte": operator.le}
_SPAN_OPS = ("within_last", "older_than", "within_next")
_NO_VALUE_OPS = ("exists", "not_exists")
OPS = ("eq", "ne", "in", "not_in", *_ORDERED, "contains", "not_contains", *_NO_VALUE_OPS,
       *_SPAN_OPS, "before", "after")
# Which field types each operator makes sense for; "any" (payloads, custom attributes) takes all.
_EQUALITY = {"string", "number", "datetime", "bool", "any"}
_DATES = {"datetime", "any"}
_APPLIES = {
    "eq": _EQUALITY, "ne": _EQUALITY, "in": _EQUALITY, "not_in": _EQUALITY,
    **{op: {"number", "datetime", "any"} for op in _ORDERED},
    "contains": {"string", "list", "any"}, "not_contains": {"string", "list", "any"},
    "exists": TYPES, "not_exists": TYPES,
    **{op: _DATES for op in (*_SPAN_OPS, "before", "after")},
}
# Negative operators are "the field has a value and the positive one is false".
_NEGATED = {"ne": "eq", "not_in": "in", "not_contains": "contains"}

_KINDS = ("all", "any", "not", "field", "has_tag", "in_list", "history")
_KEYS = {"all": {"all"}, "any": {"any"}, "not": {"not"}, "field": {"field", "op", "value"},
         "has_tag": {"has_tag"}, "in_list": {"in_list"}}
_HISTORY_KEYS = {"event": {"history", "event", "since", "where", "min_count"},
                 "message": {"history", "action", "scope", "since", "min_count"},
                 # The shop's order history has at least min_count products to recommend for this message
                 # (engine/recommendations.py): "has recommendations".
                 "recommendations": {"history", "min_count"}}
_NUMERIC = re.compile(r"\s*[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d{1,4})?\s*")
_MISSING = object()


# --- shared helpers -------------------------------------------------------

def _short(value) -> str:
    """A value quoted for an error message, cut so a pasted blob doesn't flood the screen."""
    try:
        text = "null" if value is None else repr(value)
    except ValueError:  # an int past Python's digit limit
        text = "<number too large>"
    return text if len(text) <= 60 else text[:57] + "..."


def _at(path: str, key) -> str:
    return f"{path}.{key}" if path else str(key)


def _is_number(value) -> bool:
    """A JSON number. Booleans are ints in Python but never numbers here."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _number(value) -> Decimal | None:
    """Value as an exact Decimal, including numeric strings ("40.00": Saleor's money)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None  # repr: 0.1 == "0.10"
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, str) and len(value) <= 64 and _NUMERIC.fullmatch(value):
        return Decimal(value.strip())
    return None


def _datetime(value) -> datetime | None:
    """Value as an aware UTC datetime (datetime, date, or ISO string; naive means UTC)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except (OverflowError, ValueError):  # e.g. year 1 at +01:00
        return None


def _shift(moment: datetime, delta: timedelta) -> datetime:
    """moment + delta, clamped to the calendar instead of overflowing on absurd durations."""
    try:
        return moment + delta
    except OverflowError:
        return datetime.max.replace(tzinfo=UTC) if delta > timedelta(0) else datetime.min.replace(tzinfo=UTC)


def parse_duration(obj) -> timedelta:
    """``{"days": 30}`` → timedelta. Units: weeks, days, hours, minutes, seconds; may be negative.

    Shared with wait steps, so the same object means the same span everywhere.
    Raises ValueError with a message fit for a merchant.
    """
    if not isinstance(obj, dict) or not obj:
        raise ValueError(f'a duration must be an object like {{"days": 30}}, got {_short(obj)}')
    for unit, amount in obj.items():
        if unit not in DURATION_UNITS:
            raise ValueError(f"unknown duration unit {_short(unit)} (use {', '.join(DURATION_UNITS)})")
        if not _is_number(amount):
            raise ValueError(f"duration {unit} must be a number, got {_short(amount)}")
    try:
        return timedelta(**obj)
    except OverflowError:
        raise ValueError(f"duration {_short(obj)} is too large") from None


def bounded_duration(obj, limit: timedelta, *, negative: bool = False) -> timedelta:
    """``parse_duration`` for what a merchant writes: at most ``limit`` long, and not negative unless allowed.

    Raises ValueError with a message fit for a merchant.
    """
    span = parse_duration(obj)
    if span < timedelta(0) and not negative:
        raise ValueError("a duration must not be negative")
    if abs(span) > limit:
        raise ValueError(f"duration {_short(obj)} is longer than {limit.days} days")
    return span


def _kind(cond) -> tuple[str | None, str | None]:
    """Which kind of node this is, or why it is none."""
    if not isinstance(cond, dict):
        return None, f"expected a condition object, got {_short(cond)}"
    kinds = [k for k in _KINDS if k in cond]
    if not kinds:
        return None, "expected one of: all, any, not, field, has_tag, in_list, history"
    if len(kinds) > 1:
        return None, f"mixes {' and '.join(map(repr, kinds))}; combine them with 'all' or 'any'"
    return kinds[0], None


# --- validation (publish time) ----------------------------------------------

@dataclass(frozen=True)
class _Scope:
    allow_event: bool
    allow_contact: bool  # false inside a history 'where': only the event's payload is there
    event_fields: dict


def validate_condition(cond, *, allow_event=True, event_fields=None, path="") -> list[str]:
    """Every problem in ``cond`` as ``"<location>: <message>"``; an empty list means valid.

    ``allow_event`` is false where no event exists (e.g. a criterion checked on a
    timer); ``event_fields`` maps known payload paths (``"total"`` or
    ``"event.total"``) to a type name; other event paths are allowed since
    payloads are open. ``path`` prefixes locations (``"steps.s1.condition"``).
    Never raises, whatever JSON comes in.
    """
    errors: list[str] = []
    fields = event_fields if isinstance(event_fields, dict) else {}
    _check(cond, path, errors, _Scope(allow_event, True, fields), 0)
    return errors


def _check(cond, path, errors, scope, depth):
    here = path or "condition"
    if depth > MAX_DEPTH:
        errors.append(f"{here}: nested too deeply (at most {MAX_DEPTH} levels)")
        return
    kind, problem = _kind(cond)
    if problem:
        errors.append(f"{here}: {problem}")
        return
    if kind == "history":
        history = cond["history"]
        allowed = _HISTORY_KEYS.get(history) if isinstance(history, str) else None
        if allowed is None:
            errors.append(f"{_at(path, 'history')}: unknown history {_short(history)} (expected 'event', 'message' or 'recommendations')")
            return
    else:
        allowed = _KEYS[kind]
    for key in cond:
        if key not in allowed:
            errors.append(f"{_at(path, key)}: unknown key (allowed here: {', '.join(sorted(allowed))})")

    if kind in ("all", "any"):
        items = cond[kind]
        if not isinstance(items, list) or not items:
            errors.append(f"{_at(path, kind)}: expected a non-empty list of conditions")
            return
        for i, item in enumerate(items):
            _check(item, _at(path, f"{kind}[{i}]"), errors, scope, depth + 1)
    elif kind == "not":
        _check(cond["not"], _at(path, "not"), errors, scope, depth + 1)
    elif kind in ("has_tag", "in_list"):
        if not scope.allow_contact:
            errors.append(f"{here}: {kind} reads the contact, which a history 'where' cannot see")
        name = cond[kind]
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{_at(path, kind)}: expected a non-empty string, got {_short(name)}")
    elif kind == "field":
        _check_comparison(cond, path, errors, scope)
    else:
        _check_history(cond, path, errors, scope, depth)


def _field_type(path, scope) -> tuple[str | None, str | None]:
    """The declared type of a field path, or why the path is not acceptable."""
    if not isinstance(path, str) or not path:
        return None, f"expected a field path like 'contact.first_name', got {_short(path)}"
    parts = path.split(".")
    if "" in parts:
        return None, f"malformed field path {path!r}"
    root, rest = parts[0], parts[1:]
    if root == "contact":
        if not scope.allow_contact:
            return None, f"{path!r}: a history 'where' sees only the event (use event.…)"
        if not rest:
            return None, "'contact' needs a field name, like 'contact.first_name'"
        ftype = CONTACT_FIELDS.get(rest[0])
        if ftype is None:
            return None, f"unknown contact field {path!r}"
        if len(rest) > 1 and ftype != "any":
            return None, f"'contact.{rest[0]}' has no sub-fields ({path!r})"
        return ftype, None
    if root == "event":
        if not scope.allow_event:
            return None, f"event fields are not available here ({path!r})"
        if not rest:
            return None, "'event' needs a path into the payload, like 'event.total'"
        ftype = scope.event_fields.get(path, scope.event_fields.get(".".join(rest), "any"))
        return (ftype if isinstance(ftype, str) and ftype in TYPES else "any"), None
    return None, f"unknown root {root!r} in {path!r} (use contact.… or event.…)"


def _check_comparison(cond, path, errors, scope):
    fpath = cond["field"]
    ftype, problem = _field_type(fpath, scope)
    if problem:
        errors.append(f"{_at(path, 'field')}: {problem}")
    op = cond.get("op")
    if not isinstance(op, str) or op not in OPS:
        what = "missing" if "op" not in cond else f"unknown operator {_short(op)}"
        errors.append(f"{_at(path, 'op')}: {what} (expected one of: {', '.join(OPS)})")
        return
    if ftype is None:  # the value's type can't be judged against a bad field; one error per cause
        return
    if ftype not in _APPLIES[op]:
        errors.append(f"{_at(path, 'op')}: {op!r} does not apply to {fpath!r} (a {ftype} field)")
        return
    if op in _NO_VALUE_OPS:
        if "value" in cond:
            errors.append(f"{_at(path, 'value')}: {op!r} takes no value")
        return
    if "value" not in cond:
        errors.append(f"{_at(path, 'value')}: missing (required by {op!r})")
        return
    for where, message in _value_problems(op, ftype, cond["value"]):
        errors.append(f"{_at(path, where)}: {message}")


def _is_iso(value) -> bool:
    return isinstance(value, str) and _datetime(value) is not None


# The kinds of value an operator can need: (test, how to say it in an error).
_EXPECT = {
    "string": (lambda v: isinstance(v, str), "a string"),
    "number": (_is_number, "a number"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "datetime": (_is_iso, "an ISO date or datetime string"),
    "any": (lambda v: True, "a value"),
    "number or date": (lambda v: _is_number(v) or _is_iso(v), "a number or an ISO date"),
    "scalar": (lambda v: isinstance(v, (str, bool)) or _is_number(v), "a string or number"),
}


def _expected(op, ftype) -> str:
    """Which kind of value (a key of _EXPECT) ``op`` needs on a ``ftype`` field."""
    if op in _ORDERED:
        return ftype if ftype in ("number", "datetime") else "number or date"
    if op in ("contains", "not_contains"):
        return "string" if ftype in ("string", "list") else "scalar"
    if op in ("before", "after"):
        return "datetime"
    return ftype  # eq, ne, in, not_in: a value like the field's own


def _value_problems(op, ftype, value) -> list[tuple[str, str]]:
    if op in _SPAN_OPS:
        try:
            bounded_duration(value, MAX_WINDOW)
        except ValueError as exc:
            return [("value", str(exc))]
        return []
    if op in ("in", "not_in"):
        if not isinstance(value, list):
            return [("value", f"{op!r} needs a list, got {_short(value)}")]
        items = [(f"value[{i}]", item) for i, item in enumerate(value)]
    else:
        items = [("value", value)]
    test, label = _EXPECT[_expected(op, ftype)]
    problems = []
    for where, item in items:
        if item is None:
            problems.append((where, "null is not a value; use exists / not_exists"))
        elif not test(item):
            problems.append((where, f"expected {label}, got {_short(item)}"))
    return problems


def _since_problem(since) -> str | None:
    if since is None or since in ("entered", "triggered"):
        return None
    try:
        parse_duration(since)
    except ValueError as exc:
        return f"expected 'entered', 'triggered', a duration like {{\"days\": 30}} or null: {exc}"
    try:
        bounded_duration(since, MAX_WINDOW)
    except ValueError as exc:
        return str(exc)
    return None


def _check_history(cond, path, errors, scope, depth):
    here = path or "condition"
    if not scope.allow_contact:
        errors.append(f"{here}: history cannot be used inside a history 'where'")
        return
    if cond["history"] == "recommendations":
        pass  # only min_count, checked below
    elif cond["history"] == "event":
        name = cond.get("event")
        if not isinstance(name, str) or not name.strip():
            errors.append(f"{_at(path, 'event')}: expected an event name, got {_short(name)}")
        if cond.get("where") is not None:
            _check(cond["where"], _at(path, "where"), errors, _Scope(True, False, {}), depth + 1)
    else:
        action = cond.get("action")
        if not isinstance(action, str) or action not in MESSAGE_ACTIONS:
            errors.append(f"{_at(path, 'action')}: expected one of {', '.join(MESSAGE_ACTIONS)}, got {_short(action)}")
        scope_ = cond.get("scope", "any")
        if scope_ not in ("flow", "any"):
            errors.append(f"{_at(path, 'scope')}: expected 'flow' or 'any', got {_short(scope_)}")
    if problem := _since_problem(cond.get("since")):
        errors.append(f"{_at(path, 'since')}: {problem}")
    count = cond.get("min_count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_MIN_COUNT:
        errors.append(f"{_at(path, 'min_count')}: expected a whole number from 1 to {MAX_MIN_COUNT}, "
                      f"got {_short(count)}")


# --- evaluation (run time) --------------------------------------------------

class HistoryLookup(Protocol):
    """What the engine provides for history conditions (implemented with DB queries).

    ``since`` is already resolved to a moment (None: all time). ``where`` is the
    condition's raw filter; the engine applies it per stored event payload, e.g.
    with :func:`matches_payload`.
    """

    def count_events(self, name: str, since: datetime | None, where: dict | None) -> int: ...

    def count_messages(self, action: str, since: datetime | None, flow_only: bool) -> int: ...

    def count_recommendations(self, limit: int) -> int: ...


@dataclass
class EvalContext:
    """What a condition can see. ``contact`` is ``Contact.as_context()``; ``event`` the payload."""

    contact: dict
    event: dict | None
    now: datetime
    history: HistoryLookup | None = None
    entered_at: datetime | None = None  # None before enrolment: "since entered" then means now
    triggered_at: datetime | None = None  # when the trigger event occurred ("since triggered")


@dataclass
class Decision:
    """The outcome plus the values it rested on, for the engine's why-trail.

    ``facts`` maps each field path / history expression consulted to the value
    seen (JSON-serializable; None when absent). ``all``/``any`` stop early, so
    only what decided the result is listed (and no needless history queries run).
    """

    result: bool
    facts: dict[str, Any] = field(default_factory=dict)

    def __bool__(self):
        return self.result


class _Malformed(Exception):
    """The condition itself is broken (validation would have refused it)."""


def evaluate(cond, ctx: EvalContext) -> Decision:
    """Evaluate ``cond`` against ``ctx``. Data never makes this raise; a malformed condition is False.

    Only a missing ``ctx.now`` (a programming error, not data) raises TypeError.
    """
    now = _datetime(ctx.now)
    if now is None:
        raise TypeError(f"EvalContext.now must be a datetime, got {ctx.now!r}")
    facts: dict[str, Any] = {}
    try:
        result = _eval(cond, replace(ctx, now=now), facts, 0)
    except _Malformed:
        result = False
    return Decision(bool(result), facts)


def reads_trigger_event(cond) -> bool:
    """Whether evaluating ``cond`` may read the trigger event: its payload (``event.…``) or its time
    (history ``since: "triggered"``). A malformed node answers yes: the event is then given as usual.

    Lets a journey's goal or exit be checked without loading the event that started the journey
    when the condition is about the contact only (processing checks thousands per batch).
    """
    kind, problem = _kind(cond)
    if problem:
        return True
    if kind in ("all", "any"):
        return not isinstance(cond[kind], list) or any(reads_trigger_event(item) for item in cond[kind])
    if kind == "not":
        return reads_trigger_event(cond["not"])
    if kind == "field":
        return not isinstance(cond["field"], str) or cond["field"].partition(".")[0] != "contact"
    if kind == "history":
        return cond.get("since") == "triggered"
    return False  # has_tag, in_list: the contact's


def matches_payload(where, payload, now) -> bool:
    """Does one event payload satisfy a history ``where``? (None matches everything.)

    For the engine's ``count_events``: ``where`` sees the payload as ``event.*``.
    """
    if where is None:
        return True
    event = payload if isinstance(payload, dict) else None
    return evaluate(where, EvalContext(contact={}, event=event, now=now)).result


def _eval(cond, ctx, facts, depth) -> bool:
    kind, problem = _kind(cond)
    if problem or depth > MAX_DEPTH:
        raise _Malformed
    if kind in ("all", "any"):
        items = cond[kind]
        if not isinstance(items, list) or not items:
            raise _Malformed
        results = (_eval(item, ctx, facts, depth + 1) for item in items)
        return all(results) if kind == "all" else any(results)
    if kind == "not":
        return not _eval(cond["not"], ctx, facts, depth + 1)
    if kind in ("has_tag", "in_list"):
        name = cond[kind]
        if not isinstance(name, str):
            raise _Malformed
        values = _lookup(ctx, "contact.tags" if kind == "has_tag" else "contact.lists", facts)
        return isinstance(values, list) and name in values
    if kind == "field":
        return _eval_comparison(cond, ctx, facts)
    return _eval_history(cond, ctx, facts)


def dig(value, path: str, missing=None):
    """Follow a dotted path through dicts and lists (a numeric part indexes a list); ``missing`` if it leads nowhere."""
    for part in path.split("."):
        if isinstance(value, dict):
            value = value.get(part, missing)
        elif isinstance(value, list) and part.isascii() and part.isdigit() and len(part) < 10 and int(part) < len(value):
            value = value[int(part)]
        else:
            return missing
        if value is missing:
            return missing
    return value


def correlated(paths, payload, trigger_payload) -> bool:
    """A ``wait_event``'s ``correlate``: the event names the same order/checkout (non-null, equal) at every path."""
    for path in paths or []:
        value = dig(payload, path)
        if value is None or value != dig(trigger_payload, path):
            return False
    return True


def _lookup(ctx, path, facts):
    """Follow ``contact.…`` / ``event.…`` (list indexes allowed); record what was seen."""
    if not isinstance(path, str):
        raise _Malformed
    root, _, rest = path.partition(".")
    if root not in ("contact", "event") or not rest:
        raise _Malformed
    value = dig(ctx.contact if root == "contact" else ctx.event, rest, _MISSING)
    facts[path] = None if value is _MISSING else _jsonable(value)
    return value


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)  # Decimal and anything exotic


def _has_value(value) -> bool:
    """exists: present, not null, and not empty ("" / [] / {}), e.g. a contact with no phone."""
    if value is _MISSING or value is None:
        return False
    return not (isinstance(value, (str, list, dict)) and len(value) == 0)


def _eval_comparison(cond, ctx, facts) -> bool:
    op = cond.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise _Malformed
    path = cond["field"]
    actual = _lookup(ctx, path, facts)
    if op in _NO_VALUE_OPS:
        return _has_value(actual) == (op == "exists")
    if "value" not in cond:
        raise _Malformed
    if actual is _MISSING or actual is None:
        return False
    # Known datetime contact fields compare as moments even against differently written ISO strings.
    as_dates = path.startswith("contact.") and CONTACT_FIELDS.get(path[8:]) == "datetime"
    if op in _NEGATED:
        return not _test(_NEGATED[op], actual, cond["value"], ctx.now, as_dates)
    return _test(op, actual, cond["value"], ctx.now, as_dates)


def _equal(a, b, as_dates=False) -> bool:
    """Equality across JSON's looseness: 40 == "40.00", a datetime == its ISO string, True != 1."""
    if as_dates or isinstance(a, date) or isinstance(b, date):
        moment = _datetime(a)
        return moment is not None and moment == _datetime(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float, Decimal)) or isinstance(b, (int, float, Decimal)):
        number = _number(a)
        return number is not None and number == _number(b)
    return type(a) is type(b) and a == b


def _test(op, actual, value, now, as_dates) -> bool:
    if op == "eq":
        return _equal(actual, value, as_dates)
    if op == "in":
        if not isinstance(value, list):
            raise _Malformed
        return any(_equal(actual, item, as_dates) for item in value)
    if op == "contains":
        if isinstance(actual, list):
            return any(_equal(item, value) for item in actual)
        return isinstance(actual, str) and isinstance(value, str) and value in actual
    if op in _ORDERED:
        if (bound := _number(value)) is not None:
            number = _number(actual)
            return number is not None and _ORDERED[op](number, bound)
        if (bound := _datetime(value)) is not None:
            moment = _datetime(actual)
            return moment is not None and _ORDERED[op](moment, bound)
        raise _Malformed
    if op in ("before", "after"):
        bound = _datetime(value)
        if bound is None:
            raise _Malformed
        moment = _datetime(actual)
        return moment is not None and (moment < bound if op == "before" else moment > bound)
    try:  # within_last / older_than / within_next
        span = parse_duration(value)
    except ValueError:
        raise _Malformed from None
    moment = _datetime(actual)
    if moment is None:
        return False
    if op == "within_last":
        return _shift(now, -span) <= moment <= now
    if op == "older_than":
        return moment < _shift(now, -span)
    return now <= moment <= _shift(now, span)


def _resolve_since(since, ctx) -> datetime | None:
    if since is None:
        return None
    if since == "entered":
        return _datetime(ctx.entered_at) or ctx.now
    if since == "triggered":
        # When the trigger happened, which can be before entering: a checkout is
        # abandoned at its last activity, not when the idle timer noticed.
        return _datetime(ctx.triggered_at) or _datetime(ctx.entered_at) or ctx.now
    try:
        return _shift(ctx.now, -parse_duration(since))
    except ValueError:
        raise _Malformed from None


def _describe(cond) -> str:
    """A readable, stable key for a history condition in ``facts``."""
    if cond["history"] == "recommendations":
        return "history.recommendations()"
    since = cond.get("since")
    parts = [f"since={since if isinstance(since, str) or since is None else json.dumps(since, default=str)}"]
    if cond["history"] == "event":
        parts.insert(0, str(cond.get("event")))
        if cond.get("where") is not None:
            parts.append(f"where={json.dumps(cond['where'], ensure_ascii=False, default=str)}")
        return f"history.event({', '.join(parts)})"
    parts[:0] = [str(cond.get("action")), f"scope={cond.get('scope', 'any')}"]
    return f"history.message({', '.join(parts)})"


def _eval_history(cond, ctx, facts) -> bool:
    kind = cond["history"]
    count_needed = cond.get("min_count", 1)
    if kind not in _HISTORY_KEYS or not isinstance(count_needed, int) or isinstance(count_needed, bool):
        raise _Malformed
    since = _resolve_since(cond.get("since"), ctx)
    if kind == "recommendations":
        pass
    elif kind == "event":
        name, where = cond.get("event"), cond.get("where")
        if not isinstance(name, str) or not (where is None or isinstance(where, dict)):
            raise _Malformed
    else:
        action, scope = cond.get("action"), cond.get("scope", "any")
        if action not in MESSAGE_ACTIONS or scope not in ("flow", "any"):
            raise _Malformed
    key = _describe(cond)
    if ctx.history is None:  # nothing to ask: record that, and treat as "no such history"
        facts[key] = None
        return False
    if kind == "recommendations":
        count = ctx.history.count_recommendations(count_needed)
    elif kind == "event":
        count = ctx.history.count_events(name, since, where)
    else:
        count = ctx.history.count_messages(action, since, scope == "flow")
    facts[key] = count
    return count >= count_needed
