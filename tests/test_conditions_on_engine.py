"""Every condition operator deciding a real split, through the engine on PostgreSQL.

(The language itself is tested exhaustively without a database in test_conditions.py;
this shows each operator wired end to end: profile and payload data as the engine
stores them, history answered by SQL.)
"""


import pytest

from saleor_flows.models import Message, StepExecution

from .flowkit import chain, email

JANE = "jane@example.com"
PAYLOAD = {"total_gross_amount": "40.00", "currency": "USD", "channel": "eu", "skus": ["A1", "B2"],
           "created": "2026-01-04T09:00:00+00:00", "coupon": None}


def _branch_taken(flows, condition, **contact):
    flows.contact(JANE, email_consent="subscribed", **contact)
    flows.flow(chain("go", ("check", {"type": "split", "condition": condition, "yes": None, "no": None})))
    flows.event("go", email=JANE, payload=PAYLOAD)
    return StepExecution.objects.get(step_id="check").result["branch"]


@pytest.mark.parametrize("condition, contact, expected", [
    ({"field": "contact.first_name", "op": "eq", "value": "Jane"}, {"first_name": "Jane"}, "yes"),
    ({"field": "contact.first_name", "op": "ne", "value": "Jane"}, {"first_name": "Jane"}, "no"),
    ({"field": "event.total_gross_amount", "op": "gt", "value": 39.99}, {}, "yes"),
    ({"field": "event.total_gross_amount", "op": "gte", "value": 40}, {}, "yes"),
    ({"field": "event.total_gross_amount", "op": "lt", "value": 40}, {}, "no"),
    ({"field": "event.total_gross_amount", "op": "lte", "value": 40}, {}, "yes"),
    ({"field": "event.channel", "op": "in", "value": ["eu", "uk"]}, {}, "yes"),
    ({"field": "event.channel", "op": "not_in", "value": ["eu", "uk"]}, {}, "no"),
    ({"field": "event.skus", "op": "contains", "value": "B2"}, {}, "yes"),
    ({"field": "contact.tags", "op": "not_contains", "value": "vip"}, {"tags": ["new"]}, "yes"),
    ({"field": "contact.phone", "op": "exists"}, {"phone": "+4915112345678"}, "yes"),
    ({"field": "event.coupon", "op": "not_exists"}, {}, "yes"),
    ({"field": "event.created", "op": "within_last", "value": {"days": 2}}, {}, "yes"),
    ({"field": "event.created", "op": "older_than", "value": {"days": 2}}, {}, "no"),
    ({"field": "contact.attributes.renewal", "op": "within_next", "value": {"days": 7}},
     {"attributes": {"renewal": "2026-01-09"}}, "yes"),
    ({"field": "event.created", "op": "before", "value": "2026-01-05"}, {}, "yes"),
    ({"field": "event.created", "op": "after", "value": "2026-01-05"}, {}, "no"),
    ({"all": [{"has_tag": "vip"}, {"in_list": "news"}]}, {"tags": ["vip"], "lists": ["news"]}, "yes"),
    ({"any": [{"has_tag": "vip"}, {"in_list": "news"}]}, {"tags": [], "lists": []}, "no"),
    ({"not": {"has_tag": "vip"}}, {"tags": []}, "yes"),
])
def test_operator_decides_the_split(flows, condition, contact, expected):
    assert _branch_taken(flows, condition, **contact) == expected


def _history_flow(condition):
    return chain("go", ("wait", {"type": "wait", "duration": {"days": 1}, "next": "check"}),
                 ("check", {"type": "split", "condition": condition, "yes": None, "no": None}))


@pytest.mark.parametrize("later_events, expected", [([], "no"), ([("order_created", {"total_gross_amount": "9", "currency": "USD"})], "yes")])
def test_placed_an_order_since_entering(flows, later_events, expected):
    flows.contact(JANE)
    flows.event("order_created", email=JANE, payload={"total_gross_amount": "5", "currency": "USD"})  # before entering
    flows.advance(hours=1)
    flows.flow(_history_flow({"history": "event", "event": "order_created", "since": "entered"}))
    flows.event("go", email=JANE)
    for name, payload in later_events:
        flows.event(name, email=JANE, payload=payload)
    flows.advance(days=1)
    assert StepExecution.objects.get(step_id="check").result["branch"] == expected


def test_history_with_where_and_min_count(flows):
    flows.contact(JANE)
    for total in ["10", "80", "120"]:
        flows.event("order_created", email=JANE, payload={"total_gross_amount": total, "currency": "USD"})
    condition = {"history": "event", "event": "order_created", "since": {"days": 30}, "min_count": 2,
                 "where": {"field": "event.total_gross_amount", "op": "gte", "value": 50}}
    assert _branch_taken(flows, condition) == "yes"


@pytest.mark.parametrize("action", ["opened", "clicked"])
def test_engaged_with_a_message_of_this_flow(flows, action):
    flows.contact(JANE, email_consent="subscribed")
    flows.flow(chain("go", ("mail", {**email("Hello"), "next": "wait"}),
                     ("wait", {"type": "wait", "duration": {"days": 2}, "next": "check"}),
                     ("check", {"type": "split", "condition": {"history": "message", "action": action, "scope": "flow",
                                                               "since": "entered"}, "yes": None, "no": None})))
    flows.event("go", email=JANE)
    send_id = str(Message.objects.get().send_id)
    flows.advance(hours=3)
    flows.event(f"email_{action}", email=JANE, payload={"send_id": send_id})  # as the tracking edge records it
    flows.advance(days=2)
    assert StepExecution.objects.get(step_id="check").result["branch"] == "yes"


def test_engagement_with_another_flow_does_not_count(flows):
    flows.contact(JANE, email_consent="subscribed")
    flows.flow(chain("go", ("wait", {"type": "wait", "duration": {"days": 2}, "next": "check"}),
                     ("check", {"type": "split", "condition": {"history": "message", "action": "opened", "scope": "flow",
                                                               "since": "entered"}, "yes": None, "no": None})))
    flows.event("go", email=JANE)
    flows.event("email_opened", email=JANE, payload={"send_id": "00000000-0000-0000-0000-000000000000"})
    flows.advance(days=2)
    assert StepExecution.objects.get(step_id="check").result["branch"] == "no"
