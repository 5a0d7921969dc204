"""Data lifecycle on real PostgreSQL: old rows go, what reports, attribution, dedupe and re-entry need stays."""

from datetime import timedelta

from django.core.management import call_command

from saleor_flows import clock
from saleor_flows.engine.analytics import flow_report, holdout_report
from saleor_flows.engine.retention import key_digest, prune
from saleor_flows.models import (Attribution, ConsentChange, Contact, Enrolment, Event, Message, MessageEvent,
                                 PastEntry, PrunedEventKey, Simulation, StepExecution, Suppression, TrailEntry)

from .flowkit import email

ORDER = {"total_gross_amount": "40.00", "currency": "EUR"}


def welcome(**top):
    return {"trigger": {"event": "signed_up"}, "start": "hello",
            "steps": {"hello": email("Hello", next="again"), "again": email("Again")}, **top}


def sign_up(flows, address, **kwargs):
    flows.contact(address, email_consent="subscribed")
    return flows.event("signed_up", email=address, **kwargs)


def click(address, at):
    message = Message.objects.filter(contact__email=address).order_by("id").first()
    Message.objects.filter(pk=message.pk).update(delivered_at=at, clicked_at=at)
    MessageEvent.objects.create(message=message, provider="redirect", event_id=f"click-{message.pk}",
                                type="clicked", occurred_at=at, received_at=at)
    return message


def test_old_rows_go_young_and_needed_rows_stay(flows):
    flows.flow(welcome(), slug="welcome")
    running = flows.flow({"trigger": {"event": "signed_up"}, "start": "wait",
                          "steps": {"wait": {"type": "wait", "duration": {"days": 400}, "next": "late"},
                                    "late": email("Late")}}, slug="slow")
    sign_up(flows, "old@example.com")
    click("old@example.com", flows.now)
    dead = flows.event("signed_up", email="not an address")  # dead-lettered: no valid email
    Simulation.objects.create(flow=running, definition={}, days=7, status="done", created_at=flows.now)
    consent = flows.event("consent_updated", email="old@example.com",
                          payload={"channel": "email", "status": "unsubscribed"})
    Suppression.objects.create(channel="email", address_hash="x" * 64, reason="bounce", created_at=flows.now)
    consent_changes, suppressions = ConsentChange.objects.count(), Suppression.objects.count()
    assert consent_changes > 0 and Event.objects.get(pk=dead.id).status == "dead"

    flows.travel_to(flows.now + timedelta(days=200))
    sign_up(flows, "young@example.com", dedupe_key="signup:young")
    click("young@example.com", flows.now)
    old_enrolment = Enrolment.objects.get(flow__slug="welcome", contact__email="old@example.com")
    running_enrolment = Enrolment.objects.get(flow=running, contact__email="old@example.com")
    assert old_enrolment.status == "completed" and running_enrolment.status == "active"
    long_ago = flows.now - timedelta(days=200)  # pending that long (no worker ran): never pruned
    pending = Event.objects.create(name="browsed", occurred_at=long_ago, received_at=long_ago, email="p@example.com",
                                   dedupe_key="pending-1", status="pending")
    before = {model: model.objects.count() for model in [Event, Enrolment, StepExecution, TrailEntry, Message,
                                                          MessageEvent, Simulation]}

    report = prune()

    # Gone: the finished journey of 200 days ago with its steps, messages and their events, old events.
    assert not Enrolment.objects.filter(pk=old_enrolment.pk).exists()
    assert not StepExecution.objects.filter(enrolment_id=old_enrolment.pk).exists()
    assert not TrailEntry.objects.filter(enrolment_id=old_enrolment.pk).exists()
    assert not Message.objects.filter(contact__email="old@example.com", flow__slug="welcome").exists()
    assert not MessageEvent.objects.filter(occurred_at__lt=flows.now - timedelta(days=100)).exists()
    assert not Event.objects.filter(pk=consent.id).exists()
    assert not Event.objects.filter(pk=dead.id).exists()  # dead-lettered and older than 180 days
    assert not Simulation.objects.exists()
    # Stay: the running journey (and its trigger event and trail), the pending event, the young rows,
    # consent proof and suppressions.
    assert Enrolment.objects.filter(pk=running_enrolment.pk, status="active").exists()
    assert running_enrolment.trigger_event_id == old_enrolment.trigger_event_id
    assert Event.objects.filter(pk=running_enrolment.trigger_event_id).exists()  # it started the running one too
    assert TrailEntry.objects.filter(enrolment_id=running_enrolment.pk).exists()
    assert Event.objects.filter(pk=pending.pk, status="pending").exists()
    assert Enrolment.objects.filter(contact__email="young@example.com").count() == 2
    assert Message.objects.filter(contact__email="young@example.com").count() == 2
    assert MessageEvent.objects.filter(message__contact__email="young@example.com").count() == 1
    assert ConsentChange.objects.count() == consent_changes and Suppression.objects.count() == suppressions
    # The report says exactly what went, per table.
    after = {model: model.objects.count() for model in before}
    assert report.deleted["event"] == before[Event] - after[Event] >= 2
    assert report.deleted["enrolment"] == before[Enrolment] - after[Enrolment] == 1
    assert report.deleted["stepexecution"] == before[StepExecution] - after[StepExecution] == 2
    assert before[TrailEntry] - after[TrailEntry] == report.deleted["trailentry"] > 0
    assert report.deleted["message"] == before[Message] - after[Message] == 2
    assert report.deleted["messageevent"] == before[MessageEvent] - after[MessageEvent] == 1
    assert report.deleted["simulation"] == 1
    assert report.kept["pastentry"] == 1
    # A second run finds nothing more.
    assert sum(prune().deleted.values()) == 0


def test_dry_run_counts_and_deletes_nothing(flows):
    flows.flow(welcome(), slug="welcome")
    for i in range(3):
        sign_up(flows, f"c{i}@example.com")
    flows.travel_to(flows.now + timedelta(days=200))
    counts = {model: model.objects.count() for model in [Event, Enrolment, StepExecution, TrailEntry, Message]}
    dry = prune(dry_run=True)
    assert dry.deleted["enrolment"] == 3 and dry.deleted["message"] == 6 and dry.deleted["stepexecution"] == 6
    assert counts == {model: model.objects.count() for model in counts}
    assert not PastEntry.objects.exists()
    real = prune()
    assert real.deleted["enrolment"] == 3 and real.deleted["message"] == 6


def test_reports_give_the_same_numbers_before_and_after_pruning(flows):
    flow = flows.flow(welcome(), slug="welcome")
    for i in range(6):
        sign_up(flows, f"r{i}@example.com")
    click("r0@example.com", flows.now)
    flows.event("order_created", email="r0@example.com", payload={**ORDER, "id": "o-1"})
    assert Attribution.objects.count() == 1
    flows.travel_to(flows.now + timedelta(days=400))
    before = flow_report(flow)
    assert before["totals"]["sent"] == 12 and before["totals"]["orders"] == 1

    report = prune()

    assert report.deleted["enrolment"] == 6 and report.deleted["message"] == 12
    assert not Message.objects.exists() and not Enrolment.objects.exists()
    assert flow_report(flow) == before
    assert Attribution.objects.get().message_id is None  # the credit stays, the message went


def test_holdout_versions_keep_their_enrolments_for_the_holdout_report(flows):
    flow = flows.flow(welcome(holdout_percent=50), slug="holdout")
    for i in range(12):
        sign_up(flows, f"h{i}@example.com")
    flows.travel_to(flows.now + timedelta(days=400))
    before = holdout_report(flow)
    prune()
    assert Enrolment.objects.filter(flow=flow).count() == 12
    assert holdout_report(flow) == before


def test_clicks_inside_the_attribution_window_survive_any_setting(flows, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "RETENTION_MESSAGE_DAYS": 0, "RETENTION_MESSAGE_EVENT_DAYS": 0,
                             "RETENTION_ENROLMENT_DAYS": 0, "ATTRIBUTION_WINDOW_DAYS": 5}
    flows.flow(welcome(), slug="welcome")
    sign_up(flows, "buyer@example.com")
    message = click("buyer@example.com", flows.now)
    flows.travel_to(flows.now + timedelta(days=3))
    prune()
    assert Message.objects.filter(pk=message.pk).exists() and MessageEvent.objects.filter(message=message).exists()
    flows.event("order_created", email="buyer@example.com", payload={**ORDER, "id": "o-2"})
    assert Attribution.objects.get().message_id == message.pk


def test_a_redelivered_pruned_event_is_still_a_duplicate_within_the_horizon(flows):
    flows.flow(welcome(), slug="welcome")
    flows.contact("again@example.com", email_consent="subscribed")
    first = flows.event("signed_up", email="again@example.com", dedupe_key="host:signup:42")
    flows.travel_to(flows.now + timedelta(days=200))
    prune()
    assert not Event.objects.filter(pk=first.id).exists()
    assert PrunedEventKey.objects.filter(digest=key_digest("host:signup:42")).exists()
    # "Once" would also be kept by the past entry: remove it so that only the key can say "duplicate".
    PastEntry.objects.all().delete()
    sent = len(flows.outbox)

    redelivered = flows.event("signed_up", email="again@example.com", dedupe_key="host:signup:42")

    event = Event.objects.get(pk=redelivered.id)
    assert event.status == "dead" and "duplicate" in event.error
    assert not Enrolment.objects.filter(trigger_event=event).exists() and len(flows.outbox) == sent
    # Past the horizon the digest goes too (a re-delivery a year and more later is a new event).
    flows.travel_to(flows.now + timedelta(days=400))
    prune()
    assert not PrunedEventKey.objects.filter(digest=key_digest("host:signup:42")).exists()


def test_once_ever_and_once_per_period_reentry_hold_after_pruning(flows):
    flows.flow(welcome(), slug="once")
    flows.flow({**welcome(), "reentry": {"mode": "once_per_period", "days": 365}}, slug="yearly")
    sign_up(flows, "loyal@example.com", dedupe_key="s1")
    entered = flows.now
    flows.travel_to(flows.now + timedelta(days=200))
    prune()
    assert not Enrolment.objects.filter(contact__email="loyal@example.com").exists()
    assert PastEntry.objects.filter(contact__email="loyal@example.com").count() == 2
    assert PastEntry.objects.filter(flow__slug="yearly").get().last_entered_at == entered

    sign_up(flows, "loyal@example.com", dedupe_key="s2")
    assert not Enrolment.objects.filter(contact__email="loyal@example.com").exists()
    reasons = [entry.detail.get("reason") for entry in flows.trail("loyal@example.com") if entry.kind == "not_entered"]
    assert "already entered once (re-entry: once)" in reasons
    assert "entered within the last 365 days (re-entry: once per period)" in reasons
    flows.travel_to(entered + timedelta(days=366))
    sign_up(flows, "loyal@example.com", dedupe_key="s3")
    assert [e.flow.slug for e in flows.enrolments("loyal@example.com")] == ["yearly"]


def test_batches_are_bounded(flows, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "RETENTION_BATCH_SIZE": 20}
    flows.flow(welcome(), slug="welcome")
    for i in range(15):
        sign_up(flows, f"b{i}@example.com")
    flows.travel_to(flows.now + timedelta(days=200))
    report = prune()
    assert report.deleted["enrolment"] == 15 and report.deleted["event"] == 15
    # Enrolment windows are a tenth of the batch (2 enrolments, their 4 executions, trail): many small
    # transactions, none over the batch size.
    assert report.transactions >= 8 + 1
    assert 0 < report.largest_transaction <= 20


def test_flows_prune_command_prints_per_table(flows, capsys):
    flows.flow(welcome(), slug="welcome")
    sign_up(flows, "cmd@example.com")
    clock.advance(timedelta(days=200))
    call_command("flows_prune", "--dry-run")
    out = capsys.readouterr().out
    assert "enrolment        would delete            1" in out
    assert Enrolment.objects.count() == 1
    call_command("flows_prune")
    out = capsys.readouterr().out
    assert "enrolment        deleted            1" in out and "message          deleted            2" in out
    assert not Contact.objects.filter(email="cmd@example.com", enrolments__isnull=False).exists()


def test_the_nightly_task_is_on_the_beat_schedule_and_prunes(flows):
    from saleor_flows import tasks

    assert tasks.BEAT_SCHEDULE["saleor-flows-prune"]["task"] == "saleor_flows.prune" == tasks.prune.name
    flows.flow(welcome(), slug="welcome")
    sign_up(flows, "task@example.com")
    clock.advance(timedelta(days=200))
    result = tasks.prune()
    assert result["deleted"]["enrolment"] == 1 and not Enrolment.objects.exists()


def test_spent_checkout_timers_and_sent_stock_alerts_go_and_live_ones_stay(flows):
    from saleor_flows.models import IdleTimer, StockAlert

    flows.contact("cart@example.com", email_consent="subscribed")
    lines = [{"product_name": "Tee", "quantity": 1, "base_price": "20.00", "currency": "EUR"}]

    def activity(token, **extra):
        flows.event("checkout_updated", email="cart@example.com",
                    payload={"token": token, "email": "cart@example.com", "lines": lines, **extra})

    activity("fired")
    activity("cancelled")
    flows.event("order_created", email="cart@example.com", payload={"checkout_token": "cancelled", **ORDER})
    flows.advance(hours=2)  # "fired" goes quiet and fires
    flows.event("back_in_stock_requested", email="cart@example.com", payload={"variant_id": "sent"})
    StockAlert.objects.filter(variant_id="sent").update(notified_at=flows.now)
    flows.event("back_in_stock_requested", email="cart@example.com", payload={"variant_id": "open"})
    flows.travel_to(flows.now + timedelta(days=200))
    activity("waiting")  # the one live timer (young), next to a live alert that is old but not sent
    IdleTimer.objects.filter(key="checkout:waiting").update(last_activity_at=flows.now - timedelta(days=200))
    assert dict(IdleTimer.objects.values_list("key", "state")) == {
        "checkout:fired": "fired", "checkout:cancelled": "cancelled", "checkout:waiting": "waiting"}

    report = prune()

    assert report.deleted["idletimer"] == 2 and report.deleted["stockalert"] == 1
    assert list(IdleTimer.objects.values_list("key", "state")) == [("checkout:waiting", "waiting")]
    assert list(StockAlert.objects.values_list("variant_id", flat=True)) == ["open"]
    # The pruned checkout comes back to life: a new activity arms a fresh timer that fires once.
    activity("fired", updated="again")
    flows.advance(hours=2)
    (fired,) = Event.objects.filter(name="checkout_abandoned", payload__token="fired")  # the old one is pruned
    assert fired.payload["updated"] == "again" and IdleTimer.objects.get(key="checkout:fired").state == "fired"
