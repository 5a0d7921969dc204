"""Dry-run simulation: ten days of stored events replayed through a draft, with answers worked out by hand."""

import re
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from saleor_flows import clock, tasks
from saleor_flows.channels.sms import locmem
from saleor_flows.engine import dispatch, simulation
from saleor_flows.engine.definition import DefinitionError, create_flow
from saleor_flows.engine.runner import pick_variant
from saleor_flows.engine.simulation import start_simulation
from saleor_flows.models import (Contact, Enrolment, Event, Flow, Message, Simulation, StepExecution,
                                 TrailEntry)

from .flowkit import chain, email, nxt

DRAFT = {
    "trigger": {"event": "checkout_abandoned", "filter": {"field": "event.total", "op": "gte", "value": 20}},
    "reentry": {"mode": "once_per_period", "days": 7},
    "goal": {"history": "event", "event": "order_created", "since": "entered"},
    "start": "wait_1h",
    "steps": {
        "wait_1h": {"type": "wait", "duration": {"hours": 1}, "next": "split_vip"},
        "split_vip": {"type": "split", "condition": {"field": "contact.order_count", "op": "gte", "value": 1},
                      "yes": "email_vip", "no": "email_new"},
        "email_vip": email("Welcome back", next="wait_visit"),
        "email_new": email("Your basket", next="wait_visit"),
        "wait_visit": {"type": "wait_event", "event": "site_visit", "timeout": {"days": 2},
                       "next": None, "timeout_next": "sms_last"},
        "sms_last": {"type": "send_sms", "body": "Last chance", "next": None},
    },
}


def _at(flows, days, hours):
    """Day ``days`` of the fixture (day 0 is Monday 2026-01-05 at 09:00 UTC), ``hours`` past 09:00."""
    clock.set_now(flows.start + timedelta(days=days, hours=hours))


def _abandon(flows, address, total):
    return flows.event("checkout_abandoned", email=address, payload={"lines": [], "total": total})


@pytest.fixture
def history(flows):
    """Stored events of ten days, and a live newsletter flow that really mailed Erin."""
    flows.start = flows.now
    flows.contact("alice@example.com", email_consent="subscribed", sms_consent="subscribed", phone="+4915112345678")
    flows.contact("bob@example.com", email_consent="subscribed")
    flows.contact("carol@example.com")  # never asked for consent
    flows.contact("dave@example.com", email_consent="subscribed")
    flows.contact("erin@example.com", email_consent="subscribed")
    flows.flow(chain("customer_created", ("news", nxt(email("Our newsletter"))),
                     ("later", {"type": "wait", "duration": {"days": 30}, "next": None})), slug="newsletter")
    order = {"total_gross_amount": "50.00", "currency": "EUR"}
    _at(flows, 1, 1)
    flows.event("order_created", email="alice@example.com", payload=order, dedupe_key="o1")
    _at(flows, 2, 1)
    _abandon(flows, "alice@example.com", 30)  # enters; had ordered: VIP email; no visit: SMS at day 4
    _at(flows, 3, 0)
    _abandon(flows, "bob@example.com", 25)  # enters; no order *then*: new-customer email
    _at(flows, 3, 3)
    flows.event("site_visit", email="bob@example.com")  # ... comes back: the wait ends on the event
    _at(flows, 3, 6)
    flows.event("order_created", email="bob@example.com", payload=order, dedupe_key="o2")  # (after the split)
    _at(flows, 4, 0)
    _abandon(flows, "carol@example.com", 60)  # enters; her email is skipped (no consent)
    _at(flows, 5, 0)
    flows.event("order_created", email="carol@example.com", payload=order, dedupe_key="o3")  # goal reached
    _at(flows, 5, 1)
    _abandon(flows, "alice@example.com", 40)  # within 7 days of her first entry: refused
    _at(flows, 6, 0)
    _abandon(flows, "dave@example.com", 10)  # under the entry filter's 20
    _at(flows, 8, -1)
    flows.event("customer_created", email="erin@example.com")  # the newsletter flow mails her now
    _at(flows, 8, 3)
    _abandon(flows, "erin@example.com", 35)  # enters while in the newsletter; emailed the same day
    _at(flows, 10, 0)  # the simulation runs at day 10, 09:00: Erin's wait (until day 10, 13:00) is still open
    return flows


def _snapshot():
    return {
        "contacts": list(Contact.objects.order_by("pk").values()),
        "enrolments": Enrolment.objects.count(), "executions": StepExecution.objects.count(),
        "messages": Message.objects.count(), "trail": TrailEntry.objects.count(), "events": Event.objects.count(),
        "flows": list(Flow.objects.order_by("pk").values()), "mail": len(mail.outbox), "sms": len(locmem.outbox),
    }


def test_known_answers_over_ten_days(history):
    draft = create_flow("abandon", DRAFT)
    before = _snapshot()
    sim = start_simulation(draft, days=10)
    assert (sim.status, sim.progress, sim.error) == ("done", 1.0, "")
    result = sim.result
    assert result["events_scanned"] == 17  # 11 recorded, and first_order/nth_order derived from each order
    assert result["entered"]["count"] == 4 and result["entered"]["contacts"] == 4
    assert [row["email"] for row in result["entered"]["sample"]] == [
        "alice@example.com", "bob@example.com", "carol@example.com", "erin@example.com"]
    assert result["not_entered"] == {"entry filter did not match": 1,
                                     "entered within the last 7 days (re-entry: once per period)": 1}
    assert result["steps"] == {
        "wait_1h": {"type": "wait", "reached": 4, "waiting_at_end": 0},
        "split_vip": {"type": "split", "reached": 4},
        "email_vip": {"type": "send_email", "reached": 1, "sent": 1, "skipped": 0},
        "email_new": {"type": "send_email", "reached": 3, "sent": 2, "skipped": 1},
        "wait_visit": {"type": "wait_event", "reached": 4, "waiting_at_end": 1},
        "sms_last": {"type": "send_sms", "reached": 1, "sent": 1, "skipped": 0},
    }
    assert result["branches"] == {"split_vip": {"yes": 1, "no": 3}, "wait_visit": {"event": 1, "timeout": 1}}
    assert result["messages"] == {"email": 3, "sms": 1}
    assert result["messages_per_day"] == {
        "2026-01-07": {"email": 1}, "2026-01-08": {"email": 1}, "2026-01-09": {"sms": 1}, "2026-01-13": {"email": 1}}
    assert result["skips"] == {"no email marketing consent (never; policy opt_in)": 1}
    assert result["exits"] == {"completed": 2, "goal_reached": 1}
    assert result["active_at_end"] == 1
    assert result["collisions"] == {"newsletter": {"active_at_entry": 1, "same_day_message": 1}}
    # Nothing was sent, enrolled, traced or changed: only the Simulation row exists.
    assert _snapshot() == before
    assert Simulation.objects.count() == 1


def test_exits_staff_notes_and_webhooks(history, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "STAFF_NOTIFY_RECIPIENTS": ["team@example.com"]}
    draft = {
        "trigger": {"event": "checkout_abandoned"},  # no filter: Dave's small basket counts too
        "exit": {"history": "event", "event": "order_created", "since": "entered"},
        "start": "wait_1d",
        "steps": {
            "wait_1d": {"type": "wait", "duration": {"days": 1}, "next": "tell_staff"},
            "tell_staff": {"type": "notify_staff", "to": ["team@example.com"], "subject": "Basket left",
                           "body": "{{ contact.email }}", "next": "crm"},
            "crm": {"type": "webhook", "url": "https://crm.invalid/hook", "next": "stop"},
            "stop": {"type": "exit"},
        },
    }
    flow = create_flow("staff", draft)
    before = _snapshot()
    result = start_simulation(flow, days=10).result
    assert result["entered"]["count"] == 5
    assert result["not_entered"] == {"already entered once (re-entry: once)": 1}
    assert result["exits"] == {"exit_criteria": 2, "exit_step": 3}  # Bob and Carol ordered within the day
    assert result["messages_per_day"] == {"2026-01-08": {"staff": 1}, "2026-01-12": {"staff": 1},
                                          "2026-01-14": {"staff": 1}}
    assert result["steps"]["crm"] == {"type": "webhook", "reached": 3}  # counted, never called
    assert result["collisions"] == {"newsletter": {"active_at_entry": 1}}
    assert _snapshot() == before


def test_a_shorter_window_sees_fewer_events(history):
    sim = start_simulation(create_flow("abandon", DRAFT), days=3)  # days 7..10: only Erin's events
    assert sim.result["events_scanned"] == 2
    assert sim.result["entered"]["count"] == 1 and sim.result["messages"] == {"email": 1}


def test_random_split_follows_pick_variant(history):
    draft = dict(DRAFT, reentry={"mode": "always"}, goal=None, start="ab", steps={
        "ab": {"type": "random_split", "variants": [{"name": "a", "weight": 1, "next": None},
                                                    {"name": "b", "weight": 1, "next": None}]}})
    sim = start_simulation(create_flow("ab", draft), days=10)
    events = Event.objects.filter(name="checkout_abandoned").exclude(payload__total=10)
    expected = {}
    for event in events:
        name = pick_variant(event.pk, "ab", draft["steps"]["ab"]["variants"])["name"]
        expected[name] = expected.get(name, 0) + 1
    assert sim.result["branches"] == {"ab": expected} and sum(expected.values()) == 5


def test_tag_steps_change_only_the_simulated_contact(history):
    draft = dict(DRAFT, goal=None, start="tag", steps={
        "tag": {"type": "add_tag", "tag": "abandoner", "next": "check"},
        "check": {"type": "split", "condition": {"has_tag": "abandoner"}, "yes": None, "no": None}})
    sim = start_simulation(create_flow("tagging", draft), days=10)
    assert sim.result["branches"] == {"check": {"yes": 4}}
    assert not Contact.objects.filter(tags__contains=["abandoner"]).exists()


def test_progress_is_reported_while_running(history, monkeypatch):
    monkeypatch.setattr(simulation, "PROGRESS_EVERY", 5)
    draft = create_flow("abandon", DRAFT)
    with CaptureQueriesContext(connection) as queries:
        start_simulation(draft, days=10)
    updates = [q["sql"] for q in queries if q["sql"].startswith('UPDATE "saleor_flows_simulation"')]
    # claimed (progress 0), after 5, 10 and 15 of 17 events, then done (1.0)
    assert [re.search(r'"progress" = ([0-9.]+)', sql).group(1) for sql in updates] == [
        "0.0", "0.2912", "0.5824", "0.8735", "1.0"]


def test_in_celery_mode_it_is_queued_then_run_once_by_the_task(history, django_capture_on_commit_callbacks):
    draft = create_flow("abandon", DRAFT)
    with dispatch.forced("celery"), django_capture_on_commit_callbacks() as callbacks:
        sim = start_simulation(draft, days=10)
    assert sim.status == "queued" and len(callbacks) == 1
    tasks.run_simulation(sim.pk)  # what the worker runs
    sim.refresh_from_db()
    assert sim.status == "done" and sim.result["entered"]["count"] == 4 and sim.finished_at == clock.now()
    assert simulation.run_simulation(sim.pk) is False  # delivered twice: the second finds it done


def test_a_draft_that_would_not_publish_is_refused(history):
    broken = dict(DRAFT, start="nowhere")
    with pytest.raises(DefinitionError):
        start_simulation(create_flow("broken", broken), days=10)
    assert not Simulation.objects.exists()
