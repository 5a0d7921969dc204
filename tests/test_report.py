"""The flow report: exact counts from a small flow fed with known contacts."""

from saleor_flows.engine.report import flow_summary, format_summary, graph_order
from saleor_flows.engine.runner import pick_variant
from saleor_flows.models import Enrolment

from .flowkit import email

WAIT_2D = {"type": "wait", "duration": {"days": 2}}


def _flow_definition():
    return {
        "trigger": {"event": "signed_up"},
        "kind": "marketing",
        "goal": {"history": "event", "event": "order_created", "since": "entered"},
        "exit": {"history": "event", "event": "opted_out", "since": "entered"},
        "start": "hello",
        "steps": {
            "hello": email("Hello", next="vip"),
            "vip": {"type": "split", "condition": {"field": "contact.attributes.vip", "op": "eq", "value": True},
                    "yes": "vip_wait", "no": "wait_2d"},
            "vip_wait": {"type": "wait", "duration": {"days": 1}, "next": "vip_mail"},
            "wait_2d": {**WAIT_2D, "next": "follow_up"},
            "vip_mail": email("Just for you"),
            "follow_up": email("Still there?"),
        },
    }


def test_flow_summary_counts(flows, django_assert_max_num_queries):
    flow = flows.flow(_flow_definition(), slug="report")
    flows.contact("vip@example.com", email_consent="subscribed", attributes={"vip": True})
    flows.contact("buyer@example.com")  # no consent: the first email is skipped
    flows.contact("leaver@example.com", email_consent="subscribed")
    flows.contact("plain@example.com", email_consent="subscribed")
    for address in ("vip@example.com", "buyer@example.com", "leaver@example.com", "plain@example.com"):
        flows.event("signed_up", email=address)
    flows.advance(hours=12)
    flows.event("order_created", email="buyer@example.com", payload={"total_gross_amount": "10.00", "currency": "USD"})
    flows.event("opted_out", email="leaver@example.com")
    flows.advance(days=3)

    with django_assert_max_num_queries(5):  # aggregates, whatever the number of contacts
        summary = flow_summary(flow)

    assert summary["entered"] == 4 and summary["contacts"] == 4
    assert summary["enrolments"] == {"active": 0, "completed": 2, "exited": 1, "converted": 1}
    assert summary["exit_reasons"] == {"exit_criteria": 1}
    assert summary["converted"] == 1
    assert summary["messages"] == {"sent": 5}
    steps = {step["id"]: step for step in summary["steps"]}
    assert [step["id"] for step in summary["steps"]] == [
        "hello", "vip", "vip_wait", "wait_2d", "vip_mail", "follow_up"]
    assert steps["hello"]["states"] == {"sent": 3, "skipped": 1}
    assert steps["hello"]["skip_reasons"] == {"no email marketing consent (never; policy opt_in)": 1}
    assert steps["hello"]["messages"] == {"sent": 3}
    assert steps["vip"]["branches"] == {"yes": 1, "no": 3}
    assert steps["vip_wait"]["states"] == {"done": 1}
    assert steps["wait_2d"]["states"] == {"done": 1, "skipped": 2}
    assert steps["wait_2d"]["skip_reasons"] == {"goal_reached": 1, "exit_criteria": 1}
    assert steps["vip_mail"]["states"] == {"sent": 1}
    assert steps["follow_up"]["states"] == {"sent": 1}

    text = format_summary(summary)
    assert "entered 4 · active 0 · completed 2 · converted 1 · exited 1 (exit_criteria 1)" in text
    assert "sent 3 · skipped 1 (no email marketing consent (never; policy opt_in) 1)" in text
    assert "yes 1" in text and "no 3" in text


def test_variants_and_wait_event_branches(flows):
    flow = flows.flow({
        "trigger": {"event": "go"}, "kind": "transactional", "reentry": {"mode": "always"},
        "start": "ab",
        "steps": {
            "ab": {"type": "random_split", "variants": [{"name": "A", "weight": 1, "next": "wait_paid"},
                                                        {"name": "B", "weight": 1, "next": "wait_paid"}]},
            "wait_paid": {"type": "wait_event", "event": "paid", "timeout": {"days": 1},
                          "next": "thanks", "timeout_next": None},
            "thanks": email("Thanks"),
        },
    })
    for n in range(6):
        flows.event("go", email=f"c{n}@example.com")
    flows.event("paid", email="c0@example.com")
    flows.event("paid", email="c1@example.com")
    flows.advance(days=2)

    summary = flow_summary(flow)
    steps = {step["id"]: step for step in summary["steps"]}
    expected = {}
    for enrolment_id in Enrolment.objects.filter(flow=flow).values_list("id", flat=True):
        name = pick_variant(enrolment_id, "ab", flow.live_version.definition["steps"]["ab"]["variants"])["name"]
        expected[name] = expected.get(name, 0) + 1
    assert steps["ab"]["variants"] == expected
    assert steps["wait_paid"]["branches"] == {"event": 2, "timeout": 4}
    assert steps["thanks"]["states"] == {"sent": 2}
    assert summary["enrolments"]["completed"] == 6
    assert "event 2, timeout 4" in format_summary(summary)


def test_graph_order_is_breadth_first_and_keeps_unreachable_steps():
    definition = {"start": "a", "steps": {
        "c": {"type": "wait", "duration": {"days": 1}, "next": None},
        "a": {"type": "split", "condition": {}, "yes": "b", "no": "c"},
        "b": {"type": "wait", "duration": {"days": 1}, "next": "c"},
        "orphan": {"type": "exit"},
    }}
    assert graph_order(definition) == ["a", "b", "c", "orphan"]
