"""Staff notifications go to staff only (issue 11, item 5): checked at publish and again right before sending."""

import pytest
from django.core import mail

from saleor_flows.channels import staff
from saleor_flows.engine.definition import DefinitionError
from saleor_flows.engine.personal_data import steps_sending_contact_data
from saleor_flows.models import Message, StepExecution

from .flowkit import chain

JANE = "jane@example.com"


def recipients(settings, *addresses):
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "STAFF_NOTIFY_RECIPIENTS": list(addresses)}


def tell(*to, body="{{ contact.email }} joined"):
    return chain("vip_signup", ("tell", {"type": "notify_staff", "to": list(to), "subject": "New VIP",
                                         "body": body, "next": None}))


def test_a_notification_to_an_address_outside_the_staff_is_refused_at_publish(flows, settings):
    recipients(settings, "owner@shop.example")
    with pytest.raises(DefinitionError) as refused:
        flows.flow(tell("owner@shop.example", "collector@evil.example"))
    (problem,) = refused.value.errors
    assert problem.startswith("steps.tell.to: not a staff address: collector@evil.example")
    assert "STAFF_NOTIFY_RECIPIENTS" in problem


def test_without_any_staff_address_configured_nothing_can_be_notified(flows):
    with pytest.raises(DefinitionError, match="not a staff address: owner@shop.example"):
        flows.flow(tell("owner@shop.example"))


def test_someone_no_longer_staff_at_send_time_is_skipped_with_the_reason(flows, settings):
    recipients(settings, "owner@shop.example", "temp@shop.example")
    flows.flow(tell("owner@shop.example", "temp@shop.example"))
    recipients(settings, "owner@shop.example")  # temp@ left the shop after the flow was published
    flows.contact(JANE)
    flows.event("vip_signup", email=JANE)
    assert mail.outbox == [] and not Message.objects.exists()
    execution = StepExecution.objects.get(step_id="tell")
    assert (execution.state, execution.result) == ("skipped", {"reason": "not a staff address (temp@shop.example)"})
    assert "skipped" in flows.trail_kinds(JANE)


def test_the_host_edge_provides_the_staff_addresses(flows, monkeypatch):
    monkeypatch.setattr(staff, "_sources", [])
    staff.add_staff_source(lambda: ["Owner@Shop.example", ""])  # what saleor_plugin/staff.py registers
    flows.contact(JANE)
    flows.flow(tell("owner@shop.example"))
    flows.event("vip_signup", email=JANE)
    (message,) = mail.outbox
    assert message.to == ["owner@shop.example"] and JANE in message.body


def test_which_steps_send_contact_data_out():
    definition = chain("go", ("plain", {"type": "notify_staff", "to": ["a@b.c"], "subject": "{{ flow.name }} ran",
                                        "body": "See {{ shop.url }} ({{ message.send_id }})", "next": "who"}),
                       ("who", {"type": "notify_staff", "to": ["a@b.c"], "subject": "x",
                                "body": "{% for k, v in event.items() %}{{ v }}{% endfor %}", "next": "link"}),
                       ("link", {"type": "notify_staff", "to": ["a@b.c"], "subject": "{{ preferences_url }}",
                                 "body": "x", "next": "hook"}),
                       ("hook", {"type": "webhook", "url": "https://crm.example.com/", "next": None}))
    assert steps_sending_contact_data(definition) == {
        "who": "its text uses event", "link": "its text uses preferences_url",
        "hook": "a webhook posts the contact's email and user id"}
