"""Smart send time (``wait_best_time``): the contact's own best hour of the week, then the shop's, then a default."""

import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from saleor_flows.engine import send_time
from saleor_flows.engine.definition import validate_definition
from saleor_flows.models import Message

from .flowkit import chain, email, nxt

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
# Sunday 2026-03-01 12:00 UTC: the moment each journey reaches its wait.
SUNDAY_NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_shop_cache():
    send_time.reset_cache()
    yield
    send_time.reset_cache()


def engaged(contact, *, opened=None, clicked=None, machine=None):
    """A past email the contact opened and/or clicked (or only a machine opened)."""
    sent = min(filter(None, [opened, clicked, machine]))
    return Message.objects.create(send_id=uuid.uuid4(), contact=contact, channel="email", kind="marketing",
                                  to=contact.email, status="sent", created_at=sent - timedelta(hours=1),
                                  sent_at=sent - timedelta(hours=1), opened_at=opened, clicked_at=clicked,
                                  machine_opened_at=machine)


def best_time_flow(flows, **wait):
    return flows.flow(chain("promo", ("best", nxt({"type": "wait_best_time", **wait})), ("mail", email("News"))),
                      slug="smart")


def waiting_until(flows, address):
    [entry] = [e for e in flows.trail(address) if e.kind == "waiting"]
    return datetime.fromisoformat(entry.detail["until"]), entry.detail["chosen_by"]


def waiting_until_entries(flows, address):
    return [e for e in flows.trail(address) if e.kind == "waiting"]


def test_the_contacts_own_best_hour_in_their_timezone_machine_opens_left_out(flows):
    flows.travel_to(SUNDAY_NOON)
    reader = flows.contact("reader@example.com", email_consent="subscribed", timezone="Europe/Berlin")
    for week in range(1, 5):  # Tuesdays 19:xx in Berlin: three opens and a click
        tuesday_evening = datetime(2026, 2, 3, 19, 20, tzinfo=BERLIN) + timedelta(weeks=week - 1)
        engaged(reader, opened=tuesday_evening, clicked=tuesday_evening + timedelta(minutes=5) if week == 4 else None)
    for night in range(6):  # a scanner opening everything at Monday 03:00: not a person
        engaged(reader, machine=datetime(2026, 2, 2, 3, 0, tzinfo=BERLIN) + timedelta(weeks=night % 4))
    engaged(reader, opened=datetime(2026, 2, 5, 8, 0, tzinfo=BERLIN))  # one Thursday morning: outvoted
    best_time_flow(flows, default="10:00")

    flows.event("promo", email="reader@example.com")

    until, chosen_by = waiting_until(flows, "reader@example.com")
    assert chosen_by == "contact"
    assert until == datetime(2026, 3, 3, 18, 0, tzinfo=UTC)  # Tuesday 19:00 Berlin (CET, UTC+1)
    flows.travel_to(datetime(2026, 3, 3, 17, 59, tzinfo=UTC))
    assert flows.emails_to("reader@example.com") == []
    flows.travel_to(datetime(2026, 3, 3, 18, 0, tzinfo=UTC))
    assert [m.subject for m in flows.emails_to("reader@example.com")] == ["News"]


def test_without_enough_history_the_shops_best_hour_then_the_default(flows):
    flows.travel_to(SUNDAY_NOON)
    best_time_flow(flows, default="10:00")
    newcomer = flows.contact("new@example.com", email_consent="subscribed", timezone="America/New_York")
    engaged(newcomer, opened=datetime(2026, 2, 10, 23, 0, tzinfo=UTC))  # one open: not enough to trust

    flows.event("promo", email="new@example.com")
    until, chosen_by = waiting_until(flows, "new@example.com")
    assert chosen_by == "default" and until == datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # 10:00 New York (EST)

    # Thirty shoppers who read on Thursdays at 08:00 their own time make the shop's best hour.
    for number, zone in enumerate(["Europe/Berlin", "America/New_York", "Asia/Tokyo"] * 10):
        shopper = flows.contact(f"s{number}@example.com", timezone=zone)
        engaged(shopper, opened=datetime(2026, 2, 26, 8, 15, tzinfo=ZoneInfo(zone)))
    send_time.reset_cache()
    flows.contact("later@example.com", email_consent="subscribed", timezone="America/New_York")
    flows.event("promo", email="later@example.com")
    until, chosen_by = waiting_until(flows, "later@example.com")
    assert chosen_by == "shop" and until == datetime(2026, 3, 5, 13, 0, tzinfo=UTC)  # Thursday 08:00 in New York


def test_within_bounds_the_wait_and_without_a_default_it_goes_on_at_once(flows):
    flows.travel_to(SUNDAY_NOON)
    reader = flows.contact("reader@example.com", email_consent="subscribed", timezone="UTC")
    for week in range(3):  # Saturdays 09:00: six days away from Sunday noon
        engaged(reader, opened=datetime(2026, 2, 7, 9, 0, tzinfo=UTC) + timedelta(weeks=week))
    best_time_flow(flows, within={"days": 1})
    flows.event("promo", email="reader@example.com")
    assert [m.subject for m in flows.emails_to("reader@example.com")] == ["News"]  # no wait past a day
    assert waiting_until_entries(flows, "reader@example.com") == []  # nothing to wait for: on at once


def test_the_step_is_validated():
    errors = validate_definition(chain("promo", ("best", nxt({"type": "wait_best_time", "default": "25:00",
                                                               "within": "soon"})), ("mail", email("News"))))
    assert any("steps.best.default" in error for error in errors), errors
    assert any("steps.best.within" in error for error in errors), errors
    assert validate_definition(chain("promo", ("best", nxt({"type": "wait_best_time", "default": "09:30"})),
                                     ("mail", email("News")))) == []


def test_best_time_against_a_fixed_time_is_an_ab_test_the_split_report_reads(flows):
    """The comparison a merchant runs: half wait for their best time, half for 10:00; the A/B report shows both."""
    from saleor_flows.engine.analytics import rollup, split_report

    flows.travel_to(SUNDAY_NOON)
    definition = {
        "trigger": {"event": "promo"}, "start": "ab",
        "steps": {
            "ab": {"type": "random_split", "variants": [{"name": "best_time", "weight": 1, "next": "best"},
                                                        {"name": "fixed", "weight": 1, "next": "ten"}]},
            "best": {"type": "wait_best_time", "default": "10:00", "next": "mail"},
            "ten": {"type": "wait_until", "time": "10:00", "next": "mail"},
            "mail": email("News"),
        },
    }
    flow = flows.flow(definition, slug="best-vs-fixed")
    for number in range(40):
        flows.contact(f"c{number}@example.com", email_consent="subscribed")
        flows.event("promo", email=f"c{number}@example.com")
    flows.advance(days=1)
    rollup()
    report = split_report(flow, "ab")
    by_name = {variant["name"]: variant for variant in report["variants"]}
    assert set(by_name) == {"best_time", "fixed"}
    assert sum(variant["recipients"] for variant in by_name.values()) == 40
    assert all(variant["sent"] == variant["recipients"] > 0 for variant in by_name.values())
