"""Batched event processing (issue 10, item 1): a batch has the outcome of one event at a time.

``process_events`` / ``process_pending`` take many pending events in one transaction. What a
user checks: the same enrolments, steps, why-trail and profiles as processing them one by one;
a bad event dead-lettered with its reason while the others go on; the database going away
leaving every event pending and nothing half-written.
"""

import json
import os
import subprocess
import sys
import threading
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.db import OperationalError, connections
from hypothesis import HealthCheck, given, settings, strategies as st

from saleor_flows import clock
from saleor_flows.engine import dispatch, resolvers
from saleor_flows.engine.processing import process_event, process_events, process_pending
from saleor_flows.models import Contact, Enrolment, Event, IdleTimer, StepExecution, TrailEntry

from .faults import CuttableProxy
from .flowkit import chain, email, nxt
from .test_definition_limits import stored_live_flow


@contextmanager
def held():
    """Events recorded but not processed (their task not run yet), as a worker finds them."""
    with mock.patch.object(dispatch, "event_recorded", lambda event_id: None):
        yield


def record(flows, name, *, email=None, user_id=None, payload=None, key, minutes_ago=0):
    return flows.event(name, email=email, user_id=user_id, payload=payload or {}, dedupe_key=key,
                       occurred_at=clock.now() - timedelta(minutes=minutes_ago)).id


# --- the same outcome as one at a time --------------------------------------------------------------

def publish_mix(flows):
    """Flows that make the order of one person's events matter: re-entry rules, goals, exits, waits for events.

    (No holdout: who is held out is a hash of the enrolment's ids, which differ between the two runs.)
    """
    flows.flow(chain("customer_created", ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("tag", {"type": "add_tag", "tag": "welcomed", "next": None}), reentry={"mode": "once"}),
               slug="welcome")
    flows.flow(chain("checkout_updated", ("wait", nxt({"type": "wait", "duration": {"hours": 4}})),
                     ("mail", email("Your cart")), reentry={"mode": "single_active"},
                     exit={"history": "event", "event": "order_created", "since": "entered"}), slug="cart")
    flows.flow(chain("order_created", ("paid", {"type": "wait_event", "event": "checkout_completed",
                                                "correlate": ["token"], "timeout": {"days": 2},
                                                "next": None, "timeout_next": None}),
                     reentry={"mode": "once_per_period", "days": 30},
                     goal={"field": "contact.order_count", "op": "gte", "value": 3}), slug="orders")
    flows.flow(chain("profile_updated", ("wait", nxt({"type": "wait", "duration": {"days": 3}})),
                     ("tag", {"type": "add_tag", "tag": "vip", "next": None}), reentry={"mode": "always"},
                     trigger={"event": "profile_updated",
                              "filter": {"field": "event.attributes.tier", "op": "eq", "value": "gold"}}),
               slug="vip")


PEOPLE = 3
KINDS = ["customer_created", "checkout_updated", "checkout_updated", "order_created", "checkout_completed",
         "profile_updated", "consent_updated", "bad_order", "customer_deleted"]


def build(kind, person, variant, prefix):
    """(name, identity, payload) of one generated event; identities vary (email, user id, or both)."""
    address, user = f"{prefix}p{person}@example.com", f"{prefix}u{person}"
    identity = [{"email": address}, {"user_id": user}, {"email": address, "user_id": user}][variant % 3]
    token = f"{prefix}t{person}-{variant % 2}"
    payloads = {
        "customer_created": {"first_name": f"Name{variant}", "language_code": "en"},
        "checkout_updated": {"token": token, "lines": [{"sku": "A"}] if variant % 4 else [],
                             "billing_address": {"first_name": f"Bill{variant}"}},
        "order_created": {"total_gross_amount": str(10 + variant), "currency": "USD", "id": f"{prefix}o{variant}",
                          "checkout_token": token, "token": token},
        "checkout_completed": {"token": token},
        "profile_updated": {"attributes": {"tier": ["gold", "silver"][variant % 2]}},
        "consent_updated": {"channel": "email", "status": ["subscribed", "unsubscribed"][variant % 2]},
        "bad_order": {"currency": "USD"},  # no total: dead-lettered
        "customer_deleted": {},
    }
    return ("order_created" if kind == "bad_order" else kind), identity, payloads[kind]


def snapshot(prefix):
    """Everything a user could look at about these people, without ids or the prefix."""
    def plain(value):
        return json.loads(json.dumps(value, default=str).replace(prefix, ""))

    contacts = Contact.objects.filter(email__startswith=prefix) | Contact.objects.filter(user_id__startswith=prefix)
    people = {}
    for contact in contacts:
        people[plain(f"{contact.email}|{contact.user_id}")] = plain({
            field: getattr(contact, field) for field in (
                "first_name", "last_name", "locale", "attributes", "tags", "order_count", "total_spent", "currency",
                "email_consent", "suppressed", "suppressed_reason")})
        people[plain(f"{contact.email}|{contact.user_id}")]["trail"] = sorted(
            json.dumps(plain([entry.kind, entry.step_id, entry.enrolment.flow.slug if entry.enrolment else "",
                              {k: v for k, v in entry.detail.items() if k not in ("event_id", "enrolment_id")}]),
                       sort_keys=True)
            for entry in TrailEntry.objects.filter(contact=contact).select_related("enrolment__flow"))
        people[plain(f"{contact.email}|{contact.user_id}")]["journeys"] = sorted(
            json.dumps(plain([enrolment.flow.slug, enrolment.trigger_event.name,
                              enrolment.trigger_event.dedupe_key if enrolment.trigger_event.dedupe_key.startswith(
                                  prefix) else "derived", enrolment.status, enrolment.exit_reason, enrolment.holdout,
                              sorted([e.step_id, e.state, e.waiting_for, str(e.due_at)]
                                     for e in enrolment.executions.all())]))
            for enrolment in Enrolment.objects.filter(contact=contact).select_related("flow", "trigger_event"))
    events = {plain(e.dedupe_key): [e.status, plain(e.error), plain(e.email), plain(e.user_id),
                                    plain(f"{e.contact.email}|{e.contact.user_id}") if e.contact else None]
              for e in Event.objects.filter(dedupe_key__startswith=prefix)}
    timers = {plain(t.key): [t.state, str(t.last_activity_at)] for t in IdleTimer.objects.filter(key__contains=prefix)}
    return {"people": people, "events": events, "timers": timers}


EVENTS = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, PEOPLE - 1), st.integers(0, 11),
                            st.integers(0, 90)), min_size=1, max_size=25)
runs = iter(range(10**6))


@settings(max_examples=int(os.environ.get("BATCH_EXAMPLES", 30)), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sequence=EVENTS)
def test_a_batch_has_the_outcome_of_its_events_one_at_a_time(flows, sequence):
    if not Enrolment.objects.exists() and not hasattr(flows, "mixed"):
        publish_mix(flows)
        flows.mixed = True
    run = next(runs)
    outcomes = []
    for way in ("one", "batch"):
        prefix = f"r{run}{way}-"
        ids = []
        with held():
            for index, (kind, person, variant, minutes) in enumerate(sequence):
                name, identity, payload = build(kind, person, variant, prefix)
                ids.append(record(flows, name, **identity, payload=payload, key=f"{prefix}{index}",
                                  minutes_ago=minutes))
        if way == "one":
            ordered = sorted(Event.objects.filter(pk__in=ids), key=lambda e: (e.occurred_at, e.pk))
            for event in ordered:
                process_event(event.pk)
        else:
            process_events(ids)
        outcomes.append(snapshot(prefix))
    assert outcomes[0] == outcomes[1]
    assert all(status != "pending" for status, *_ in outcomes[1]["events"].values())


def test_a_persons_events_in_one_batch_are_applied_in_the_order_they_happened(flows):
    """The order was placed before the checkout was touched again: the cart journey is not ended by it."""
    flows.flow(chain("checkout_updated", ("wait", nxt({"type": "wait", "duration": {"hours": 4}})),
                     ("mail", email("Your cart")), reentry={"mode": "single_active"},
                     exit={"history": "event", "event": "order_created", "since": "entered"}), slug="cart")
    with held():
        # Recorded in the opposite order of their occurrence (a late webhook).
        later = record(flows, "checkout_updated", email="jane@example.com", key="c2", minutes_ago=1,
                       payload={"token": "t", "lines": [1]})
        earlier = record(flows, "checkout_updated", email="jane@example.com", key="c1", minutes_ago=3,
                         payload={"token": "t", "lines": [1]})
    process_events([later, earlier])
    enrolment = Enrolment.objects.get()
    assert enrolment.trigger_event_id == earlier  # the first one entered, the second found it active
    kinds = [(entry.kind, entry.detail.get("reason")) for entry in TrailEntry.objects.order_by("id")]
    assert kinds[0] == ("entered", None) and ("not_entered", "already in this flow (re-entry: one active enrolment)") in kinds
    assert IdleTimer.objects.get().last_activity_at == clock.now() - timedelta(minutes=1)


# --- the batch entry point ----------------------------------------------------------------------------

def test_process_pending_takes_the_oldest_first_up_to_the_limit_and_runs_immediate_steps(flows):
    flows.contact("a@example.com", email_consent="subscribed")
    flows.flow(chain("customer_created", ("hello", email("Welcome")), kind="transactional"))
    with held():
        ids = []
        for n in range(5):
            ids.append(record(flows, "customer_created", email=f"p{n}@example.com", key=f"k{n}"))
            clock.advance(timedelta(seconds=1))  # received one after the other
    assert process_pending(3) == 3
    statuses = dict(Event.objects.values_list("id", "status"))
    assert [statuses[i] for i in ids] == ["processed"] * 3 + ["pending"] * 2
    assert sorted(m.to[0] for m in mail.outbox) == ["p0@example.com", "p1@example.com", "p2@example.com"]
    assert process_pending(10) == 2 and process_pending(10) == 0
    assert len(mail.outbox) == 5 and Enrolment.objects.count() == 5


def test_a_batch_enrols_once_per_event_and_trail_rows_match_the_rows_written(flows):
    flows.flow(chain("customer_created", ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("tag", {"type": "add_tag", "tag": "x", "next": None})))
    with held():
        ids = [record(flows, "customer_created", email=f"p{n}@example.com", key=f"k{n}") for n in range(50)]
    process_events(ids)
    process_events(ids)  # delivered again: nothing left to do
    assert Enrolment.objects.count() == 50 and StepExecution.objects.filter(state="pending").count() == 50
    assert TrailEntry.objects.filter(kind="entered").count() == 50
    assert TrailEntry.objects.filter(kind="waiting").count() == 50
    assert Contact.objects.count() == 50


def test_profiles_changed_in_different_fields_in_one_batch_keep_the_others(flows):
    """One UPDATE writes every contact of a wave: each gets the fields its event changed, nothing else."""
    flows.contact("a@example.com", first_name="Ann", locale="fr")
    flows.contact("b@example.com", first_name="Bob", locale="de")
    with held():
        ids = [record(flows, "customer_updated", email="a@example.com", payload={"language_code": "en"}, key="a"),
               record(flows, "customer_updated", email="b@example.com", payload={"first_name": "Robert"}, key="b")]
    process_events(ids)
    assert sorted(Contact.objects.values_list("email", "first_name", "locale")) == [
        ("a@example.com", "Ann", "en"), ("b@example.com", "Robert", "de")]


def test_goals_and_exits_that_read_the_trigger_event_see_it_in_a_batch(flows):
    """The trigger event is loaded only for goals and exits that read it: those still see its payload and time."""
    wait = ("wait", nxt({"type": "wait", "duration": {"days": 1}}))
    flows.flow(chain("checkout_updated", wait, ("mail", email("Cart")),
                     goal={"field": "event.vip", "op": "eq", "value": True}), slug="vip")
    flows.flow(chain("checkout_updated", wait, ("mail", email("Cart")),
                     exit={"history": "event", "event": "order_created", "since": "triggered"}), slug="ordered")
    flows.flow(chain("checkout_updated", wait, ("mail", email("Cart")),
                     goal={"field": "contact.order_count", "op": "gte", "value": 1}), slug="contact")
    with held():
        ids = [record(flows, "checkout_updated", email="a@example.com", payload={"token": "t1", "vip": True},
                      key="a1", minutes_ago=30),
               record(flows, "checkout_updated", email="b@example.com", payload={"token": "t2", "vip": False},
                      key="b1", minutes_ago=30)]
        ids += [record(flows, "order_created", email=address, key=f"o{n}", minutes_ago=10,
                       payload={"total_gross_amount": "5", "currency": "USD"})
                for n, address in enumerate(["a@example.com", "b@example.com"])]
    process_events(ids)
    ended = {(e.contact.email, e.flow.slug): (e.status, e.exit_reason) for e in Enrolment.objects.all()}
    assert ended == {("a@example.com", "vip"): ("converted", "goal_reached"),
                     ("b@example.com", "vip"): ("active", ""),
                     # the order came after the checkout (the trigger) but before the journey began
                     ("a@example.com", "ordered"): ("exited", "exit_criteria"),
                     ("b@example.com", "ordered"): ("exited", "exit_criteria"),
                     ("a@example.com", "contact"): ("converted", "goal_reached"),
                     ("b@example.com", "contact"): ("converted", "goal_reached")}
    converted = TrailEntry.objects.get(kind="converted", enrolment__flow__slug="vip")
    assert converted.detail["facts"] == {"event.vip": True}


def test_timestamps_read_inside_a_batch_are_the_ones_stored(flows):
    """A batch parses timestamps with its own loader (db.fast_timestamps): the same values as Django's."""
    from datetime import datetime, timezone

    from saleor_flows.db import fast_timestamps

    moments = [datetime(2026, 3, 29, 1, 30, 0, 123456, tzinfo=timezone.utc), datetime(2026, 1, 1, tzinfo=timezone.utc),
               datetime(50, 6, 1, 12, 0, 1, tzinfo=timezone.utc), datetime(9999, 12, 31, 23, 59, 59, 999999,
                                                                            tzinfo=timezone.utc)]
    for n, moment in enumerate(moments):
        flows.contact(f"t{n}@example.com", last_order_at=moment, email_consent_at=None)

    def read():
        return [(c.last_order_at, c.last_order_at.tzinfo, c.email_consent_at, c.created_at)
                for c in Contact.objects.order_by("id")]

    with fast_timestamps():
        inside = read()
    assert inside == read()
    assert [row[0] for row in inside] == moments


def test_a_batch_finds_contacts_whatever_characters_their_keys_hold(flows):
    """Batches look keys up as one array literal (db.any_of): quotes, backslashes, commas, braces, NULL."""
    from saleor_flows.db import any_of

    odd = ['a"b@example.com', "c\\d@example.com", "e,f@example.com", "{g}@example.com", "null",
           "é@example.com", " h@example.com", "i j@example.com"]
    created = [flows.contact(address) for address in [*odd, "other@example.com"]]
    found = Contact.objects.filter(any_of("email", [*odd, None, "missing@example.com"]))
    assert sorted(c.email for c in found) == sorted(odd)
    ids = [c.pk for c in created[:3]]
    assert sorted(Contact.objects.filter(any_of("pk", [*ids, None])).values_list("pk", flat=True)) == sorted(ids)
    assert not Contact.objects.filter(any_of("pk", [])).exists()


# --- failures -------------------------------------------------------------------------------------------

def test_one_failing_event_is_dead_lettered_with_its_reason_and_the_others_are_processed(flows):
    flows.flow(chain("customer_created", ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("tag", {"type": "add_tag", "tag": "x", "next": None})))

    def resolver(reference, event):
        raise RuntimeError("the edge's payload builder has a bug")

    resolvers.register("buggy", resolver)
    with held():
        ids = [record(flows, "customer_created", email=f"p{n}@example.com", key=f"k{n}") for n in range(20)]
        bad = record(flows, "customer_created", email="bad@example.com", key="bad",
                     payload={"$ref": {"source": "buggy", "id": 1}})
        # another event of the same person, after the bad one: processed on its own, in order
        same = record(flows, "customer_created", email="bad@example.com", key="bad-2")
    process_events([*ids[:10], bad, same, *ids[10:]])
    dead = Event.objects.get(pk=bad)
    assert dead.status == "dead" and dead.error == "processing failed: RuntimeError: the edge's payload builder has a bug"
    assert Event.objects.filter(status="processed").count() == 21
    assert Enrolment.objects.count() == 21
    assert Enrolment.objects.filter(trigger_event_id=same).exists()


def test_a_flow_failing_in_a_batch_leaves_its_reason_and_the_other_flows_enrol(flows):
    stored_live_flow("broken", chain("customer_created", ("tag", {"type": "add_tag", "tag": "broken", "next": None}),
                                     reentry={"mode": "once_per_period", "days": 10**12}))
    flows.flow(chain("customer_created", ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("tag", {"type": "add_tag", "tag": "welcomed", "next": None})), slug="healthy")
    with held():
        ids = [record(flows, "customer_created", email=f"p{n}@example.com", key=f"k{n}") for n in range(10)]
    process_events(ids)
    assert Event.objects.filter(status="processed").count() == 10
    assert set(Enrolment.objects.values_list("flow__slug", flat=True)) == {"healthy"}
    failures = TrailEntry.objects.filter(kind="flow_failed")
    assert failures.count() == 10
    assert all(f.detail["flow"] == "broken" and f.detail["error"].startswith("OverflowError") for f in failures)


@pytest.mark.django_db(transaction=True)
def test_the_database_going_away_mid_batch_leaves_every_event_pending_and_nothing_written(flows):
    """The worker's connection goes through a proxy that is cut after the batch's first wave was written."""
    flows.flow(chain("customer_created", ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("tag", {"type": "add_tag", "tag": "x", "next": None})))
    direct = connections["default"].settings_dict
    proxy = CuttableProxy(direct["HOST"] or "127.0.0.1", int(direct["PORT"] or 5432))
    cuts = []

    def resolver(reference, event):
        if not cuts:  # PostgreSQL "restarts" once, in the middle of the batch
            cuts.append(proxy.cut())
        return {"payload": {"attributes": {"tier": "gold"}}}

    resolvers.register("cut", resolver)
    with held():
        ids = [record(flows, "customer_created", email=f"p{n}@example.com", key=f"k{n}") for n in range(30)]
        # Jane's second event comes in the second wave, once the first wave's rows are written.
        ids.append(record(flows, "customer_created", email="jane@example.com", key="j1", minutes_ago=2))
        ids.append(record(flows, "profile_updated", email="jane@example.com", key="j2", minutes_ago=1,
                          payload={"$ref": {"source": "cut"}}))
    raised = []

    def worker():
        db = connections["default"]
        db.settings_dict = {**db.settings_dict, "PORT": str(proxy.port)}
        try:
            process_events(ids)
        except OperationalError as exc:
            raised.append(exc)
        finally:
            db.close()

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(60)
    proxy.close()
    assert len(raised) == 1
    assert Event.objects.filter(pk__in=ids, status="pending").count() == len(ids)
    assert Contact.objects.count() == 0 and Enrolment.objects.count() == 0 and TrailEntry.objects.count() == 0
    # The retry (or the sweep) processes all of them, once.
    process_events(ids)
    assert Event.objects.filter(pk__in=ids, status="processed").count() == len(ids)
    assert Enrolment.objects.count() == 31


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_in_the_middle_of_a_batch_loses_nothing_and_enrols_no_one_twice(flows):
    """A worker process dies (os._exit, as an OOM kill) after the batch's first wave was written."""
    flows.flow(chain("customer_created", ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("tag", {"type": "add_tag", "tag": "x", "next": None})))
    with held():
        ids = [record(flows, "customer_created", email=f"p{n}@example.com", key=f"k{n}") for n in range(30)]
        ids.append(record(flows, "customer_created", email="jane@example.com", key="j1", minutes_ago=2))
        ids.append(record(flows, "profile_updated", email="jane@example.com", key="j2", minutes_ago=1,
                          payload={"$ref": {"source": "die"}}))
    worker = (
        "import os, django; django.setup()\n"
        "from saleor_flows.engine import resolvers, processing\n"
        "resolvers.register('die', lambda reference, event: os._exit(17))\n"
        "processing.process_pending(1000)\n")
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tests.settings",
               DATABASE_URL="postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**django_settings.DATABASES["default"]))
    died = subprocess.run([sys.executable, "-c", worker], env=env, cwd=Path(__file__).resolve().parent.parent,
                          capture_output=True, text=True, timeout=120)
    assert died.returncode == 17, died.stderr
    assert Event.objects.filter(pk__in=ids, status="pending").count() == len(ids)
    assert Contact.objects.count() == 0 and Enrolment.objects.count() == 0 and TrailEntry.objects.count() == 0

    resolvers.register("die", lambda reference, event: {"payload": {"attributes": {"tier": "gold"}}})
    assert process_pending(1000) == len(ids)
    assert Event.objects.filter(pk__in=ids, status="processed").count() == len(ids)
    assert Enrolment.objects.count() == 31 and StepExecution.objects.count() == 31
    assert TrailEntry.objects.filter(kind="entered").count() == 31


def test_a_failure_no_event_can_be_blamed_for_retries_every_event_alone_in_order(flows):
    """A database error in a set-based write (a variant id too long for its column) fails the whole
    statement: the batch is rolled back and each event processed alone, so only the bad one is lost."""
    flows.flow(chain("customer_created", ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("tag", {"type": "add_tag", "tag": "x", "next": None})))
    with held():
        ids = [record(flows, "customer_created", email=f"p{n}@example.com", key=f"k{n}") for n in range(10)]
        bad = record(flows, "back_in_stock_requested", email="p3@example.com", key="bad", minutes_ago=5,
                     payload={"variant_id": "v" * 300})
    process_events([*ids, bad])
    dead = Event.objects.get(pk=bad)
    assert dead.status == "dead" and dead.error.startswith("processing failed: DataError")
    assert Event.objects.filter(pk__in=ids, status="processed").count() == 10
    assert Enrolment.objects.count() == 10
