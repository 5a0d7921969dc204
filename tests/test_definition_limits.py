"""Numbers and sizes in flow definitions (issue 11, items 8, 11 and 13).

Every number a definition holds is checked against a documented range when it is
validated, so nothing that overflows at run time goes live; and at run time a flow
whose stored definition fails anyway (saved by an older version, or a bug) is
isolated: its failure is recorded against it, the event still reaches the other
flows, and a step that raises ends as ``failed`` instead of staying ``claimed``.
"""

import time

import pytest

from saleor_flows import clock
from saleor_flows.engine.definition import MAX_STEPS, validate_definition
from saleor_flows.models import Contact, Enrolment, Event, Flow, FlowVersion, StepExecution

from .flowkit import chain, nxt

JANE = "jane@example.com"


def tag_step(tag="t"):
    return nxt({"type": "add_tag", "tag": tag})


def split(*weights):
    return {"type": "random_split", "variants": [
        {"name": f"v{i}", "weight": weight, "next": None} for i, weight in enumerate(weights)]}


# --- validation: every number in its range (item 8, item 13) -------------------------------

@pytest.mark.parametrize("change, problem", [
    ({"reentry": {"mode": "once_per_period", "days": 10**12}},
     "reentry.days: a positive number of days, at most 3660"),
    ({"reentry": {"mode": "once_per_period", "days": float("inf")}},
     "reentry.days: a positive number of days, at most 3660"),
    ({"reentry": {"mode": "once_per_period", "days": float("nan")}},
     "reentry.days: a positive number of days, at most 3660"),
    ({"steps": {"w": {"type": "wait", "duration": {"days": 10**6}, "next": None}}},
     "steps.w.duration: duration {'days': 1000000} is longer than 3660 days"),
    ({"steps": {"w": {"type": "wait", "duration": {"days": -1}, "next": None}}},
     "steps.w.duration: a duration must not be negative"),
    ({"steps": {"w": {"type": "wait_event", "event": "order_created", "timeout": {"weeks": 10**5},
                      "next": None, "timeout_next": None}}},
     "steps.w.timeout: duration {'weeks': 100000} is longer than 3660 days"),
    ({"steps": {"w": {"type": "wait_date", "date": "9999-12-31", "offset": {"days": 5}, "next": None}}},
     "steps.w.date: a date from 1970-01-01 to 2199-12-31"),
    ({"steps": {"w": {"type": "wait_date", "field": "contact.birthday", "offset": {"days": -10**5},
                      "next": None}}},
     "steps.w.offset: duration {'days': -100000} is longer than 3660 days"),
    ({"steps": {"s": split(1e308, 1e308)}}, "steps.s.variants[0].weight: a positive number up to 1000000"),
    ({"steps": {"s": split(1, 10**400)}}, "steps.s.variants[1].weight: a positive number up to 1000000"),
    ({"steps": {"s": split(1, float("inf"))}}, "steps.s.variants[1].weight: a positive number up to 1000000"),
    ({"steps": {"s": {**split(1, 1), "auto_winner": {"min_per_variant": 10**9}}}},
     "steps.s.auto_winner.min_per_variant: a whole number from 1 to 1000000"),
    ({"steps": {"s": split(*[1] * 101)}}, "steps.s.variants: from two to 100 {name, weight, next}"),
    ({"stale_after": {"days": 10**7}}, "stale_after: duration {'days': 10000000} is longer than 3660 days"),
    ({"holdout_percent": float("nan")},
     "holdout_percent: a number from 0 to 50 (the share of entrants kept out for comparison)"),
    ({"exit": {"field": "contact.last_order_at", "op": "within_last", "value": {"days": 10**8}}},
     "exit.value: duration {'days': 100000000} is longer than 36525 days"),
    ({"goal": {"history": "event", "event": "order_created", "min_count": 10**30}},
     "goal.min_count: expected a whole number from 1 to 1000000, got 1000000000000000000000000000000"),
])
def test_numbers_out_of_range_are_refused_with_the_range(change, problem):
    definition = {"trigger": {"event": "customer_created"}, "start": next(iter(change.get("steps", {"a": 0}))),
                  "steps": {"a": {"type": "exit"}}, **change}
    assert problem in validate_definition(definition)


def test_numbers_at_the_edges_of_their_ranges_are_accepted():
    definition = chain(
        "customer_created",
        ("w", nxt({"type": "wait", "duration": {"days": 3660}})),
        ("d", nxt({"type": "wait_date", "date": "2199-12-31", "offset": {"days": -3660}})),
        ("s", {**split(0.5, 1_000_000), "auto_winner": {"min_per_variant": 1_000_000}}),
        reentry={"mode": "once_per_period", "days": 3660}, holdout_percent=50, stale_after={"days": 3660},
        exit={"history": "message", "action": "sent", "since": {"days": 36_525}, "min_count": 1_000_000})
    assert validate_definition(definition) == []


# --- counts before walks (item 11) -----------------------------------------------------------

def test_thousands_of_steps_are_counted_before_anything_walks_them():
    definition = chain("customer_created", *[(f"s{i}", tag_step()) for i in range(5_000)])
    started = time.perf_counter()
    assert validate_definition(definition) == [f"steps: at most {MAX_STEPS} steps (got 5000)"]
    assert time.perf_counter() - started < 1  # no per-step template work either


def test_the_graph_check_walks_the_longest_allowed_chain_without_recursing():
    steps = [(f"s{i}", tag_step()) for i in range(MAX_STEPS - 1)] + [("back", {"type": "add_tag", "tag": "t",
                                                                                  "next": "s0"})]
    errors = validate_definition(chain("customer_created", *steps))
    assert len(errors) == 1 and errors[0].startswith("steps.back: leads back to 's0', making a loop (s0 -> s1 -> ")


def test_malformed_targets_are_reported_not_raised():
    definition = chain("customer_created", ("a", {"type": "add_tag", "tag": "t", "next": ["b"]}),
                       ("s", {"type": "random_split", "variants": [{"name": ["x"], "weight": 1, "next": None},
                                                                   {"name": {"y": 1}, "weight": 1, "next": None}]}))
    errors = validate_definition(definition)
    assert "steps.a: leads to unknown step ['b']" in errors
    assert "steps.s.variants: each variant needs a unique name" in errors


# --- run time: one flow cannot stop the others (item 8) --------------------------------------

def stored_live_flow(slug, definition):
    """A live flow whose version was stored without validation (saved by an older version)."""
    now = clock.now()
    flow = Flow.objects.create(slug=slug, name=slug, definition=definition, status=Flow.Status.LIVE,
                               trigger_event=definition["trigger"]["event"], created_at=now, updated_at=now)
    frozen = {"kind": "marketing", **definition,
              "steps": {step_id: {**step, "id": step_id} for step_id, step in definition["steps"].items()}}
    flow.live_version = FlowVersion.objects.create(flow=flow, number=1, definition=frozen, published_at=now)
    flow.save(update_fields=["live_version"])
    return flow


def test_a_flow_that_fails_to_decide_does_not_stop_a_healthy_flow_on_the_same_trigger(flows):
    stored_live_flow("broken", chain("customer_created", ("tag", {"type": "add_tag", "tag": "broken", "next": None}),
                                     reentry={"mode": "once_per_period", "days": 10**12}))
    flows.flow(chain("customer_created", ("tag", {"type": "add_tag", "tag": "welcomed", "next": None})),
               slug="healthy")

    event = flows.event("customer_created", email=JANE)

    assert Event.objects.get(pk=event.id).status == Event.Status.PROCESSED
    assert Contact.objects.get(email=JANE).tags == ["welcomed"]
    assert [(e.flow.slug, e.status) for e in flows.enrolments(JANE)] == [("healthy", "completed")]
    failure = next(entry for entry in flows.trail(JANE) if entry.kind == "flow_failed")
    assert failure.detail["flow"] == "broken" and failure.detail["event_id"] == event.id
    assert failure.detail["error"].startswith("OverflowError")


def test_a_waiting_step_that_fails_to_decide_does_not_stop_the_event_reaching_other_flows(flows):
    stored_live_flow("waits", chain("checkout_started", ("w", {
        "type": "wait_event", "event": "payment_received", "correlate": 5, "timeout": {"days": 1},
        "next": None, "timeout_next": None})))
    flows.flow(chain("payment_received", ("tag", {"type": "add_tag", "tag": "paid", "next": None})), slug="paid")
    flows.event("checkout_started", email=JANE)

    event = flows.event("payment_received", email=JANE)

    assert Event.objects.get(pk=event.id).status == Event.Status.PROCESSED
    assert Contact.objects.get(email=JANE).tags == ["paid"]
    waiting = Enrolment.objects.get(flow__slug="waits")
    failure = next(entry for entry in flows.trail(JANE) if entry.kind == "flow_failed")
    assert (failure.enrolment_id, failure.step_id, failure.detail["event_id"]) == (waiting.pk, "w", event.id)
    assert failure.detail["error"].startswith("TypeError")
    assert StepExecution.objects.get(enrolment=waiting).state == StepExecution.State.PENDING  # its timeout still holds


# --- run time: a step that raises ends failed, never claimed (item 13) ----------------------

def test_a_step_that_raises_is_failed_with_its_reason_and_the_journey_ends(flows):
    stored_live_flow("ab", chain("customer_created", ("ab", split(1, 10**400))))
    flows.flow(chain("customer_created", ("tag", {"type": "add_tag", "tag": "welcomed", "next": None})),
               slug="healthy")

    flows.event("customer_created", email=JANE)

    execution = StepExecution.objects.get(enrolment__flow__slug="ab")
    assert execution.state == StepExecution.State.FAILED
    assert execution.result["error"].startswith("OverflowError")
    enrolment = Enrolment.objects.get(flow__slug="ab")
    assert (enrolment.status, enrolment.exit_reason) == ("exited", "step_failed")
    kinds = [(entry.kind, entry.step_id) for entry in flows.trail(JANE) if entry.enrolment_id == enrolment.pk]
    assert kinds == [("entered", ""), ("failed", "ab"), ("exited", "")]
    assert Contact.objects.get(email=JANE).tags == ["welcomed"]
    # Nothing is left for the sweep to retry forever.
    flows.advance(hours=1)
    assert not StepExecution.objects.filter(state=StepExecution.State.CLAIMED).exists()
