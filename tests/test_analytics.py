"""Flow analytics on the real engine and PostgreSQL: rollup, report, attribution, experiments, holdout."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import F
from django.core.management import call_command

from saleor_flows.engine import analytics
from saleor_flows.engine.analytics import flow_report, fold_deltas, holdout_report, split_report
from saleor_flows.engine.attribution import in_holdout
from saleor_flows.engine.definition import DefinitionError, validate_definition
from saleor_flows.models import Attribution, Enrolment, Event, FlowStat, Message, MessageEvent, SplitWinner, StatDelta

from .flowkit import email

ORDER = {"total_gross_amount": "40.00", "currency": "EUR"}


def ab_flow(**top):
    return {
        "trigger": {"event": "signed_up"},
        "goal": {"history": "event", "event": "goal_met", "since": "entered"},
        "exit": {"history": "event", "event": "opted_out", "since": "entered"},
        "start": "hello",
        "steps": {
            "hello": email("Hello", next="ab"),
            "ab": {"type": "random_split", "variants": [{"name": "A", "weight": 1, "next": "mail_a"},
                                                        {"name": "B", "weight": 1, "next": "mail_b"}]},
            "mail_a": email("Subject A"),
            "mail_b": email("Subject B"),
        },
        **top,
    }


def enter(flows, addresses, event="signed_up"):
    for address in addresses:
        flows.contact(address, email_consent="subscribed")
        flows.event(event, email=address)


def message(address, step_id):
    return Message.objects.get(contact__email=address, step_id=step_id)


def engage(address, step_id, at, **fields):
    """What a tracking edge does: set first-time engagement timestamps on the message."""
    Message.objects.filter(pk=message(address, step_id).pk).update(**{f"{name}_at": at for name in fields})


def test_report_counts_exactly_before_and_after_the_fold(flows, django_assert_max_num_queries):
    flow = flows.flow(ab_flow(), slug="ab")
    addresses = [f"c{i}@example.com" for i in range(8)]
    enter(flows, addresses)
    flows.contact("noconsent@example.com")
    flows.event("signed_up", email="noconsent@example.com")
    now = flows.now
    engage("c0@example.com", "hello", now, delivered=True, opened=True, clicked=True)
    engage("c1@example.com", "hello", now, delivered=True, machine_opened=True)
    engage("c2@example.com", "hello", now, delivered=True, bounced=True)
    engage("c3@example.com", "hello", now, delivered=True, opened=True, unsubscribed=True, complained=True)
    flows.event("opted_out", email="c4@example.com")  # already completed: no change
    # A test send never counts.
    Message.objects.create(send_id="00000000-0000-0000-0000-000000000001", flow=flow, step_id="hello", channel="email",
                           is_test=True, to="staff@example.com", status="sent", created_at=now, sent_at=now,
                           opened_at=now, clicked_at=now)

    with django_assert_max_num_queries(3):
        live = flow_report(flow)
    assert fold_deltas() > 0
    assert StatDelta.objects.count() == 0
    folded = flow_report(flow)
    assert folded == live

    totals = folded["totals"]
    assert totals["entered"] == 9 and totals["completed"] == 9 and totals["active"] == 0
    assert totals["sent"] == 16  # 8 hello + 8 A/B mails
    assert (totals["delivered"], totals["opened"], totals["machine_opened"], totals["clicked"]) == (4, 2, 1, 1)
    assert (totals["bounced"], totals["complained"], totals["unsubscribed"]) == (1, 1, 1)
    assert totals["rates"]["open_rate"] == pytest.approx(2 / 16)
    assert folded["skips"] == {"no email marketing consent (never; policy opt_in)": 2}  # hello, then mail_a or mail_b
    steps = {step["id"]: step for step in folded["steps"]}
    assert [step["id"] for step in folded["steps"]] == ["hello", "ab", "mail_a", "mail_b"]
    assert steps["hello"]["reached"] == 9 and steps["hello"]["states"] == {"sent": 8, "skipped": 1}
    assert steps["hello"]["messages"]["clicked"] == 1
    split = steps["ab"]["branches"]
    assert sum(split.values()) == 9
    branches = folded["branches"]
    assert branches["ab:A"]["recipients"] == split["A"] and branches["ab:B"]["recipients"] == split["B"]
    assert branches["ab:A"]["sent"] + branches["ab:B"]["sent"] == 8
    assert folded["days"] == [{**folded["days"][0], "day": now.date()}]
    assert folded["days"][0]["sent"] == 16 and folded["days"][0]["entered"] == 9


def test_exits_goals_days_and_version_filter(flows):
    flow = flows.flow({**ab_flow(), "start": "wait", "steps": {
        **ab_flow()["steps"], "wait": {"type": "wait", "duration": {"days": 2}, "next": "hello"}}}, slug="days")
    enter(flows, ["a@example.com", "b@example.com", "c@example.com"])
    flows.advance(days=1)
    flows.event("opted_out", email="a@example.com")
    flows.event("goal_met", email="b@example.com")
    flows.advance(days=2)
    fold_deltas()
    report = flow_report(flow)
    assert report["totals"]["exited"] == 1 and report["exits"] == {"exit_criteria": 1}
    assert report["totals"]["converted"] == 1 and report["totals"]["completed"] == 1
    assert report["skips"] == {"exit_criteria": 1, "goal_reached": 1}
    start = flows.now.date() - timedelta(days=3)
    assert [day["day"] for day in report["days"]] == [start, start + timedelta(days=1), start + timedelta(days=3)]
    assert report["days"][2]["sent"] == 2
    assert flow_report(flow, since=start + timedelta(days=2))["totals"]["sent"] == 2
    assert flow_report(flow, since=start + timedelta(days=2))["totals"]["entered"] == 0
    assert flow_report(flow, version=2)["totals"]["entered"] == 0
    assert flow_report(flow, version=1)["totals"]["entered"] == 3


def test_rebuild_recounts_the_same_numbers(flows):
    flow = flows.flow(ab_flow(holdout_percent=30), slug="rebuild")
    addresses = [f"r{i}@example.com" for i in range(12)]
    enter(flows, addresses)
    treated = [a for a in addresses if Message.objects.filter(contact__email=a).exists()]
    engage(treated[0], "hello", flows.now, opened=True, clicked=True)
    flows.advance(hours=2)
    flows.event("order_created", email=treated[0], payload={**ORDER, "id": "rebuild-order"})
    flows.event("goal_met", email=treated[1])
    fold_deltas()
    enter(flows, ["late@example.com"])  # some deltas left unfolded
    before = flow_report(flow)
    assert before["totals"]["orders"] == 1 and before["totals"]["held_out"] > 0
    call_command("flows_rollup", "--rebuild", stdout=open("/dev/null", "w"))
    assert flow_report(flow) == before


# --- attribution -------------------------------------------------------------------

def test_order_goes_to_the_last_click_within_the_window_in_its_currency(flows):
    flow = flows.flow(ab_flow(), slug="attr")
    enter(flows, ["buyer@example.com"])
    start = flows.now
    engage("buyer@example.com", "hello", start, clicked=True)
    later = [step for step in ("mail_a", "mail_b") if Message.objects.filter(step_id=step).exists()][0]
    engage("buyer@example.com", later, start + timedelta(hours=1), clicked=True)
    flows.advance(days=4)
    flows.event("order_created", email="buyer@example.com", payload={**ORDER, "id": "order-1"})
    attribution = Attribution.objects.get()
    assert (attribution.flow_id, attribution.step_id, attribution.touch) == (flow.pk, later, "click")
    assert (attribution.amount, attribution.currency) == (Decimal("40.00"), "EUR")
    assert attribution.order_key == "order:order-1"
    assert attribution.event_id == Event.objects.get(name="order_created").pk

    # The same order again (another event for it, or a replay): still one attribution.
    flows.event("order_created", email="buyer@example.com", payload={**ORDER, "id": "order-1"},
                dedupe_key="replayed-order-1")
    assert Attribution.objects.count() == 1
    report = flow_report(flow)
    assert report["revenue"] == {"EUR": "40.00"} and report["totals"]["orders"] == 1
    assert {s["id"]: s["revenue"] for s in report["steps"]}[later] == {"EUR": "40.00"}


def test_a_repeated_click_event_moves_the_last_touch(flows):
    flows.flow(ab_flow(), slug="reclick")
    enter(flows, ["again@example.com"])
    start = flows.now
    later = [step for step in ("mail_a", "mail_b") if Message.objects.filter(step_id=step).exists()][0]
    engage("again@example.com", "hello", start, clicked=True)
    engage("again@example.com", later, start + timedelta(hours=1), clicked=True)
    # Three days on, the first email is clicked again: its click is now the last touch.
    MessageEvent.objects.create(message=message("again@example.com", "hello"), provider="redirect", event_id="c2",
                                type="clicked", occurred_at=start + timedelta(days=3), received_at=start)
    flows.advance(days=4)
    flows.event("order_created", email="again@example.com", payload={**ORDER, "id": "o2"})
    assert Attribution.objects.get().step_id == "hello"


def test_clicks_outside_the_window_machine_clicks_and_opens_earn_nothing(flows, settings):
    flows.flow(ab_flow(), slug="window")
    enter(flows, ["late@example.com", "opener@example.com"])
    start = flows.now
    engage("late@example.com", "hello", start, clicked=True)
    engage("opener@example.com", "hello", start, opened=True)
    MessageEvent.objects.create(message=message("opener@example.com", "hello"), provider="redirect", event_id="m1",
                                type="clicked", machine=True, occurred_at=start, received_at=start)
    flows.advance(days=5, hours=1)
    flows.event("order_created", email="late@example.com", payload={**ORDER, "id": "late"})
    flows.event("order_created", email="opener@example.com", payload={**ORDER, "id": "open-1"})
    assert not Attribution.objects.exists()

    settings.SALEOR_FLOWS = {**getattr(settings, "SALEOR_FLOWS", {}), "ATTRIBUTION_OPEN_WINDOW_HOURS": 24}
    engage("opener@example.com", "hello", flows.now - timedelta(hours=2), opened=True)
    flows.event("order_created", email="opener@example.com", payload={**ORDER, "id": "open-2", "currency": "USD"})
    attribution = Attribution.objects.get()
    assert (attribution.touch, attribution.order_key, attribution.currency) == ("open", "order:open-2", "USD")


# --- experiments -------------------------------------------------------------------

def _force_variant_counts(flow, counts: dict):
    """Known variant statistics straight into the rollup (what months of sends would have left)."""
    day = flow.created_at.date()
    version = flow.live_version.number
    for variant, (recipients, sent, clicked) in counts.items():
        for metric, step_id, branch, reason, n in (("step_done", "ab", "", variant, recipients),
                                                   ("sent", "mail", f"ab:{variant}", "", sent),
                                                   ("clicked", "mail", f"ab:{variant}", "", clicked)):
            stat, _ = FlowStat.objects.get_or_create(flow=flow, version_number=version, step_id=step_id,
                                                     branch=branch, day=day, metric=metric, reason=reason)
            FlowStat.objects.filter(pk=stat.pk).update(count=F("count") + n)


def test_split_report_probabilities_and_automatic_winner(flows):
    definition = ab_flow()
    definition["steps"]["ab"]["auto_winner"] = {"min_per_variant": 500, "probability": 0.9}
    flow = flows.flow(definition, slug="winner")
    _force_variant_counts(flow, {"A": (499, 499, 50), "B": (600, 600, 100)})
    report = split_report(flow, "ab")
    a, b = report["variants"]
    assert (a["recipients"], a["sent"], a["clicked"]) == (499, 499, 50)
    assert b["probability_best"]["click_rate"] > 0.99
    assert a["probability_best"]["click_rate"] + b["probability_best"]["click_rate"] == pytest.approx(1)
    assert analytics.rollup()["winners"] == []  # A has 499 recipients: not yet
    _force_variant_counts(flow, {"A": (1, 1, 0), "B": (0, 0, 0)})
    assert analytics.rollup()["winners"][0]["variant"] == "B"
    assert split_report(flow, "ab")["winner"]["variant"] == "B"

    enter(flows, [f"late{i}@example.com" for i in range(6)])
    for i in range(6):
        assert Message.objects.filter(contact__email=f"late{i}@example.com", step_id="mail_b").exists()
        assert any(e.kind == "branch" and e.detail.get("reason") == "winner chosen"
                   for e in flows.trail(f"late{i}@example.com"))


def test_equal_variants_are_a_coin_toss_and_no_winner_is_chosen(flows):
    definition = ab_flow()
    definition["steps"]["ab"]["auto_winner"] = True
    flow = flows.flow(definition, slug="tie")
    _force_variant_counts(flow, {"A": (800, 800, 80), "B": (800, 800, 80)})
    a, b = split_report(flow, "ab")["variants"]
    assert a["probability_best"]["click_rate"] == pytest.approx(0.5, abs=1e-9)
    assert analytics.rollup()["winners"] == [] and not SplitWinner.objects.exists()


def test_definition_checks_holdout_and_auto_winner():
    definition = ab_flow(holdout_percent=60)
    definition["steps"]["ab"]["auto_winner"] = {"metric": "revenue", "probability": 1.5, "min_per_variant": 0}
    errors = validate_definition(definition)
    assert "holdout_percent: a number from 0 to 50 (the share of entrants kept out for comparison)" in errors
    assert "steps.ab.auto_winner.metric: one of click_rate, conversion_rate, open_rate" in errors
    assert "steps.ab.auto_winner.min_per_variant: a whole number from 1 to 1000000" in errors
    assert "steps.ab.auto_winner.probability: a number between 0.5 and 1 (exclusive)" in errors
    assert validate_definition(ab_flow(holdout_percent=10)) == []


def test_an_invalid_definition_is_not_published(flows):
    with pytest.raises(DefinitionError):
        flows.flow(ab_flow(holdout_percent="ten"))


# --- holdout -------------------------------------------------------------------------

def test_holdout_assignment_is_deterministic_and_close_to_the_percentage():
    held = sum(in_holdout(7, contact, 1000 + contact, 20) for contact in range(10_000))
    assert abs(held - 2000) < 3 * (10_000 * 0.2 * 0.8) ** 0.5  # within three standard deviations
    assert [in_holdout(7, c, c, 20) for c in range(50)] == [in_holdout(7, c, c, 20) for c in range(50)]
    assert not any(in_holdout(7, c, c, 0) for c in range(1000))


def test_held_out_contacts_get_nothing_but_their_orders_and_goals_count(flows):
    flow = flows.flow(ab_flow(holdout_percent=50), slug="holdout")
    addresses = [f"h{i}@example.com" for i in range(40)]
    enter(flows, addresses)
    held = {e.contact.email for e in Enrolment.objects.filter(flow=flow, holdout=True).select_related("contact")}
    assert 5 < len(held) < 35
    for address in held:
        assert flows.emails_to(address) == []
        assert flows.trail_kinds(address) == ["held_out"]
    treated = sorted(set(addresses) - held)
    buyer_held, buyer_treated = sorted(held)[0], treated[0]
    flows.advance(days=1)
    flows.event("order_created", email=buyer_held, payload={**ORDER, "id": "held-order"})
    flows.event("goal_met", email=sorted(held)[1])
    flows.event("order_created", email=buyer_treated, payload={**ORDER, "id": "treated-order"})
    assert Enrolment.objects.get(flow=flow, contact__email=sorted(held)[1]).status == "converted"

    report = holdout_report(flow)
    assert report["holdout"]["entrants"] == len(held) and report["treated"]["entrants"] == len(treated)
    assert report["holdout"]["converted"] == 2 and report["treated"]["converted"] == 1
    assert report["holdout"]["revenue"]["EUR"]["total"] == 40.0
    fold_deltas()
    summary = flow_report(flow)
    assert summary["totals"]["held_out"] == len(held) and summary["totals"]["entered"] == len(treated)
    assert summary["holdout"]["converted"] == 1

    flows.advance(days=31)
    analytics.rollup()
    assert not Enrolment.objects.filter(flow=flow, holdout=True, status="active").exists()
