"""The engine end to end on PostgreSQL, through the FlowTester harness."""

from datetime import datetime, timezone

import pytest
from django.core import mail

from saleor_flows.engine.definition import DefinitionError, set_status, update_draft
from saleor_flows.models import Contact, Enrolment, Event, Message, StepExecution

from .flowkit import chain, email, nxt

JANE = "jane@example.com"


def subscribed(flows, address=JANE, **fields):
    return flows.contact(address, email_consent="subscribed", first_name="Jane", **fields)


# --- events -------------------------------------------------------------------------

def test_event_recorded_twice_with_same_key_enrols_and_sends_once(flows):
    subscribed(flows)
    flows.flow(chain("signed_up", ("hi", email("Welcome"))))
    first = flows.event("signed_up", email=JANE, dedupe_key="signup:1")
    second = flows.event("signed_up", email=JANE, dedupe_key="signup:1")
    assert first.id is not None and second.duplicate
    assert Event.objects.count() == 1
    assert [m.subject for m in flows.emails_to(JANE)] == ["Welcome"]


def test_email_is_normalized_and_identity_linked(flows):
    flows.event("customer_created", email="  Jane@Example.COM ", user_id="VXNlcjo0OA==",
                payload={"first_name": "Jane", "language_code": "de"})
    flows.event("customer_updated", user_id="VXNlcjo0OA==", payload={"last_name": "Doe"})
    contact = Contact.objects.get()
    assert (contact.email, contact.user_id, contact.first_name, contact.last_name, contact.locale) == (
        JANE, "VXNlcjo0OA==", "Jane", "Doe", "de")


@pytest.mark.parametrize("kwargs, reason", [
    ({"payload": {"x": 1}}, "no contact identity"),
    ({"email": "not-an-address", "payload": {}}, "is not a valid address"),
    ({"email": JANE, "payload": {"currency": "USD"}}, "missing 'total_gross_amount'"),
    ({"email": JANE, "payload": {"total_gross_amount": "abc", "currency": "USD"}}, "invalid 'total_gross_amount'"),
])
def test_bad_events_are_dead_lettered_with_a_reason(flows, kwargs, reason):
    flows.event("order_created", **kwargs)
    (dead,) = flows.dead_events()
    assert reason in dead.error
    assert dead.payload == kwargs["payload"]  # kept as it came, nothing lost


def test_unserializable_payload_is_kept_and_dead_lettered(flows):
    flows.event("custom", email=JANE, payload={"when": object()})
    (dead,) = flows.dead_events()
    assert "not JSON-serializable" in dead.error and "unserializable" in dead.payload


def test_order_updates_profile(flows):
    for number, total in [(1, "40.00"), (2, "15.50")]:
        flows.event("order_created", email=JANE, dedupe_key=f"order:{number}",
                    payload={"total_gross_amount": total, "currency": "EUR", "billing_address": {"first_name": "Jane"}})
        flows.advance(days=1)
    contact = Contact.objects.get(email=JANE)
    assert contact.order_count == 2
    assert str(contact.total_spent) == "55.50"
    assert contact.currency == "EUR" and contact.first_name == "Jane"
    assert contact.first_order_at < contact.last_order_at


# --- flows, versions, validation ----------------------------------------------------------

def test_validation_names_the_step(flows):
    broken = chain(
        "signed_up",
        ("hi", email("Hi {{ contact.frist_name }}", next="split")),
        ("split", {"type": "split", "condition": {"field": "contact.order_count", "op": "gt", "value": "x"}, "yes": None}),
        ("orphan", email("never reached")),
    )
    with pytest.raises(DefinitionError) as error:
        flows.flow(broken)
    text = "\n".join(error.value.errors)
    assert "steps.hi.subject: unknown variable 'contact.frist_name'" in text
    assert "steps.split.no: missing" in text
    assert "steps.split.condition" in text and "number" in text
    assert "steps.orphan: unreachable" in text


def test_loops_are_rejected(flows):
    looping = chain("x", ("a", {"type": "wait", "duration": {"hours": 1}, "next": "b"}),
                    ("b", {"type": "wait", "duration": {"hours": 1}, "next": "a"}))
    with pytest.raises(DefinitionError, match="making a loop"):
        flows.flow(looping)


def test_two_hundred_steps(flows):
    subscribed(flows)
    steps = [(f"tag_{i}", nxt({"type": "add_tag", "tag": f"t{i}"})) for i in range(199)]
    flows.flow(chain("go", *steps, ("done", email("Done"))))
    flows.event("go", email=JANE)
    assert len(Contact.objects.get().tags) == 199
    assert [m.subject for m in flows.emails_to(JANE)] == ["Done"]


def test_running_contacts_keep_their_version(flows):
    subscribed(flows)
    subscribed(flows, "max@example.com")
    v1 = chain("go", ("wait", nxt({"type": "wait", "duration": {"days": 1}})), ("mail", email("Version one")))
    flow = flows.flow(v1)
    flows.event("go", email=JANE)
    v2 = chain("go", ("wait", nxt({"type": "wait", "duration": {"days": 1}})), ("mail", email("Version two")))
    flows.republish(flow, v2)
    flows.event("go", email="max@example.com")
    flows.advance(days=1)
    assert [m.subject for m in flows.emails_to(JANE)] == ["Version one"]
    assert [m.subject for m in flows.emails_to("max@example.com")] == ["Version two"]
    assert sorted(e.version.number for e in Enrolment.objects.all()) == [1, 2]


def test_editing_the_draft_changes_nothing_until_published(flows):
    subscribed(flows)
    flow = flows.flow(chain("go", ("mail", email("Published"))))
    update_draft(flow, chain("go", ("mail", email("Draft only"))))
    flows.event("go", email=JANE)
    assert [m.subject for m in flows.emails_to(JANE)] == ["Published"]


def test_paused_flow_takes_no_one_and_holds_running_contacts(flows):
    subscribed(flows)
    subscribed(flows, "max@example.com")
    flow = flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})), ("mail", email("Later"))))
    flows.event("go", email=JANE)
    set_status(flow, "paused")
    flows.event("go", email="max@example.com")
    flows.advance(hours=2)
    assert mail.outbox == [] and Enrolment.objects.count() == 1
    set_status(flow, "live")
    flows.advance(minutes=15)
    assert [m.subject for m in flows.emails_to(JANE)] == ["Later"]


# --- re-entry rules -------------------------------------------------------------------------

@pytest.mark.parametrize("reentry, expected", [
    ({"mode": "once"}, 1),
    ({"mode": "always"}, 3),
    ({"mode": "once_per_period", "days": 2}, 2),  # days 0 and 2 (day 1 is inside the period)
    ({"mode": "single_active"}, 2),  # day 0 journey lasts 36 h: day 1 is blocked, day 2 enters
])
def test_reentry_rules(flows, reentry, expected):
    subscribed(flows)
    flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 36}})), ("mail", email("Hi")),
                     reentry=reentry))
    for day in range(3):
        flows.event("go", email=JANE)
        flows.advance(days=1)
    flows.advance(days=2)
    assert Enrolment.objects.count() == expected
    assert len(flows.emails_to(JANE)) == expected


# --- steps ---------------------------------------------------------------------------------

def test_wait_duration_sends_after_the_delay_not_before(flows):
    subscribed(flows)
    flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"hours": 4}})), ("mail", email("After 4h"))))
    flows.event("go", email=JANE)
    flows.advance(hours=3, minutes=59)
    assert mail.outbox == []
    flows.advance(minutes=1)
    assert [m.subject for m in mail.outbox] == ["After 4h"]
    assert StepExecution.objects.get(step_id="mail").state == "sent"


def test_wait_until_time_and_weekday_in_contact_timezone(flows):
    subscribed(flows, timezone="America/New_York")
    flows.flow(chain("go", ("wait", nxt({"type": "wait_until", "time": "10:00", "weekdays": ["wed"]})),
                     ("mail", email("Wednesday 10am"))))
    flows.event("go", email=JANE)  # Monday 2026-01-05 09:00 UTC = 04:00 New York
    wait = StepExecution.objects.get(step_id="wait")
    assert wait.due_at == datetime(2026, 1, 7, 15, 0, tzinfo=timezone.utc)  # Wed 10:00 EST
    flows.travel_to(datetime(2026, 1, 7, 14, 59, tzinfo=timezone.utc))
    assert mail.outbox == []
    flows.travel_to(datetime(2026, 1, 7, 15, 0, tzinfo=timezone.utc))
    assert len(mail.outbox) == 1


def test_wait_until_keeps_wall_time_across_dst(flows):
    subscribed(flows, timezone="Europe/Berlin")
    flows.flow(chain("go", ("wait", nxt({"type": "wait_until", "time": "09:00", "weekdays": ["mon"]})),
                     ("mail", email("Monday"))))
    flows.travel_to(datetime(2026, 3, 24, 12, 0, tzinfo=timezone.utc))  # Tuesday before DST starts (Mar 29)
    flows.event("go", email=JANE)
    assert StepExecution.objects.get(step_id="wait").due_at == datetime(2026, 3, 30, 7, 0, tzinfo=timezone.utc)


def test_wait_date_from_field_with_offset(flows):
    subscribed(flows, attributes={"birthday": "2026-02-10"})
    flows.flow(chain("go", ("wait", nxt({"type": "wait_date", "field": "contact.attributes.birthday",
                                         "offset": {"days": -1}, "time": "09:00"})),
                     ("mail", email("Tomorrow is your day"))))
    flows.event("go", email=JANE)
    assert StepExecution.objects.get(step_id="wait").due_at == datetime(2026, 2, 9, 9, 0, tzinfo=timezone.utc)


def test_wait_date_in_the_past_continues_at_once(flows):
    subscribed(flows)
    flows.flow(chain("go", ("wait", nxt({"type": "wait_date", "date": "2025-01-01"})), ("mail", email("Now"))))
    flows.event("go", email=JANE)
    assert len(mail.outbox) == 1


def _wait_event_flow():
    return chain(
        "checkout_abandoned",
        ("wait", {"type": "wait_event", "event": "order_created", "timeout": {"days": 2},
                  "filter": {"field": "event.total_gross_amount", "op": "gte", "value": 10},
                  "next": "thanks", "timeout_next": "nudge"}),
        ("thanks", email("Thanks for ordering")),
        ("nudge", email("Still thinking?")),
        kind="transactional",
    )


def test_wait_event_takes_the_event_branch(flows):
    flows.flow(_wait_event_flow())
    flows.event("checkout_abandoned", email=JANE, payload={"lines": []})
    flows.advance(hours=1)
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "5.00", "currency": "USD"})
    assert mail.outbox == []  # filtered out: too small
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "50.00", "currency": "USD"})
    assert [m.subject for m in mail.outbox] == ["Thanks for ordering"]
    flows.advance(days=3)
    assert len(mail.outbox) == 1


def test_wait_event_times_out(flows):
    flows.flow(_wait_event_flow())
    flows.event("checkout_abandoned", email=JANE, payload={"lines": []})
    flows.advance(days=2)
    assert [m.subject for m in mail.outbox] == ["Still thinking?"]
    assert "wait_timed_out" in flows.trail_kinds(JANE)


def test_split_records_the_values_that_decided(flows):
    subscribed(flows, order_count=3)
    flows.flow(chain("go", ("vip", {"type": "split", "condition": {"field": "contact.order_count", "op": "gte", "value": 2},
                                    "yes": "loyal", "no": "new"}),
                     ("loyal", email("Thanks for coming back")), ("new", email("Welcome"))))
    flows.event("go", email=JANE)
    assert [m.subject for m in mail.outbox] == ["Thanks for coming back"]
    branch = next(e for e in flows.trail(JANE) if e.kind == "branch")
    assert branch.detail == {"branch": "yes", "facts": {"contact.order_count": 3}}


def test_multi_branch_first_true_wins_else_otherwise(flows):
    for address, spent in [("a@example.com", 500), ("b@example.com", 50), ("c@example.com", 0)]:
        subscribed(flows, address, total_spent=spent)
    flows.flow(chain("go", ("tier", {"type": "branch", "branches": [
        {"condition": {"field": "contact.total_spent", "op": "gte", "value": 100}, "next": "gold"},
        {"condition": {"field": "contact.total_spent", "op": "gt", "value": 0}, "next": "silver"}],
        "else": "bronze"}), ("gold", email("Gold")), ("silver", email("Silver")), ("bronze", email("Bronze"))))
    for address in ["a@example.com", "b@example.com", "c@example.com"]:
        flows.event("go", email=address)
    assert [(m.to[0], m.subject) for m in mail.outbox] == [
        ("a@example.com", "Gold"), ("b@example.com", "Silver"), ("c@example.com", "Bronze")]


def test_random_split_follows_weights(flows):
    flows.flow(chain("go", ("ab", {"type": "random_split", "variants": [
        {"name": "A", "weight": 80, "next": "a"}, {"name": "B", "weight": 20, "next": "b"}]}),
        ("a", {"type": "add_tag", "tag": "saw-a", "next": None}), ("b", {"type": "add_tag", "tag": "saw-b", "next": None})))
    for i in range(500):
        flows.event("go", email=f"p{i}@example.com")
    share_a = Contact.objects.filter(tags__contains=["saw-a"]).count() / 500
    assert 0.74 < share_a < 0.86
    assert Contact.objects.filter(tags__contains=["saw-b"]).count() == 500 - round(share_a * 500)


def test_contact_actions(flows):
    subscribed(flows, tags=["old"], lists=["news"])
    flows.flow(chain("go",
                     ("t1", nxt({"type": "add_tag", "tag": "vip"})), ("t2", nxt({"type": "remove_tag", "tag": "old"})),
                     ("l1", nxt({"type": "add_to_list", "list": "winback"})),
                     ("l2", nxt({"type": "remove_from_list", "list": "news"})),
                     ("f1", nxt({"type": "set_field", "field": "segment", "value": "gold"})),
                     ("check", {"type": "split", "condition": {"all": [{"has_tag": "vip"}, {"in_list": "winback"},
                                {"field": "contact.attributes.segment", "op": "eq", "value": "gold"}]},
                                "yes": "mail", "no": None}),
                     ("mail", email("All set"))))
    flows.event("go", email=JANE)
    contact = Contact.objects.get()
    assert (contact.tags, contact.lists, contact.attributes) == (["vip"], ["winback"], {"segment": "gold"})
    assert len(mail.outbox) == 1


def test_exit_step_ends_the_journey(flows):
    subscribed(flows)
    flows.flow(chain("go", ("out", {"type": "exit"})))
    flows.event("go", email=JANE)
    assert Enrolment.objects.get().status == "exited" and Enrolment.objects.get().exit_reason == "exit_step"


def test_notify_staff(flows, settings):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "STAFF_NOTIFY_RECIPIENTS": ["Owner@shop.example"]}
    flows.contact(JANE, first_name="Jane")  # no consent needed: it goes to staff
    flows.flow(chain("vip_signup", ("tell", {"type": "notify_staff", "to": ["owner@shop.example"],
                                             "subject": "New VIP: {{ contact.email }}",
                                             "body": "{{ contact.first_name }} joined.", "next": None})))
    flows.event("vip_signup", email=JANE)
    (message,) = mail.outbox
    assert message.to == ["owner@shop.example"]
    assert message.subject == "New VIP: jane@example.com" and "Jane joined." in message.body


def test_send_sms(flows):
    from saleor_flows.channels.sms import locmem

    locmem.outbox.clear()
    flows.contact(JANE, phone="+4915112345678", sms_consent="subscribed", first_name="Jane")
    flows.flow(chain("go", ("sms", {"type": "send_sms", "body": "Hi {{ contact.first_name }}, your cart is waiting",
                                    "next": None})))
    flows.event("go", email=JANE)
    (sms,) = locmem.outbox
    assert (sms.to, sms.body) == ("+4915112345678", "Hi Jane, your cart is waiting")
    assert Message.objects.get().channel == "sms"


# --- re-checks before acting ----------------------------------------------------------------

def test_marketing_needs_consent_and_the_skip_says_why(flows):
    flows.contact(JANE)
    flows.flow(chain("go", ("mail", nxt(email("Promo"))), ("tag", {"type": "add_tag", "tag": "reached-end", "next": None})))
    flows.event("go", email=JANE)
    assert mail.outbox == []
    skip = next(e for e in flows.trail(JANE) if e.kind == "skipped")
    assert skip.detail["reason"] == "no email marketing consent (never; policy opt_in)"
    assert Contact.objects.get().tags == ["reached-end"]  # a skip never strands the contact


def test_transactional_needs_no_consent_but_respects_bounces(flows):
    from saleor_flows.engine.suppression import suppress

    for address in (JANE, "bounced@example.com", "complained@example.com"):
        flows.contact(address)
    suppress("email", "bounced@example.com", "hard_bounce", source="test")
    suppress("email", "complained@example.com", "complaint", source="test")
    flows.flow(chain("go", ("mail", email("Receipt")), kind="transactional"))
    for address in (JANE, "bounced@example.com", "complained@example.com"):
        flows.event("go", email=address)
    # A complaint about marketing never blocks a receipt; an address that bounces gets nothing.
    assert [m.to for m in mail.outbox] == [[JANE], ["complained@example.com"]]
    skip = next(e for e in flows.trail("bounced@example.com") if e.kind == "skipped")
    assert skip.detail["reason"] == "suppressed (hard_bounce)"


def test_unsubscribe_during_a_wait_stops_later_marketing(flows):
    subscribed(flows)
    flows.flow(chain("go", ("one", nxt(email("One"))), ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("two", email("Two"))))
    flows.event("go", email=JANE)
    flows.event("consent_updated", email=JANE, payload={"channel": "email", "status": "unsubscribed", "source": "api"})
    flows.advance(days=1)
    assert [m.subject for m in mail.outbox] == ["One"]


def test_exit_criteria_stop_the_journey_when_the_event_arrives(flows):
    subscribed(flows)
    flows.flow(chain("checkout_abandoned", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})),
                     ("mail", email("Come back")),
                     exit={"history": "event", "event": "order_created", "since": "entered"}))
    flows.event("checkout_abandoned", email=JANE, payload={"lines": []})
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "10", "currency": "USD"})
    flows.advance(hours=2)
    assert mail.outbox == []
    enrolment = Enrolment.objects.get()
    assert (enrolment.status, enrolment.exit_reason) == ("exited", "exit_criteria")
    assert StepExecution.objects.get(step_id="wait").state == "skipped"


def test_order_recorded_but_not_yet_processed_still_stops_the_send(flows):
    """The order event is in the table (its task has not run) when the reminder falls due."""
    from saleor_flows.engine import dispatch

    subscribed(flows)
    flows.flow(chain("checkout_abandoned", ("wait", nxt({"type": "wait", "duration": {"hours": 1}})),
                     ("mail", email("Come back")),
                     exit={"history": "event", "event": "order_created", "since": "entered"}))
    flows.event("checkout_abandoned", email=JANE, payload={"lines": []})
    flows.advance(minutes=59, seconds=59)
    with dispatch.forced("celery"):  # recorded, enqueued on commit, not processed here
        flows.event("order_created", email=JANE, payload={"total_gross_amount": "10", "currency": "USD"})
    assert Event.objects.get(name="order_created").status == "pending"
    flows.advance(seconds=1)
    assert mail.outbox == []
    assert Enrolment.objects.get().exit_reason == "exit_criteria"


def test_goal_converts(flows):
    subscribed(flows)
    flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"days": 1}})), ("mail", email("Nudge")),
                     goal={"field": "contact.order_count", "op": "gte", "value": 1}))
    flows.event("go", email=JANE)
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "10", "currency": "USD"})
    assert Enrolment.objects.get().status == "converted"


def test_entry_filter_is_rechecked_before_send(flows):
    subscribed(flows, tags=["prospect"])
    flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"days": 1}})), ("mail", email("Hi prospect")),
                     trigger={"event": "go", "filter": {"has_tag": "prospect"}}))
    flows.event("go", email=JANE)
    Contact.objects.filter(email=JANE).update(tags=[])
    flows.advance(days=1)
    assert mail.outbox == []
    assert Enrolment.objects.get().exit_reason == "filter_no_longer_matches"


def test_entry_filter_not_matching_is_explained(flows):
    subscribed(flows)
    flows.flow(chain("checkout_abandoned", ("mail", email("Cart")),
                     trigger={"event": "checkout_abandoned", "filter": {"field": "event.total_gross_amount", "op": "gte", "value": 20}}))
    flows.event("checkout_abandoned", email=JANE, payload={"lines": [], "total_gross_amount": "12.00"})
    (entry,) = flows.trail(JANE)
    assert entry.kind == "not_entered"
    assert entry.detail["facts"] == {"event.total_gross_amount": "12.00"}


def test_why_trail_tells_the_story(flows):
    subscribed(flows)
    flows.flow(chain("go", ("one", nxt(email("One"))), ("wait", nxt({"type": "wait", "duration": {"days": 1}})),
                     ("two", email("Two"))), slug="story")
    flows.event("go", email=JANE)
    flows.advance(days=1)
    assert flows.trail_kinds(JANE) == ["entered", "sent", "waiting", "sent", "completed"]
    story = flows.why(JANE)
    assert "story/one sent" in story and "subject='One'" in story and "story completed" in story


def test_dead_letters_can_be_listed_and_retried(flows):
    from io import StringIO

    from django.core.management import call_command

    subscribed(flows)
    flows.flow(chain("order_created", ("mail", email("Thanks"))))
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "oops", "currency": "USD"})
    listing = StringIO()
    call_command("flows_deadletters", stdout=listing)
    assert "invalid 'total_gross_amount'" in listing.getvalue() and "1 dead event(s)" in listing.getvalue()
    (dead,) = flows.dead_events()
    dead.payload["total_gross_amount"] = "12.00"  # the sender's bug is fixed and the data corrected
    dead.save()
    call_command("flows_deadletters", "--retry", str(dead.pk), stdout=StringIO())
    assert [m.subject for m in flows.emails_to(JANE)] == ["Thanks"]
    assert flows.dead_events() == []


def test_customer_deleted_erases_the_person_and_keeps_a_hashed_suppression(flows):
    import hashlib

    from saleor_flows.models import Suppression, TrailEntry

    subscribed(flows, attributes={"birthday": "1990-02-10"})
    flows.flow(chain("go", ("mail", email("Hi"))))
    flows.event("go", email=JANE, payload={"secret": "jane's data"})
    flows.event("customer_deleted", email=JANE, payload={"email": JANE})
    assert not Contact.objects.exists() and not TrailEntry.objects.exists() and not Enrolment.objects.exists()
    assert not Event.objects.filter(email=JANE).exists()
    assert all(e.payload == {} for e in Event.objects.all())
    (message,) = Message.objects.all()  # the send is still counted, anonymized
    assert (message.to, message.subject, message.contact_id) == ("", "", None)
    (suppression,) = Suppression.objects.all()
    assert (suppression.channel, suppression.address_hash) == ("email", hashlib.sha256(JANE.encode()).hexdigest())
    # A stale event about the erased address creates a suppressed contact: no marketing.
    flows.event("go", email=JANE)
    assert Contact.objects.get().suppressed_reason == "erased"
    assert len(flows.outbox) == 1


def test_consent_from_an_edge_is_recorded_with_its_source(flows):
    flows.event("customer_updated", email=JANE, payload={"consent": {"email": "subscribed", "source": "saleor_user_metadata"}})
    contact = Contact.objects.get()
    assert (contact.email_consent, contact.email_consent_source) == ("subscribed", "saleor_user_metadata")
    assert contact.email_consent_at == flows.now


def test_reference_events_are_resolved_by_their_edge_in_the_worker(flows):
    from saleor_flows.engine import resolvers

    def shop(reference, event):  # an edge's resolver: loads the object the hook only referred to
        return {"payload": {"number": int(reference["pk"]), "total_gross_amount": "12.50", "currency": "EUR"},
                "email": "jane@example.com"}

    resolvers.register("test-shop", shop)
    subscribed(flows)
    flows.flow(chain("order_created", ("mail", email("Order {{ event.number }}"))))
    flows.event("order_created", payload={"$ref": {"source": "test-shop", "pk": "42"}}, user_id="u-1")
    assert [m.subject for m in flows.emails_to(JANE)] == ["Order 42"]
    stored = Event.objects.get(name="order_created")
    assert stored.payload["total_gross_amount"] == "12.50" and stored.email == JANE


def test_reference_without_a_resolver_is_dead_lettered(flows):
    flows.event("order_created", email=JANE, payload={"$ref": {"source": "nowhere", "pk": "1"}})
    (dead,) = flows.dead_events()
    assert dead.error == "could not resolve the recorded reference: no resolver for 'nowhere' events in this process"


def test_wait_event_correlates_with_its_own_trigger(flows):
    """Fulfilling order A moves order A's journey, not order B's."""
    flows.flow(chain("order_fully_paid",
                     ("wait", {"type": "wait_event", "event": "order_fulfilled", "correlate": ["id"],
                               "timeout": {"days": 14}, "next": "shipped", "timeout_next": None}),
                     ("shipped", email("Order {{ event.number }} is on its way")), kind="transactional",
                     reentry={"mode": "always"}))
    for order in ("A", "B"):
        flows.event("order_fully_paid", email=JANE, payload={"id": order, "number": order}, dedupe_key=f"paid:{order}")
    flows.event("order_fulfilled", email=JANE, payload={"id": "A", "number": "A"})
    assert [m.subject for m in flows.emails_to(JANE)] == ["Order A is on its way"]
    waits = {e.enrolment.trigger_event.payload["id"]: e.state for e in StepExecution.objects.filter(step_id="wait")}
    assert waits == {"A": "done", "B": "pending"}


def test_correlate_must_be_a_list_of_paths(flows):
    with pytest.raises(DefinitionError, match="steps.wait.correlate"):
        flows.flow(chain("x", ("wait", {"type": "wait_event", "event": "y", "correlate": "id", "timeout": {"days": 1},
                                        "next": None, "timeout_next": None})))


def test_identical_goal_and_exit_are_evaluated_once(flows, django_assert_max_num_queries):
    from saleor_flows.engine.criteria import check_exit

    subscribed(flows)
    same = {"history": "event", "event": "order_created", "since": "entered"}
    flows.flow(chain("go", ("wait", nxt({"type": "wait", "duration": {"days": 1}})), ("mail", email("Hi")),
                     goal=same, exit=same))
    flows.event("go", email=JANE)
    enrolment = Enrolment.objects.select_related("trigger_event").get()
    contact = Contact.objects.get()
    with django_assert_max_num_queries(1):  # one COUNT for the shared question, not two
        assert check_exit(enrolment, contact, flows.now) is None
