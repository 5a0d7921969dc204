"""Frequency caps, quiet hours and the contact's own preferences: deferred, not dropped (unless stale)."""

from datetime import datetime, timedelta, timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ImproperlyConfigured

from saleor_flows.channels.sms import locmem
from saleor_flows.engine.definition import DefinitionError
from saleor_flows.models import Message, StepExecution

from .flowkit import chain, email

UTC = dt_timezone.utc
JANE = "jane@example.com"
SHIPPED = {"FREQUENCY_CAP_HOURS": {"email": 16, "sms": 24}, "QUIET_HOURS": {"sms": "21:00-08:00", "email": None}}


@pytest.fixture
def gated(settings):
    """The shipped defaults (the test settings turn them off for tests about other things)."""
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, **SHIPPED}
    locmem.outbox.clear()
    yield settings
    locmem.outbox.clear()


def _set(settings, **values):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, **values}


def sms(body="Sale on {{ shop.name }}", next=None, **extra):
    return {"type": "send_sms", "body": body, "next": next, **extra}


def _promos(flows, *, count=2, **top):
    for number in range(1, count + 1):
        flows.flow(chain(f"promo{number}", (f"mail{number}", email(f"Promo {number}")), **top), slug=f"promo{number}")


def _deferrals(flows, address=JANE):
    return [entry.detail for entry in flows.trail(address) if entry.kind == "deferred"]


def _skips(flows, address=JANE):
    return [entry.detail["reason"] for entry in flows.trail(address) if entry.kind == "skipped"]


def _subjects(flows, address=JANE):
    return [m.subject for m in flows.emails_to(address)]


def test_cap_defers_a_second_marketing_email_to_exactly_16h_after_the_first_and_the_sweep_sends_it(flows, gated):
    flows.contact(JANE, email_consent="subscribed")
    _promos(flows)
    flows.flow(chain("order_created", ("receipt", email("Your receipt")), kind="transactional"), slug="receipt")
    start = flows.now
    flows.event("promo1", email=JANE)
    flows.advance(hours=1)
    flows.event("promo2", email=JANE)
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "10", "currency": "USD"})
    assert _subjects(flows) == ["Promo 1", "Your receipt"]  # the receipt bypasses the cap
    (deferred,) = _deferrals(flows)
    assert deferred["until"].startswith((start + timedelta(hours=16)).isoformat()[:19])
    assert deferred["reason"] == "frequency cap (email)"
    assert "frequency cap: one marketing email per 16h" in deferred["detail"]
    held = StepExecution.objects.get(step_id="mail2")
    assert (held.state, held.due_at, held.attempts, held.claimed_at) == (
        "pending", start + timedelta(hours=16), 0, None)

    flows.travel_to(start + timedelta(hours=16) - timedelta(seconds=1))
    assert _subjects(flows) == ["Promo 1", "Your receipt"]
    flows.advance(seconds=1)
    assert _subjects(flows) == ["Promo 1", "Your receipt", "Promo 2"]
    promo2 = Message.objects.get(step_id="mail2")
    assert promo2.created_at == start + timedelta(hours=16) and promo2.kind == "marketing"
    assert Message.objects.get(step_id="receipt").kind == "transactional"
    assert "frequency cap" in flows.why(JANE)


def test_the_cap_is_per_channel_and_configurable(flows, gated, settings):
    flows.contact(JANE, email_consent="subscribed", sms_consent="subscribed", phone="+12025550143")
    flows.flow(chain("promo1", ("mail", email("Promo 1"))), slug="mail-promo")
    flows.flow(chain("promo2", ("text", sms())), slug="sms-promo")
    flows.event("promo1", email=JANE)
    flows.event("promo2", email=JANE)  # another channel: its own cap
    assert len(flows.emails_to(JANE)) == 1 and len(locmem.outbox) == 1
    _set(settings, FREQUENCY_CAP_HOURS={"email": 0, "sms": 24})  # 0: no cap
    flows.flow(chain("promo3", ("mail", email("Promo 3"))), slug="mail-promo-3")
    flows.event("promo3", email=JANE)
    assert _subjects(flows) == ["Promo 1", "Promo 3"]


def test_a_message_exempted_from_the_shop_cap_goes_out_but_the_contacts_own_choice_still_holds(flows, gated):
    flows.contact(JANE, email_consent="subscribed")
    flows.contact("weekly@example.com", email_consent="subscribed", frequency="weekly")
    _promos(flows, count=1)
    flows.flow(chain("cart", ("reminder", email("Your cart is waiting", frequency_cap=False))), slug="cart")
    for address in (JANE, "weekly@example.com"):
        flows.event("promo1", email=address)
        flows.event("cart", email=address)
    # The shop's 16h cap would have held the reminder; the merchant exempted it.
    assert _subjects(flows) == ["Promo 1", "Your cart is waiting"]
    # Someone who asked for at most one email a week is never overruled by a merchant's exemption.
    assert _subjects(flows, "weekly@example.com") == ["Promo 1"]
    # (held a week, past the default 72h staleness: dropped, not saved up)
    assert _skips(flows, "weekly@example.com") == ["stale: contact's choice: weekly"]


def test_frequency_cap_must_be_true_or_false(flows):
    from saleor_flows.engine.definition import validate_definition

    errors = validate_definition(chain("cart", ("reminder", email("Hi", frequency_cap="no"))))
    assert any(error.startswith("steps.reminder.frequency_cap: true, false or \"high_intent\"")
               for error in errors), errors


def test_a_subscriber_welcomed_an_hour_ago_still_gets_the_cart_reminder_but_two_reminders_keep_apart(flows, gated):
    """High-intent journeys are out of the shop's cap and capped among themselves (HIGH_INTENT_CAP_HOURS, 4 h)."""
    from saleor_flows.journeys import load_journey

    for slug in ("abandoned_checkout", "browse_abandonment"):
        assert load_journey(slug)["frequency_cap"] == "high_intent"
    flows.contact(JANE, email_consent="subscribed")
    flows.flow(chain("subscribed", ("welcome", email("Welcome!"))), slug="welcome")
    for slug in ("cart", "browse"):
        flows.flow(chain(slug, (f"{slug}_mail", email(f"About your {slug}")), frequency_cap="high_intent"), slug=slug)
    start = flows.now
    flows.event("subscribed", email=JANE)
    flows.advance(hours=1)
    flows.event("cart", email=JANE)
    assert _subjects(flows) == ["Welcome!", "About your cart"]  # not held 16 h behind the welcome email
    flows.advance(hours=1)
    flows.event("browse", email=JANE)
    assert _subjects(flows) == ["Welcome!", "About your cart"]
    (deferred,) = _deferrals(flows)
    assert deferred["reason"] == "high-intent cap (email)"
    flows.travel_to(start + timedelta(hours=5))  # 4 h after the cart reminder
    assert _subjects(flows) == ["Welcome!", "About your cart", "About your browse"]
    # An ordinary promotion still waits out the shop's cap behind the reminders.
    _promos(flows, count=1)
    flows.event("promo1", email=JANE)
    assert _subjects(flows) == ["Welcome!", "About your cart", "About your browse"]


def test_a_step_that_is_high_intent_counts_as_a_reminder_for_other_flows_and_one_that_opts_out_does_not(flows,
                                                                                                         gated):
    """The high-intent cap counts each message by its own step's rule, not only its flow's."""
    flows.contact(JANE, email_consent="subscribed")
    # Only the step says so: its flow is an ordinary one.
    flows.flow(chain("stock", ("stock_mail", email("Back in stock", frequency_cap="high_intent"))), slug="stock")
    flows.flow(chain("cart", ("cart_mail", email("About your cart")), frequency_cap="high_intent"), slug="cart")
    # The flow says so, but this step opts back into the shop's cap: not a reminder.
    flows.flow(chain("digest", ("digest_mail", email("Your digest", frequency_cap=True)), frequency_cap="high_intent"),
               slug="digest")
    start = flows.now
    flows.event("stock", email=JANE)
    flows.advance(hours=1)
    flows.event("cart", email=JANE)
    assert _subjects(flows) == ["Back in stock"]
    (deferred,) = _deferrals(flows)
    assert deferred["reason"] == "high-intent cap (email)"
    flows.travel_to(start + timedelta(hours=4))
    assert _subjects(flows) == ["Back in stock", "About your cart"]

    flows.contact("sam@example.com", email_consent="subscribed")
    flows.travel_to(start + timedelta(days=2))
    flows.event("digest", email="sam@example.com")
    flows.advance(hours=1)
    flows.event("cart", email="sam@example.com")  # the digest is no reminder: the cart reminder goes at once
    assert [m.subject for m in flows.emails_to("sam@example.com")] == ["Your digest", "About your cart"]


def _sms_contact(flows, zone):
    return flows.contact(JANE, sms_consent="subscribed", phone="+12025550143", timezone=zone)


@pytest.mark.parametrize("zone, local_evening, expected_utc", [
    # New York springs forward on 2026-03-08 at 02:00: 08:00 that morning is EDT (UTC-4), the evening before EST.
    ("America/New_York", datetime(2026, 3, 7, 22, 30), datetime(2026, 3, 8, 12, 0, tzinfo=UTC)),
    # Berlin falls back on 2026-10-25 at 03:00: 08:00 that morning is CET (UTC+1), the evening before CEST.
    ("Europe/Berlin", datetime(2026, 10, 24, 23, 0), datetime(2026, 10, 25, 7, 0, tzinfo=UTC)),
])
def test_quiet_hours_defer_marketing_sms_to_8am_local_across_a_dst_change(flows, gated, zone, local_evening,
                                                                          expected_utc):
    _sms_contact(flows, zone)
    flows.flow(chain("promo", ("text", sms())), slug="sms-promo")
    flows.flow(chain("shipped", ("text", sms("Your order shipped")), kind="transactional"), slug="shipping")
    moment = local_evening.replace(tzinfo=ZoneInfo(zone))
    assert moment.utcoffset() != expected_utc.astimezone(ZoneInfo(zone)).utcoffset()  # the night crosses DST
    flows.travel_to(moment)
    flows.event("promo", email=JANE)
    flows.event("shipped", email=JANE)
    assert [m.body for m in locmem.outbox] == ["Your order shipped"]  # transactional: not held
    held = StepExecution.objects.get(enrolment__flow__slug="sms-promo", step_id="text")
    assert held.state == "pending" and held.due_at == expected_utc
    (deferred,) = _deferrals(flows)
    assert (deferred["reason"], deferred["detail"]) == ("quiet hours", f"quiet hours 21:00-08:00 ({zone})")
    flows.travel_to(expected_utc - timedelta(minutes=1))
    assert len(locmem.outbox) == 1
    flows.travel_to(expected_utc)
    assert [m.body for m in locmem.outbox] == ["Your order shipped", "Sale on Test Shop"]
    assert Message.objects.get(step_id="text", kind="marketing").created_at.astimezone(ZoneInfo(zone)).hour == 8


def test_a_cap_that_ends_inside_quiet_hours_waits_for_their_end_in_the_contacts_zone(flows, gated, settings):
    _set(settings, QUIET_HOURS={"email": "22:00-07:00"})
    flows.contact(JANE, email_consent="subscribed", timezone="Asia/Tokyo")
    _promos(flows)
    tokyo = ZoneInfo("Asia/Tokyo")
    flows.travel_to(datetime(2026, 6, 1, 10, 0, tzinfo=tokyo))
    flows.event("promo1", email=JANE)
    flows.advance(hours=1)
    flows.event("promo2", email=JANE)  # the cap ends at 02:00 Tokyo time: quiet until 07:00
    (deferred,) = _deferrals(flows)
    assert deferred["reason"] == "frequency cap (email); quiet hours"
    assert "quiet hours 22:00-07:00 (Asia/Tokyo)" in deferred["detail"]
    assert StepExecution.objects.get(step_id="mail2").due_at == datetime(2026, 6, 2, 7, 0, tzinfo=tokyo)
    flows.travel_to(datetime(2026, 6, 2, 7, 0, tzinfo=tokyo))
    assert _subjects(flows) == ["Promo 1", "Promo 2"]


def test_contacts_without_a_timezone_use_the_default_one(flows, gated, settings):
    _set(settings, DEFAULT_TIMEZONE="Europe/Lisbon")
    flows.contact(JANE, sms_consent="subscribed", phone="+351910000000")
    flows.flow(chain("promo", ("text", sms())), slug="sms-promo")
    flows.travel_to(datetime(2026, 1, 10, 21, 30, tzinfo=UTC))  # Lisbon is UTC in winter
    flows.event("promo", email=JANE)
    assert StepExecution.objects.get(step_id="text").due_at == datetime(2026, 1, 11, 8, 0, tzinfo=UTC)


def test_quiet_hours_that_end_at_a_wall_time_that_does_not_exist_end_at_the_next_real_instant(flows, gated, settings):
    _set(settings, QUIET_HOURS={"sms": "23:00-02:30"})
    _sms_contact(flows, "America/New_York")
    flows.flow(chain("promo", ("text", sms())), slug="sms-promo")
    flows.travel_to(datetime(2026, 3, 7, 23, 30, tzinfo=ZoneInfo("America/New_York")))
    flows.event("promo", email=JANE)
    # 02:30 is skipped on 2026-03-08 (02:00 → 03:00 EDT): 03:30 EDT, the same instant as "02:30 EST".
    assert StepExecution.objects.get(step_id="text").due_at == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)


def test_on_blocked_drop_skips_instead_of_waiting_and_the_journey_goes_on(flows, gated):
    flows.contact(JANE, email_consent="subscribed")
    _promos(flows, count=1)
    flows.flow(chain("promo2", ("mail2", email("Flash sale, today only", next="tag")),
                     ("tag", {"type": "add_tag", "tag": "saw-flash", "next": None}), on_blocked="drop"), slug="flash")
    flows.event("promo1", email=JANE)
    flows.event("promo2", email=JANE)
    assert _subjects(flows) == ["Promo 1"]
    (reason,) = _skips(flows)
    assert reason == "frequency cap (email) (the flow drops blocked messages)"
    assert flows.enrolments(JANE)[-1].status == "completed"


def test_a_message_held_past_stale_after_is_dropped_with_the_reason(flows, gated):
    flows.contact(JANE, email_consent="subscribed")
    _promos(flows, count=1)
    flows.flow(chain("promo2", ("mail2", email("Your cart is waiting")), stale_after={"hours": 12}), slug="cart")
    flows.event("promo1", email=JANE)
    flows.event("promo2", email=JANE)  # the cap would hold it 16h: more than the flow's 12h
    assert _subjects(flows) == ["Promo 1"]
    (reason,) = _skips(flows)
    assert reason == "stale: frequency cap (email)"  # a stable category: reports count skips by it
    (skip,) = [e for e in flows.trail(JANE) if e.kind == "skipped"]
    assert "more than 12h after it was due" in skip.detail["detail"]
    assert StepExecution.objects.get(step_id="mail2").state == "skipped"


def test_staleness_counts_from_the_first_due_time_across_several_deferrals(flows, gated):
    contact = flows.contact(JANE, email_consent="subscribed", paused_until=flows.now + timedelta(days=1))
    _promos(flows, count=1)  # default stale_after: 72h
    due = flows.now
    flows.event("promo1", email=JANE)
    assert StepExecution.objects.get(step_id="mail1").due_at == due + timedelta(days=1)
    contact.paused_until = due + timedelta(days=3, hours=12)  # they extend the pause while it waits
    contact.save()
    flows.advance(days=1)
    assert flows.outbox == []
    (reason,) = _skips(flows)
    assert reason == "stale: paused"
    (skip,) = [e for e in flows.trail(JANE) if e.kind == "skipped"]
    assert skip.detail["detail"].startswith("paused until") and "more than 72h" in skip.detail["detail"]


def test_a_short_pause_defers_to_its_end_and_a_long_one_drops_instead_of_flooding(flows, gated):
    flows.contact(JANE, email_consent="subscribed", paused_until=flows.now + timedelta(hours=30))
    flows.contact("joe@example.com", email_consent="subscribed", paused_until=flows.now + timedelta(days=30))
    _promos(flows, count=1)
    pause_end = flows.now + timedelta(hours=30)
    flows.event("promo1", email=JANE)
    flows.event("promo1", email="joe@example.com")
    assert _deferrals(flows)[0]["reason"] == "paused"
    assert _deferrals(flows)[0]["detail"].startswith("paused until")
    assert _skips(flows, "joe@example.com") == ["stale: paused"]
    flows.travel_to(pause_end)
    assert _subjects(flows) == ["Promo 1"] and _subjects(flows, "joe@example.com") == []


@pytest.mark.parametrize("choice, gap", [("daily", timedelta(days=1)), ("weekly", timedelta(days=7))])
def test_the_contacts_own_frequency_is_stricter_than_the_shop_cap_and_spans_channels(flows, gated, choice, gap):
    flows.contact(JANE, email_consent="subscribed", sms_consent="subscribed", phone="+12025550143", frequency=choice)
    flows.flow(chain("promo1", ("mail1", email("Promo 1"))), slug="promo1")
    flows.flow(chain("promo2", ("text", sms()), stale_after={"days": 8}), slug="promo2")
    start = flows.now
    flows.event("promo1", email=JANE)
    flows.advance(hours=17)  # past the shop's email cap, but not the contact's own
    flows.event("promo2", email=JANE)
    assert locmem.outbox == []
    (deferred,) = _deferrals(flows)
    assert deferred["reason"] == f"contact's choice: {choice}"
    assert StepExecution.objects.get(step_id="text").due_at == start + gap
    flows.travel_to(start + gap)
    assert len(locmem.outbox) == 1


def test_an_opted_out_topic_is_skipped_for_good_while_other_topics_still_arrive(flows, gated):
    flows.contact(JANE, email_consent="subscribed", unsubscribed_topics=["reviews"])
    flows.flow(chain("order_fulfilled", ("ask", email("Review your order", topic="reviews"))), slug="reviews")
    flows.flow(chain("newsletter", ("news", email("News")), topic="newsletter"), slug="news")
    flows.event("order_fulfilled", email=JANE)
    flows.event("newsletter", email=JANE)
    assert _subjects(flows) == ["News"]
    assert _skips(flows) == ["opted out of topic reviews"]
    assert StepExecution.objects.get(step_id="ask").state == "skipped"


def test_transactional_messages_bypass_pause_cap_and_quiet_hours(flows, gated):
    flows.travel_to(datetime(2026, 2, 1, 23, 0, tzinfo=UTC))  # quiet hours
    _sms_contact(flows, "UTC")
    flows.contact(JANE, paused_until=flows.now + timedelta(days=2), frequency="monthly",
                  unsubscribed_topics=["orders"])
    flows.flow(chain("shipped", ("text", sms("Shipped {{ event.number }}")), kind="transactional", topic="orders",
                     reentry={"mode": "always"}), slug="shipping")
    flows.event("shipped", email=JANE, payload={"number": 1})
    flows.event("shipped", email=JANE, payload={"number": 2})  # a second SMS within the cap
    assert [m.body for m in locmem.outbox] == ["Shipped 1", "Shipped 2"]
    assert _deferrals(flows) == [] and _skips(flows) == []


def test_a_retried_send_is_not_capped_by_its_own_failed_attempt(flows, gated, settings):
    from unittest import mock

    from saleor_flows.channels import delivery

    flows.contact(JANE, email_consent="subscribed")
    _promos(flows, count=1)
    with mock.patch.object(delivery.Courier, "hand_off", side_effect=ConnectionError("relay down")):
        flows.event("promo1", email=JANE)
    assert "retry_scheduled" in flows.trail_kinds(JANE)
    flows.advance(minutes=1)
    assert _subjects(flows) == ["Promo 1"] and _deferrals(flows) == []


def test_bad_hold_keys_are_publish_errors_naming_where(flows):
    with pytest.raises(DefinitionError) as caught:
        flows.flow(chain("go", ("mail", email("Hi", on_blocked="later", stale_after={"fortnights": 1})),
                         topic="no spaces please", stale_after="3 days"))
    errors = "\n".join(caught.value.errors)
    assert "steps.mail.on_blocked: one of defer, drop" in errors
    assert "steps.mail.stale_after: unknown duration unit 'fortnights'" in errors
    assert "topic: a topic name" in errors
    assert "stale_after: a duration must be an object" in errors


def test_malformed_quiet_hours_fail_loudly_and_lose_nothing(flows, gated, settings):
    _set(settings, QUIET_HOURS={"sms": "9pm to 8am"})
    _sms_contact(flows, "UTC")
    flows.flow(chain("promo", ("text", sms())), slug="sms-promo")
    from saleor_flows.engine.gate import parse_window

    with pytest.raises(ImproperlyConfigured, match="expected 'HH:MM-HH:MM'"):
        parse_window("9pm to 8am")
    flows.event("promo", email=JANE)  # the runner logs the error; the send stays claimed for the sweep
    assert locmem.outbox == [] and StepExecution.objects.get(step_id="text").state == "claimed"
    _set(settings, QUIET_HOURS={"sms": "21:00-08:00"})
    flows.advance(minutes=6)  # past the claim lease: handed out again, now with a valid setting
    assert len(locmem.outbox) == 1
