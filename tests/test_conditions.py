"""The condition language: every operator, validation messages, and robustness on messy data.

Pure Python: no database. ``FakeHistory`` stands in for the engine's DB-backed
HistoryLookup (the engine tests cover the real one).
"""

import json
import re
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from saleor_flows.engine.conditions import (
    OPS,
    Decision,
    EvalContext,
    evaluate,
    matches_payload,
    parse_duration,
    validate_condition,
)

UTC = timezone.utc
NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
ENTERED = datetime(2024, 6, 10, 9, 0, tzinfo=UTC)


def make_contact(**overrides):
    """Shaped like Contact.as_context()."""
    data = {
        "id": 7, "email": "ada@example.com", "user_id": None, "phone": "", "first_name": "Ada",
        "last_name": "Lovelace", "locale": "en", "timezone": "", "order_count": 3, "total_spent": 120.5,
        "currency": "USD", "first_order_at": datetime(2023, 1, 5, tzinfo=UTC),
        "last_order_at": NOW - timedelta(days=10), "created_at": datetime(2022, 12, 1, tzinfo=UTC),
        "tags": ["vip", "early"], "lists": ["newsletter"], "email_consent": "subscribed",
        "sms_consent": "never", "suppressed": False, "attributes": {"plan": "pro", "size": {"eu": 42}},
    }
    data.update(overrides)
    return data


class FakeHistory:
    """Stores (name, at, payload) events and (action, at, in_flow) messages; records the calls."""

    def __init__(self, events=(), messages=()):
        self.events, self.messages, self.calls = list(events), list(messages), []

    def count_events(self, name, since, where):
        self.calls.append(("events", name, since, where))
        return sum(1 for n, at, payload in self.events
                   if n == name and (since is None or at >= since) and matches_payload(where, payload, NOW))

    def count_messages(self, action, since, flow_only):
        self.calls.append(("messages", action, since, flow_only))
        return sum(1 for a, at, in_flow in self.messages
                   if a == action and (since is None or at >= since) and (in_flow or not flow_only))


def run(cond, contact=None, event=None, history=None, entered_at=ENTERED, now=NOW):
    ctx = EvalContext(contact=make_contact() if contact is None else contact, event=event, now=now,
                      history=history, entered_at=entered_at)
    return evaluate(cond, ctx)


def cmp(field, op, value=None, **extra):
    cond = {"field": field, "op": op, **extra}
    if op not in ("exists", "not_exists"):
        cond["value"] = value
    return cond


# --- operators: each true and false -----------------------------------------

PAYLOAD = {"total": "40.00", "count": 2, "note": "gift wrap please", "items": ["a", "b"],
           "lines": [{"product_name": "Blue Hoodie", "price": "19.99"}], "paid": True,
           "created": "2024-06-15T10:00:00+02:00", "empty": "", "nothing": None}

OPERATOR_CASES = [
    # eq / ne
    (cmp("contact.first_name", "eq", "Ada"), True),
    (cmp("contact.first_name", "eq", "Bob"), False),
    (cmp("contact.first_name", "ne", "Bob"), True),
    (cmp("contact.first_name", "ne", "Ada"), False),
    (cmp("contact.suppressed", "eq", False), True),
    (cmp("contact.suppressed", "eq", True), False),
    (cmp("event.lines.0.product_name", "eq", "Blue Hoodie"), True),
    (cmp("event.lines.1.product_name", "eq", "Blue Hoodie"), False),
    # ordering
    (cmp("contact.order_count", "gt", 2), True),
    (cmp("contact.order_count", "gt", 3), False),
    (cmp("contact.order_count", "gte", 3), True),
    (cmp("contact.order_count", "gte", 4), False),
    (cmp("contact.order_count", "lt", 4), True),
    (cmp("contact.order_count", "lt", 3), False),
    (cmp("contact.order_count", "lte", 3), True),
    (cmp("contact.order_count", "lte", 2), False),
    (cmp("contact.total_spent", "gt", 120.49), True),
    (cmp("contact.total_spent", "gt", 120.5), False),
    (cmp("contact.created_at", "lt", "2023-01-01"), True),
    (cmp("contact.created_at", "gt", "2023-01-01"), False),
    # in / not_in
    (cmp("contact.email_consent", "in", ["subscribed", "never"]), True),
    (cmp("contact.email_consent", "in", ["unsubscribed"]), False),
    (cmp("contact.email_consent", "not_in", ["unsubscribed"]), True),
    (cmp("contact.email_consent", "not_in", ["subscribed"]), False),
    (cmp("contact.order_count", "in", [1, 2, 3]), True),
    # contains / not_contains: lists and strings
    (cmp("contact.tags", "contains", "vip"), True),
    (cmp("contact.tags", "contains", "vi"), False),
    (cmp("contact.tags", "not_contains", "wholesale"), True),
    (cmp("contact.tags", "not_contains", "vip"), False),
    (cmp("contact.email", "contains", "@example.com"), True),
    (cmp("contact.email", "contains", "@gmail.com"), False),
    (cmp("contact.email", "not_contains", "@gmail.com"), True),
    (cmp("contact.email", "not_contains", "ada"), False),
    (cmp("event.note", "contains", "gift"), True),
    (cmp("event.items", "contains", "c"), False),
    # exists / not_exists
    (cmp("contact.email", "exists"), True),
    (cmp("contact.phone", "exists"), False),  # "" is no phone
    (cmp("contact.user_id", "exists"), False),  # null
    (cmp("contact.phone", "not_exists"), True),
    (cmp("contact.email", "not_exists"), False),
    (cmp("event.nothing", "not_exists"), True),
    (cmp("event.empty", "exists"), False),
    (cmp("event.total", "exists"), True),
    (cmp("event.missing.deeper", "not_exists"), True),
    (cmp("contact.attributes.size.eu", "exists"), True),
    (cmp("contact.attributes.size.us", "exists"), False),
    # date arithmetic (last_order_at is 10 days ago)
    (cmp("contact.last_order_at", "within_last", {"days": 30}), True),
    (cmp("contact.last_order_at", "within_last", {"days": 9}), False),
    (cmp("contact.last_order_at", "older_than", {"days": 9}), True),
    (cmp("contact.last_order_at", "older_than", {"weeks": 2}), False),
    (cmp("event.created", "within_next", {"hours": 1}), False),  # 08:00 UTC: already past
    (cmp("contact.created_at", "before", "2022-12-02"), True),
    (cmp("contact.created_at", "before", "2022-12-01"), False),
    (cmp("contact.created_at", "after", "2022-11-30T23:59:59Z"), True),
    (cmp("contact.created_at", "after", "2022-12-01T00:00:00Z"), False),
    (cmp("event.created", "before", "2024-06-15T08:00:01Z"), True),
    (cmp("event.created", "after", "2024-06-15T08:00:00Z"), False),
]


@pytest.mark.parametrize("cond,expected", OPERATOR_CASES, ids=lambda v: json.dumps(v) if isinstance(v, dict) else None)
def test_operator(cond, expected):
    assert validate_condition(cond) == []
    assert run(cond, event=PAYLOAD).result is expected


def test_every_operator_is_covered_true_and_false():
    seen = {(case[0]["op"], case[1]) for case in OPERATOR_CASES}
    for op in OPS:
        if op != "within_next":  # its true case lives in the boundary tests below
            assert (op, True) in seen and (op, False) in seen, op


def test_missing_field_makes_every_comparison_false():
    for op, value in [("eq", "x"), ("ne", "x"), ("in", ["x"]), ("not_in", ["x"]), ("gt", 1), ("lt", 1),
                      ("contains", "x"), ("not_contains", "x"), ("within_last", {"days": 1}),
                      ("older_than", {"days": 1}), ("within_next", {"days": 1}), ("before", "2030-01-01"),
                      ("after", "2000-01-01"), ("exists", None)]:
        assert run(cmp("event.absent", op, value), event=PAYLOAD).result is False, op
        assert run(cmp("event.absent", op, value), event=None).result is False, op
        assert run(cmp("contact.first_name", op, value), contact=make_contact(first_name=None)).result is False, op
    assert run(cmp("event.absent", "not_exists"), event=None).result is True


# --- numbers in strings, booleans, mixed types ------------------------------

@pytest.mark.parametrize("actual,op,value,expected", [
    ("40.00", "eq", 40, True),
    ("40.00", "eq", 40.0, True),
    ("40.00", "ne", 40, False),
    ("40.00", "gte", 40, True),
    ("40.00", "gt", 40, False),
    ("40.01", "gt", 40, True),
    (" 39.99 ", "lt", 40, True),
    ("40.00", "in", [10, 40], True),
    ("0.10", "eq", 0.1, True),
    ("-5", "lt", 0, True),
    ("1e3", "eq", 1000, True),
    (40, "eq", "40.00", True),  # number in payload, numeric string in the condition
    (40, "gte", "39.5", True),
    ("40.00", "eq", "40", False),  # two strings compare as strings
    ("abc", "gt", 5, False),
    ("abc", "lt", 5, False),
    ("abc", "eq", 5, False),
    ("abc", "ne", 5, True),  # it has a value and it isn't 5
    ("NaN", "eq", "NaN", True),
    ("NaN", "gt", 5, False),
    ("Infinity", "gt", 5, False),
    (True, "eq", 1, False),
    (1, "eq", True, False),
    (True, "eq", True, True),
    ("true", "eq", True, False),
    ([1, 2], "gt", 1, False),
    ({"a": 1}, "contains", "a", False),
    (5, "contains", "5", False),
    (5, "not_contains", "5", True),
    ("2024-06-15T08:00:00Z", "eq", "2024-06-15T10:00:00+02:00", False),  # any-typed: plain strings
    ("2024-06-15T08:00:00Z", "gte", "2024-06-15T10:00:00+02:00", True),  # ordering parses dates
    (12345678901234567890, "eq", "12345678901234567890.0", True),  # exact, no float rounding
])
def test_runtime_coercion(actual, op, value, expected):
    assert run(cmp("event.x", op, value), event={"x": actual}).result is expected


def test_contact_datetime_fields_compare_as_moments():
    contact = make_contact(created_at=datetime(2022, 12, 1, 1, 0, tzinfo=UTC))
    assert run(cmp("contact.created_at", "eq", "2022-12-01T02:00:00+01:00"), contact=contact).result is True
    assert run(cmp("contact.created_at", "in", ["2022-12-01T01:00:00Z"]), contact=contact).result is True
    assert run(cmp("contact.created_at", "ne", "2022-12-01T01:00:00"), contact=contact).result is False
    # As stored in a payload (string) the same field still compares as a moment.
    assert run(cmp("contact.created_at", "eq", "2022-12-01T01:00:00Z"),
               contact=make_contact(created_at="2022-12-01T02:00:00+01:00")).result is True


# --- date arithmetic at the boundaries --------------------------------------

@pytest.mark.parametrize("offset,within_last,older_than", [
    (timedelta(days=30), True, False),  # exactly 30 days ago: still within, not older
    (timedelta(days=30, seconds=1), False, True),
    (timedelta(days=29, hours=23, minutes=59, seconds=59), True, False),
    (timedelta(0), True, False),  # right now
    (-timedelta(seconds=1), False, False),  # the future is neither
])
def test_within_last_and_older_than_boundaries(offset, within_last, older_than):
    contact = make_contact(last_order_at=NOW - offset)
    assert run(cmp("contact.last_order_at", "within_last", {"days": 30}), contact=contact).result is within_last
    assert run(cmp("contact.last_order_at", "older_than", {"days": 30}), contact=contact).result is older_than


@pytest.mark.parametrize("offset,expected", [
    (timedelta(0), True),
    (timedelta(hours=2), True),
    (timedelta(hours=2, seconds=1), False),
    (timedelta(minutes=30), True),
    (-timedelta(seconds=1), False),
])
def test_within_next_boundaries(offset, expected):
    event = {"delivery_at": (NOW + offset).isoformat()}
    assert run(cmp("event.delivery_at", "within_next", {"hours": 2}), event=event).result is expected


def test_dates_from_payloads_naive_and_offsets():
    # Naive datetimes (objects or strings) are UTC.
    assert run(cmp("event.at", "within_last", {"hours": 1}), event={"at": "2024-06-15T11:30:00"}).result is True
    assert run(cmp("event.at", "within_last", {"hours": 1}), event={"at": "2024-06-15T11:30:00+01:00"}).result is False
    naive = make_contact(last_order_at=datetime(2024, 6, 15, 11, 30))
    assert run(cmp("contact.last_order_at", "within_last", {"minutes": 30}), contact=naive).result is True
    assert run(cmp("contact.last_order_at", "within_last", {"minutes": 29}), contact=naive).result is False
    # A naive `now` is UTC too.
    assert run(cmp("event.at", "older_than", {"minutes": 29}), event={"at": "2024-06-15T11:30:00Z"},
               now=datetime(2024, 6, 15, 12, 0)).result is True
    # Dates (no time) are midnight UTC.
    assert run(cmp("event.day", "before", "2024-06-15T00:00:01Z"), event={"day": "2024-06-15"}).result is True
    assert run(cmp("event.day", "within_last", {"hours": 12}), event={"day": "2024-06-15"}).result is True
    assert run(cmp("contact.attributes.birthday", "after", "2000-01-01"),
               contact=make_contact(attributes={"birthday": date(2000, 1, 2)})).result is True
    # Not a date: false, not a crash.
    assert run(cmp("event.at", "within_last", {"days": 1}), event={"at": "yesterday"}).result is False
    assert run(cmp("event.at", "before", "2030-01-01"), event={"at": 1718449200}).result is False


def test_huge_durations_are_refused_and_clamp_instead_of_overflowing():
    cond = cmp("contact.created_at", "within_last", {"days": 999_999_999})
    assert validate_condition(cond) == ["value: duration {'days': 999999999} is longer than 36525 days"]
    assert validate_condition(cmp("contact.created_at", "within_last", {"days": 36_525})) == []
    # One stored before the bound (or written around validation) still evaluates, clamped to the calendar.
    assert run(cond).result is True
    assert run(cmp("contact.created_at", "older_than", {"days": 999_999_999})).result is False
    assert run(cmp("event.at", "within_next", {"days": 999_999_999}), event={"at": "9999-12-31"}).result is True


# --- combinators and sugar --------------------------------------------------

def test_combinators():
    yes, no = cmp("contact.first_name", "eq", "Ada"), cmp("contact.first_name", "eq", "Bob")
    assert run({"all": [yes, yes]}).result is True
    assert run({"all": [yes, no]}).result is False
    assert run({"any": [no, yes]}).result is True
    assert run({"any": [no, no]}).result is False
    assert run({"not": no}).result is True
    assert run({"not": yes}).result is False
    assert run({"all": [{"any": [no, {"not": no}]}, {"not": {"all": [yes, no]}}]}).result is True


def test_facts_record_what_decided_the_result():
    decision = run({"all": [cmp("contact.order_count", "gte", 3), cmp("event.total", "gt", 10),
                            cmp("contact.last_order_at", "exists")]}, event={"total": "40.00"})
    assert decision == Decision(True, {"contact.order_count": 3, "event.total": "40.00",
                                       "contact.last_order_at": (NOW - timedelta(days=10)).isoformat()})
    assert json.loads(json.dumps(decision.facts)) == decision.facts
    assert bool(decision) is True
    # `any` stops at the first true: later fields are not consulted (nor listed).
    decision = run({"any": [cmp("contact.order_count", "gt", 1), cmp("contact.first_name", "eq", "x")]})
    assert decision.facts == {"contact.order_count": 3}
    # Absent values are recorded as None.
    assert run(cmp("event.total", "gt", 1), event={}).facts == {"event.total": None}


def test_sugar():
    assert run({"has_tag": "vip"}) == Decision(True, {"contact.tags": ["vip", "early"]})
    assert run({"has_tag": "wholesale"}).result is False
    assert run({"in_list": "newsletter"}) == Decision(True, {"contact.lists": ["newsletter"]})
    assert run({"in_list": "sms"}).result is False
    assert run({"has_tag": "vip"}, contact=make_contact(tags=None)).result is False
    assert run({"has_tag": "vip"}, contact={}).result is False


# --- history ----------------------------------------------------------------

def test_history_event_since_resolution():
    history = FakeHistory(events=[
        ("order_created", NOW - timedelta(days=60), {"total": "10.00"}),
        ("order_created", NOW - timedelta(days=20), {"total": "80.00"}),
        ("order_created", ENTERED + timedelta(hours=1), {"total": "15.00"}),
        ("checkout_updated", NOW - timedelta(hours=1), {}),
    ])
    base = {"history": "event", "event": "order_created"}
    assert run({**base, "since": "entered"}, history=history).result is True
    assert history.calls[-1] == ("events", "order_created", ENTERED, None)
    assert run({**base, "since": {"days": 30}, "min_count": 2}, history=history).result is True
    assert history.calls[-1] == ("events", "order_created", NOW - timedelta(days=30), None)
    assert run({**base, "since": {"days": 30}, "min_count": 3}, history=history).result is False
    assert run({**base, "since": None, "min_count": 3}, history=history).result is True
    assert history.calls[-1] == ("events", "order_created", None, None)
    assert run(base, history=history).result is True  # since absent = all time
    assert history.calls[-1][2] is None
    # Before enrolment ("entered" in an entry filter) means now: nothing has happened since.
    assert run({**base, "since": "entered"}, history=history, entered_at=None).result is False
    assert history.calls[-1][2] == NOW
    assert run({"history": "event", "event": "refund", "since": "entered"}, history=history).result is False


def test_history_event_where_is_passed_through_and_matches_payloads():
    history = FakeHistory(events=[("order_created", NOW - timedelta(days=2), {"total": "80.00"}),
                                  ("order_created", NOW - timedelta(days=1), {"total": "15.00"})])
    where = {"field": "event.total", "op": "gte", "value": 50}
    cond = {"history": "event", "event": "order_created", "since": {"days": 7}, "where": where}
    decision = run(cond, history=history)
    assert history.calls[-1] == ("events", "order_created", NOW - timedelta(days=7), where)
    key = 'history.event(order_created, since={"days": 7}, where={"field": "event.total", "op": "gte", "value": 50})'
    assert decision == Decision(True, {key: 1})
    assert run({**cond, "min_count": 2}, history=history).result is False


def test_history_messages():
    history = FakeHistory(messages=[("sent", ENTERED + timedelta(hours=1), True),
                                    ("opened", ENTERED + timedelta(hours=2), True),
                                    ("opened", NOW - timedelta(days=40), False),
                                    ("clicked", NOW - timedelta(days=1), False)])
    cond = {"history": "message", "action": "opened", "scope": "flow", "since": "entered"}
    assert run(cond, history=history) == Decision(True, {"history.message(opened, scope=flow, since=entered)": 1})
    assert history.calls[-1] == ("messages", "opened", ENTERED, True)
    assert run({**cond, "min_count": 2}, history=history).result is False
    assert run({**cond, "scope": "any", "since": None, "min_count": 2}, history=history).result is True
    assert history.calls[-1] == ("messages", "opened", None, False)
    assert run({"history": "message", "action": "clicked", "scope": "flow"}, history=history).result is False
    assert run({"history": "message", "action": "clicked"}, history=history).result is True  # scope defaults to any
    assert history.calls[-1] == ("messages", "clicked", None, False)
    assert run({"history": "message", "action": "clicked", "since": {"hours": 12}}, history=history).result is False


def test_history_without_lookup_is_false_and_says_so():
    decision = run({"history": "event", "event": "order_created", "since": "entered"}, history=None)
    assert decision == Decision(False, {"history.event(order_created, since=entered)": None})
    assert run({"not": {"history": "message", "action": "sent"}}).result is True


def test_matches_payload():
    where = {"field": "event.lines.0.price", "op": "lt", "value": 20}
    assert matches_payload(where, {"lines": [{"price": "19.99"}]}, NOW) is True
    assert matches_payload(where, {"lines": []}, NOW) is False
    assert matches_payload(where, "not a dict", NOW) is False
    assert matches_payload(None, {"anything": 1}, NOW) is True
    assert matches_payload({"field": "contact.email", "op": "exists"}, {"email": "x"}, NOW) is False


# --- parse_duration ---------------------------------------------------------

def test_parse_duration():
    assert parse_duration({"days": 30}) == timedelta(days=30)
    assert parse_duration({"weeks": 1, "days": 1, "hours": 2, "minutes": 3, "seconds": 4}) == timedelta(
        days=8, hours=2, minutes=3, seconds=4)
    assert parse_duration({"hours": 1.5}) == timedelta(minutes=90)
    assert parse_duration({"days": -1}) == timedelta(days=-1)
    for bad, message in [
        (None, 'a duration must be an object like {"days": 30}, got null'),
        ({}, 'a duration must be an object like {"days": 30}, got {}'),
        ("30d", "a duration must be an object like {\"days\": 30}, got '30d'"),
        ({"dayz": 3}, "unknown duration unit 'dayz' (use weeks, days, hours, minutes, seconds)"),
        ({"days": "3"}, "duration days must be a number, got '3'"),
        ({"days": True}, "duration days must be a number, got True"),
        ({"days": float("inf")}, "duration days must be a number, got inf"),
        ({"days": 10**12}, "duration {'days': 1000000000000} is too large"),
    ]:
        with pytest.raises(ValueError) as info:
            parse_duration(bad)
        assert str(info.value) == message


# --- validation -------------------------------------------------------------

@pytest.mark.parametrize("cond,errors", [
    ({"all": [{"has_tag": "vip"}, cmp("contact.frist_name", "eq", "A")]},
     ["all[1].field: unknown contact field 'contact.frist_name'"]),
    (cmp("order.total", "gt", 1), ["field: unknown root 'order' in 'order.total' (use contact.… or event.…)"]),
    (cmp("contact", "exists"), ["field: 'contact' needs a field name, like 'contact.first_name'"]),
    (cmp("event", "exists"), ["field: 'event' needs a path into the payload, like 'event.total'"]),
    (cmp("event..total", "exists"), ["field: malformed field path 'event..total'"]),
    (cmp("contact.first_name.x", "exists"), ["field: 'contact.first_name' has no sub-fields ('contact.first_name.x')"]),
    ({"field": 3, "op": "exists"}, ["field: expected a field path like 'contact.first_name', got 3"]),
    (cmp("contact.first_name", "like", "A"),
     ["op: unknown operator 'like' (expected one of: " + ", ".join(OPS) + ")"]),
    ({"field": "contact.first_name", "value": "A"}, ["op: missing (expected one of: " + ", ".join(OPS) + ")"]),
    ({"field": "contact.first_name", "op": "eq"}, ["value: missing (required by 'eq')"]),
    ({"field": "contact.email", "op": "exists", "value": True}, ["value: 'exists' takes no value"]),
    (cmp("contact.order_count", "gt", "abc"), ["value: expected a number, got 'abc'"]),
    (cmp("contact.order_count", "eq", True), ["value: expected a number, got True"]),
    (cmp("contact.order_count", "eq", None), ["value: null is not a value; use exists / not_exists"]),
    (cmp("contact.first_name", "eq", 5), ["value: expected a string, got 5"]),
    (cmp("contact.suppressed", "eq", "no"), ["value: expected true or false, got 'no'"]),
    (cmp("contact.created_at", "eq", "last week"), ["value: expected an ISO date or datetime string, got 'last week'"]),
    (cmp("contact.created_at", "gt", 5), ["value: expected an ISO date or datetime string, got 5"]),
    (cmp("event.total", "gt", "lots"), ["value: expected a number or an ISO date, got 'lots'"]),
    (cmp("contact.first_name", "within_last", {"days": 3}),
     ["op: 'within_last' does not apply to 'contact.first_name' (a string field)"]),
    (cmp("contact.order_count", "contains", "3"), ["op: 'contains' does not apply to 'contact.order_count' (a number field)"]),
    (cmp("contact.first_name", "gt", "A"), ["op: 'gt' does not apply to 'contact.first_name' (a string field)"]),
    (cmp("contact.tags", "eq", "vip"), ["op: 'eq' does not apply to 'contact.tags' (a list field)"]),
    (cmp("contact.tags", "contains", 3), ["value: expected a string, got 3"]),
    (cmp("event.items", "contains", ["a"]), ["value: expected a string or number, got ['a']"]),
    (cmp("contact.email_consent", "in", "subscribed"), ["value: 'in' needs a list, got 'subscribed'"]),
    (cmp("contact.order_count", "not_in", [1, "2", 3, None]),
     ["value[1]: expected a number, got '2'", "value[3]: null is not a value; use exists / not_exists"]),
    (cmp("contact.last_order_at", "within_last", {"dayz": 3}),
     ["value: unknown duration unit 'dayz' (use weeks, days, hours, minutes, seconds)"]),
    (cmp("contact.last_order_at", "older_than", 30), ['value: a duration must be an object like {"days": 30}, got 30']),
    (cmp("contact.last_order_at", "within_next", {"days": -1}), ["value: a duration must not be negative"]),
    (cmp("contact.last_order_at", "before", "2024-13-01"),
     ["value: expected an ISO date or datetime string, got '2024-13-01'"]),
    ({"has_tag": 5}, ["has_tag: expected a non-empty string, got 5"]),
    ({"in_list": ""}, ["in_list: expected a non-empty string, got ''"]),
    ({"all": []}, ["all: expected a non-empty list of conditions"]),
    ({"any": {"has_tag": "x"}}, ["any: expected a non-empty list of conditions"]),
    ({"not": None}, ["not: expected a condition object, got null"]),
    (None, ["condition: expected a condition object, got null"]),
    ([], ["condition: expected a condition object, got []"]),
    ({"fied": "contact.email"}, ["condition: expected one of: all, any, not, field, has_tag, in_list, history"]),
    ({"has_tag": "a", "in_list": "b"}, ["condition: mixes 'has_tag' and 'in_list'; combine them with 'all' or 'any'"]),
    ({**cmp("contact.email", "exists"), "negate": True}, ["negate: unknown key (allowed here: field, op, value)"]),
    ({"any": [{"not": {"all": [{"has_tag": "x", "colour": 1}]}}]},
     ["any[0].not.all[0].colour: unknown key (allowed here: has_tag)"]),
    ({"all": [cmp("contact.frist_name", "gt", "x"), {"any": [{"has_tag": 1}]}]},
     ["all[0].field: unknown contact field 'contact.frist_name'", "all[1].any[0].has_tag: expected a non-empty string, got 1"]),
])
def test_validation_errors(cond, errors):
    assert validate_condition(cond) == errors


@pytest.mark.parametrize("cond,errors", [
    ({"history": "orders"}, ["history: unknown history 'orders' (expected 'event', 'message' or 'recommendations')"]),
    ({"history": "event"}, ["event: expected an event name, got null"]),
    ({"history": "event", "event": "order_created", "since": "yesterday"},
     ["since: expected 'entered', 'triggered', a duration like {\"days\": 30} or null: a duration must be an object like "
      "{\"days\": 30}, got 'yesterday'"]),
    ({"history": "event", "event": "order_created", "since": {"days": -3}}, ["since: a duration must not be negative"]),
    ({"history": "event", "event": "order_created", "min_count": 0},
     ["min_count: expected a whole number from 1 to 1000000, got 0"]),
    ({"history": "event", "event": "order_created", "min_count": 1.5},
     ["min_count: expected a whole number from 1 to 1000000, got 1.5"]),
    ({"history": "event", "event": "order_created", "action": "sent"},
     ["action: unknown key (allowed here: event, history, min_count, since, where)"]),
    ({"history": "event", "event": "order_created", "where": cmp("contact.email", "exists")},
     ["where.field: 'contact.email': a history 'where' sees only the event (use event.…)"]),
    ({"history": "event", "event": "order_created", "where": {"has_tag": "vip"}},
     ["where: has_tag reads the contact, which a history 'where' cannot see"]),
    ({"history": "event", "event": "order_created", "where": {"history": "message", "action": "sent"}},
     ["where: history cannot be used inside a history 'where'"]),
    ({"history": "event", "event": "order_created", "where": {"all": [cmp("event.total", "gte", "x")]}},
     ["where.all[0].value: expected a number or an ISO date, got 'x'"]),
    ({"history": "message", "action": "bounced"}, ["action: expected one of sent, opened, clicked, got 'bounced'"]),
    ({"history": "message", "action": "sent", "scope": "shop"}, ["scope: expected 'flow' or 'any', got 'shop'"]),
])
def test_history_validation_errors(cond, errors):
    assert validate_condition(cond) == errors


def test_validation_options():
    cond = {"all": [cmp("event.total", "gt", 1)]}
    assert validate_condition(cond, allow_event=False) == [
        "all[0].field: event fields are not available here ('event.total')"]
    assert validate_condition(cond, path="steps.split_1.condition") == []
    assert validate_condition({"all": [cmp("contact.frist_name", "exists")]}, path="steps.split_1.condition") == [
        "steps.split_1.condition.all[0].field: unknown contact field 'contact.frist_name'"]
    assert validate_condition(None, path="trigger.filter") == ["trigger.filter: expected a condition object, got null"]
    # Known event fields are typed (either spelling); unknown ones are open.
    for fields in ({"total": "number"}, {"event.total": "number"}):
        assert validate_condition(cmp("event.total", "gt", "x"), event_fields=fields) == [
            "value: expected a number, got 'x'"]
    assert validate_condition(cmp("event.created", "within_last", {"days": 1}), event_fields={"created": "datetime"}) == []
    assert validate_condition(cmp("event.name", "within_last", {"days": 1}), event_fields={"name": "string"}) == [
        "op: 'within_last' does not apply to 'event.name' (a string field)"]
    assert validate_condition(cmp("event.anything.at.all", "eq", {"x": [1]}), event_fields={"total": "number"}) == []
    # History 'where' is about the past event, so it may use event.* even where the flow has no event.
    assert validate_condition({"history": "event", "event": "order_created",
                               "where": cmp("event.total", "gt", 5)}, allow_event=False) == []


def test_validation_survives_values_python_cannot_even_print():
    assert validate_condition({"has_tag": 10**5000}) == ["has_tag: expected a non-empty string, got <number too large>"]


def test_any_typed_fields_accept_any_shape_of_value():
    for cond in [cmp("contact.attributes.plan", "eq", "pro"), cmp("contact.attributes.size.eu", "gte", 40),
                 cmp("contact.attributes", "exists"), cmp("contact.attributes.since", "within_last", {"days": 5}),
                 cmp("event.x", "in", [1, "a", True, [1]]), cmp("event.x", "contains", 3)]:
        assert validate_condition(cond) == [], cond


def test_nesting_limit():
    deep = {"has_tag": "x"}
    for _ in range(40):
        deep = {"not": deep}
    assert validate_condition(deep) == [".".join(["not"] * 33) + ": nested too deeply (at most 32 levels)"]
    assert run(deep).result is False  # malformed: false as a whole, even under an even number of nots


def test_malformed_condition_is_false_as_a_whole():
    assert run({"not": {"field": "contact.email", "op": "like", "value": 1}}).result is False
    assert run({"not": None}).result is False
    assert run({"any": [{"has_tag": "vip"}, {"all": []}]}).result is True  # `any` stopped before the broken part
    assert run({"all": [{"has_tag": "vip"}, {"all": []}]}).result is False


def test_docs_examples_validate():
    text = (Path(__file__).resolve().parent.parent / "docs" / "conditions.md").read_text()
    blocks = re.findall(r"```json\n(.*?)```", text, re.S)
    assert len(blocks) >= 8
    for block in blocks:
        assert validate_condition(json.loads(block)) == [], block


# --- robustness (hypothesis) ------------------------------------------------

json_scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
                | st.sampled_from(["entered", "2024-06-01", "2024-06-15T11:00:00+02:00", "40.00", "contact.tags"]))
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)
FIELD_NAMES = (["contact." + name for name in
                ("first_name", "order_count", "total_spent", "last_order_at", "tags", "suppressed", "phone")]
               + ["contact.attributes.plan", "event.total", "event.lines.0.price", "event.at", "event", "order.x"])
duration_like = st.dictionaries(st.sampled_from(["days", "hours", "weeks", "dayz"]), json_scalars, max_size=2)

fuzzy_leaf = st.one_of(
    json_values,
    st.fixed_dictionaries({"field": st.sampled_from(FIELD_NAMES) | json_scalars,
                           "op": st.sampled_from(OPS) | json_scalars},
                          optional={"value": json_values | duration_like, "extra": json_scalars}),
    st.fixed_dictionaries({"has_tag": json_scalars}),
    st.fixed_dictionaries({"history": st.sampled_from(["event", "message"]) | json_scalars},
                          optional={"event": json_scalars, "action": st.sampled_from(["sent", "opened"]) | json_scalars,
                                    "scope": st.sampled_from(["flow", "any"]) | json_scalars,
                                    "since": duration_like | json_scalars, "where": json_values,
                                    "min_count": json_scalars}),
)
fuzzy_conditions = st.recursive(fuzzy_leaf, lambda inner: st.one_of(
    st.fixed_dictionaries({"all": st.lists(inner, max_size=3) | json_scalars}),
    st.fixed_dictionaries({"any": st.lists(inner, max_size=3)}),
    st.fixed_dictionaries({"not": inner}),
), max_leaves=12)

datetimes = st.datetimes(timezones=st.none() | st.just(UTC) | st.timezones())
contact_values = json_values | datetimes | st.dates() | st.decimals(allow_nan=True)
contacts = st.dictionaries(st.sampled_from(sorted(make_contact()) + ["nope"]), contact_values, max_size=8)
payloads = st.dictionaries(st.sampled_from(["total", "lines", "at", "x"]) | st.text(max_size=5),
                           json_values | datetimes.map(lambda d: d.isoformat()), max_size=5)


def history_strategy():
    events = st.lists(st.tuples(st.sampled_from(["order_created", "x"]), datetimes.filter(lambda d: d.tzinfo), payloads),
                      max_size=3)
    messages = st.lists(st.tuples(st.sampled_from(["sent", "opened"]), datetimes.filter(lambda d: d.tzinfo),
                                  st.booleans()), max_size=3)
    return st.none() | st.builds(FakeHistory, events, messages)


def contexts():
    return st.builds(EvalContext, contact=contacts, event=st.none() | payloads,
                     # `now` is the engine's clock, not data: any real moment, in any zone.
                     now=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                                      timezones=st.none() | st.just(UTC) | st.timezones()),
                     history=history_strategy(), entered_at=st.none() | datetimes)


def check_decision(decision):
    assert isinstance(decision, Decision) and isinstance(decision.result, bool)
    json.dumps(decision.facts, allow_nan=False)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cond=fuzzy_conditions, ctx=contexts(), allow_event=st.booleans(),
       event_fields=st.none() | st.dictionaries(st.text(max_size=6), json_scalars, max_size=3))
def test_random_conditions_never_raise(cond, ctx, allow_event, event_fields):
    errors = validate_condition(cond, allow_event=allow_event, event_fields=event_fields)
    assert isinstance(errors, list) and all(isinstance(e, str) for e in errors)
    check_decision(evaluate(cond, ctx))


# Valid conditions built from the grammar: they must validate cleanly, and then
# evaluate without raising on arbitrary (wrongly typed, missing, odd) data.
numbers = st.integers() | st.floats(allow_nan=False, allow_infinity=False)
iso_dates = st.datetimes(timezones=st.none() | st.just(UTC)).map(lambda d: d.isoformat()) | st.dates().map(str)
durations = st.dictionaries(st.sampled_from(["weeks", "days", "hours", "minutes", "seconds"]),
                            st.integers(0, 1_000) | st.floats(0, 1e3), min_size=1, max_size=3)
any_scalar = st.text(max_size=8) | numbers | st.booleans()
TYPED = {"string": ["contact.first_name", "contact.email"], "number": ["contact.order_count", "contact.total_spent"],
         "datetime": ["contact.last_order_at", "contact.created_at"], "bool": ["contact.suppressed"],
         "list": ["contact.tags", "contact.lists"],
         "any": ["contact.attributes.plan", "event.total", "event.lines.0.price", "event.at", "event.x"]}
EQ_VALUES = {"string": st.text(max_size=8), "number": numbers, "datetime": iso_dates, "bool": st.booleans(),
             "any": any_scalar | st.lists(any_scalar, max_size=2)}


def values_for(ftype, op):
    if op in ("eq", "ne"):
        return EQ_VALUES[ftype]
    if op in ("in", "not_in"):
        return st.lists(EQ_VALUES[ftype], max_size=3)
    if op in ("gt", "gte", "lt", "lte"):
        return {"number": numbers, "datetime": iso_dates}.get(ftype, numbers | iso_dates)
    if op in ("contains", "not_contains"):
        return st.text(max_size=8) if ftype in ("string", "list") else any_scalar
    if op in ("within_last", "older_than", "within_next"):
        return durations
    return iso_dates  # before / after


APPLIES = {"string": ["eq", "ne", "in", "not_in", "contains", "not_contains", "exists", "not_exists"],
           "number": ["eq", "ne", "in", "not_in", "gt", "gte", "lt", "lte", "exists", "not_exists"],
           "bool": ["eq", "ne", "in", "not_in", "exists", "not_exists"],
           "list": ["contains", "not_contains", "exists", "not_exists"]}
APPLIES["datetime"] = APPLIES["number"] + ["within_last", "older_than", "within_next", "before", "after"]
APPLIES["any"] = list(OPS)


@st.composite
def valid_comparison(draw, roots=("contact", "event")):
    ftype = draw(st.sampled_from(sorted(TYPED)))
    path = draw(st.sampled_from([p for p in TYPED[ftype] if p.split(".")[0] in roots] or ["event.total"]))
    ftype = ftype if path.split(".")[0] in roots else "any"
    op = draw(st.sampled_from(APPLIES[ftype]))
    if op in ("exists", "not_exists"):
        return {"field": path, "op": op}
    return {"field": path, "op": op, "value": draw(values_for(ftype, op))}


since_values = st.none() | st.just("entered") | durations
valid_history = st.one_of(
    st.builds(lambda name, since, where, n: {"history": "event", "event": name, "since": since, "where": where,
                                             "min_count": n},
              st.sampled_from(["order_created", "x"]), since_values, st.none() | valid_comparison(roots=("event",)),
              st.integers(1, 3)),
    st.builds(lambda action, scope, since: {"history": "message", "action": action, "scope": scope, "since": since},
              st.sampled_from(["sent", "opened", "clicked"]), st.sampled_from(["flow", "any"]), since_values),
)
valid_conditions = st.recursive(
    valid_comparison() | valid_history | st.builds(lambda k, v: {k: v}, st.sampled_from(["has_tag", "in_list"]),
                                                   st.text(min_size=1, max_size=6).filter(str.strip)),
    lambda inner: st.one_of(st.builds(lambda k, items: {k: items}, st.sampled_from(["all", "any"]),
                                      st.lists(inner, min_size=1, max_size=3)),
                            st.builds(lambda c: {"not": c}, inner)),
    max_leaves=8)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cond=valid_conditions, ctx=contexts())
def test_valid_conditions_evaluate_on_arbitrary_data(cond, ctx):
    assert validate_condition(cond) == []
    check_decision(evaluate(cond, ctx))


@settings(max_examples=200, deadline=None)
@given(cond=valid_comparison(), value=contact_values | json_values)
def test_valid_comparisons_on_any_value_type(cond, value):
    """Each field holding every kind of wrong value: the answer is a bool, never an exception."""
    root, _, rest = cond["field"].partition(".")
    contact, event = make_contact(), {}
    target = contact if root == "contact" else event
    target[rest.split(".")[0]] = value
    check_decision(evaluate(cond, EvalContext(contact=contact, event=event, now=NOW)))


def test_eval_context_needs_a_real_now():
    with pytest.raises(TypeError):
        evaluate({"has_tag": "x"}, EvalContext(contact={}, event=None, now=None))
    # A Decimal (not float) total, as a host might pass, compares too.
    assert run(cmp("contact.total_spent", "eq", 120.5), contact=make_contact(total_spent=Decimal("120.50"))).result


def test_since_triggered_counts_from_the_trigger_event_not_from_entering():
    class Orders:
        def __init__(self):
            self.asked = []

        def count_events(self, name, since, where):
            self.asked.append(since)
            return 1 if since <= datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc) else 0

        def count_messages(self, action, since, flow_only):
            return 0

    history = Orders()
    ctx = EvalContext(contact={}, event={}, now=datetime(2026, 1, 5, 12, 0, tzinfo=timezone.utc), history=history,
                      entered_at=datetime(2026, 1, 5, 10, 0, tzinfo=timezone.utc),
                      triggered_at=datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc))
    assert validate_condition({"history": "event", "event": "order_created", "since": "triggered"}) == []
    assert evaluate({"history": "event", "event": "order_created", "since": "triggered"}, ctx).result is True
    assert evaluate({"history": "event", "event": "order_created", "since": "entered"}, ctx).result is False
    assert history.asked == [ctx.triggered_at, ctx.entered_at]


def test_reads_trigger_event_is_yes_for_event_paths_since_triggered_and_anything_malformed():
    from saleor_flows.engine.conditions import reads_trigger_event

    about_contact = {"all": [cmp("contact.order_count", "gte", 1), {"has_tag": "vip"},
                             {"not": {"history": "event", "event": "order_created", "since": "entered"}}]}
    assert reads_trigger_event(about_contact) is False
    assert reads_trigger_event({"any": [about_contact, cmp("event.total", "gt", 5)]}) is True
    assert reads_trigger_event({"not": {"history": "event", "event": "order_created", "since": "triggered"}}) is True
    assert reads_trigger_event({"all": "nope"}) is True
    assert reads_trigger_event({"field": 3, "op": "eq", "value": 1}) is True
    assert reads_trigger_event("contact.order_count") is True
