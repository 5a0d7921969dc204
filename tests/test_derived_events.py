"""Derived events: checkout abandoned (idle timer) and first / nth order."""

from datetime import timedelta

from saleor_flows.models import Enrolment, Event, IdleTimer

from .flowkit import chain, email, nxt

JANE = "jane@example.com"
LINES = [{"product_name": "Monospace Tee", "variant_name": "S", "quantity": 2, "base_price": "20.00", "currency": "USD"}]


def checkout(flows, token="t-1", lines=LINES, **extra):
    return flows.event("checkout_updated", email=JANE,
                       payload={"token": token, "email": JANE, "lines": lines, "currency": "USD", **extra})


def abandoned_flow(flows):
    flows.contact(JANE, email_consent="subscribed", first_name="Jane")
    return flows.flow(chain(
        "checkout_abandoned",
        ("wait", nxt({"type": "wait", "duration": {"hours": 1}})),
        ("mail", email("You left {{ event.lines[0].product_name }}")),
        exit={"history": "event", "event": "order_created", "since": "triggered"}))


def test_idle_checkout_is_abandoned_after_the_quiet_period_with_its_latest_lines(flows):
    abandoned_flow(flows)
    checkout(flows, lines=[{**LINES[0], "product_name": "Old Hat"}])
    flows.advance(minutes=40)
    checkout(flows)  # activity pushes the timer back
    flows.advance(minutes=59)
    assert Event.objects.filter(name="checkout_abandoned").count() == 0
    flows.advance(minutes=1)
    (fired,) = Event.objects.filter(name="checkout_abandoned")
    assert fired.payload["lines"][0]["product_name"] == "Monospace Tee"
    assert fired.occurred_at == flows.now - timedelta(minutes=60)  # dated at the last activity
    flows.advance(hours=1)
    assert [m.subject for m in flows.emails_to(JANE)] == ["You left Monospace Tee"]
    flows.advance(days=3)
    assert len(flows.emails_to(JANE)) == 1 and Event.objects.filter(name="checkout_abandoned").count() == 1


def test_checkout_without_lines_or_email_is_never_abandoned(flows):
    abandoned_flow(flows)
    checkout(flows, lines=[])
    flows.event("checkout_updated", user_id="u1", payload={"token": "t-2", "lines": LINES})
    flows.advance(hours=3)
    assert not Event.objects.filter(name="checkout_abandoned").exists()


def test_order_from_the_checkout_cancels_the_timer(flows):
    abandoned_flow(flows)
    checkout(flows)
    flows.advance(minutes=30)
    flows.event("order_created", email=JANE, payload={"checkout_token": "t-1", "total_gross_amount": "40.00", "currency": "USD"})
    flows.advance(hours=5)
    assert IdleTimer.objects.get().state == "cancelled"
    assert not Event.objects.filter(name="checkout_abandoned").exists()
    assert flows.emails_to(JANE) == []


def test_order_a_second_before_the_timer_fires_still_prevents_the_email(flows):
    """The order lands, but its cancel loses the race: the timer fires anyway. No email may go out."""
    from saleor_flows.engine import dispatch

    abandoned_flow(flows)
    checkout(flows)
    flows.advance(minutes=59, seconds=59)
    with dispatch.forced("celery"):  # the order is stored; its processing (and the cancel) has not run yet
        flows.event("order_created", email=JANE, payload={"checkout_token": "t-1", "total_gross_amount": "40.00",
                                                          "currency": "USD"})
    flows.advance(seconds=1)  # timer fires: the contact enters with the abandonment dated 1 h ago
    assert Event.objects.filter(name="checkout_abandoned").count() == 1
    flows.advance(hours=2)
    assert flows.emails_to(JANE) == []
    assert Enrolment.objects.get(flow__trigger_event="checkout_abandoned").exit_reason == "exit_criteria"


def test_the_same_checkout_event_delivered_several_times_enrols_once(flows):
    abandoned_flow(flows)
    for _ in range(3):  # at-least-once delivery of one Saleor event
        flows.event("checkout_updated", email=JANE, dedupe_key="checkout_updated:t-1:2026-01-05T09:00",
                    payload={"token": "t-1", "email": JANE, "lines": LINES})
    flows.advance(hours=1)
    for _ in range(3):
        flows.sweep()
    flows.advance(hours=1)
    assert Enrolment.objects.count() == 1 and len(flows.emails_to(JANE)) == 1


def test_first_and_nth_order_events(flows):
    flows.contact(JANE, email_consent="subscribed")
    flows.flow(chain("first_order", ("mail", email("Thanks for your first order"))))
    flows.flow(chain("nth_order", ("check", {"type": "split", "condition": {
        "field": "event.order_count", "op": "eq", "value": 3}, "yes": "mail", "no": None}),
        ("mail", email("Your third order!")), reentry={"mode": "always"}))
    for number in range(1, 4):
        flows.event("order_created", email=JANE, dedupe_key=f"order:{number}",
                    payload={"number": number, "total_gross_amount": "10", "currency": "USD"})
    assert [m.subject for m in flows.emails_to(JANE)] == ["Thanks for your first order", "Your third order!"]
    assert Event.objects.filter(name="nth_order").count() == 3


def _scan(flows):
    from saleor_flows.engine.derived import scan_dates

    return scan_dates()


def test_customer_lapsed_once_per_lapse(flows):

    flows.event("order_created", email=JANE, payload={"total_gross_amount": "30", "currency": "EUR"})
    flows.advance(days=89)
    assert _scan(flows)["customer_lapsed"] == 0
    flows.advance(days=1)
    assert _scan(flows)["customer_lapsed"] == 1
    flows.advance(hours=1)
    assert _scan(flows)["customer_lapsed"] == 0  # once per lapse
    (lapsed,) = Event.objects.filter(name="customer_lapsed")
    assert lapsed.payload["days_since_last_order"] == 90 and lapsed.payload["currency"] == "EUR"
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "30", "currency": "EUR"})
    flows.advance(days=90)
    assert _scan(flows)["customer_lapsed"] == 1  # a new lapse after the next order


def test_birthday_arrives_on_the_local_day_once_a_year(flows):
    from datetime import datetime, timezone

    flows.travel_to(datetime(2026, 5, 9, 13, 0, tzinfo=timezone.utc))
    flows.contact(JANE, timezone="Pacific/Auckland", attributes={"birthday": "1990-05-10"})  # UTC+12
    flows.contact("max@example.com", timezone="America/Los_Angeles", attributes={"birthday": "1985-05-10"})
    counts = _scan(flows)  # 01:00 on 10 May in Auckland, 06:00 on 9 May in Los Angeles
    assert counts["birthday"] == 1
    (event,) = Event.objects.filter(name="birthday")
    assert event.email == JANE and event.payload == {"date": "1990-05-10", "age": 36}
    flows.travel_to(datetime(2026, 5, 10, 8, 0, tzinfo=timezone.utc))  # 01:00 on 10 May in Los Angeles
    assert _scan(flows)["birthday"] == 1
    assert _scan(flows)["birthday"] == 0


def test_leap_day_birthday_on_the_28th_in_other_years(flows):
    from datetime import datetime, timezone

    flows.travel_to(datetime(2027, 2, 28, 12, 0, tzinfo=timezone.utc))
    flows.contact(JANE, attributes={"birthday": "2000-02-29"})
    assert _scan(flows)["birthday"] == 1


def test_signup_anniversary(flows):
    from datetime import datetime, timezone

    flows.travel_to(datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc))
    flows.event("customer_created", email=JANE, payload={"first_name": "Jane"})
    flows.travel_to(datetime(2026, 2, 28, 10, 0, tzinfo=timezone.utc))
    assert _scan(flows)["signup_anniversary"] == 0
    flows.travel_to(datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc))
    assert _scan(flows)["signup_anniversary"] == 1
    assert Event.objects.get(name="signup_anniversary").payload == {"signed_up": "2025-03-01", "years": 1}


def test_birthday_from_host_metadata_becomes_a_custom_field(flows):
    from saleor_flows.models import Contact

    flows.event("customer_updated", email=JANE, payload={"metadata": {"birthday": "1990-05-10"}})
    assert Contact.objects.get().attributes == {"birthday": "1990-05-10"}


def test_back_in_stock_tells_each_requester_once(flows):
    from saleor_flows.engine.derived import notify_restocked
    from saleor_flows.models import StockAlert

    request = {"variant_id": "UHJvZHVjdFZhcmlhbnQ6Nzc=", "product_name": "Linen Shirt", "variant_name": "M"}
    flows.event("back_in_stock_requested", email=JANE, payload=request)
    flows.event("back_in_stock_requested", email=JANE, payload=request)  # asked twice: one request
    flows.event("back_in_stock_requested", email="max@example.com", payload=request)
    assert StockAlert.objects.count() == 2
    stock = {"UHJvZHVjdFZhcmlhbnQ6Nzc=": 0}
    asked = []

    def saleor_stock(variant_ids):  # stands in for Saleor's Stock table (the host, outside this package)
        asked.append(sorted(variant_ids))
        return dict(stock)

    assert notify_restocked(saleor_stock) == 0
    stock["UHJvZHVjdFZhcmlhbnQ6Nzc="] = 4
    assert notify_restocked(saleor_stock) == 2
    assert notify_restocked(saleor_stock) == 0  # told once
    assert asked == [["UHJvZHVjdFZhcmlhbnQ6Nzc="]] * 2  # nobody waits any more: no third question
    event = Event.objects.filter(name="back_in_stock").first()
    assert event.payload["product_name"] == "Linen Shirt" and event.payload["quantity_available"] == 4
