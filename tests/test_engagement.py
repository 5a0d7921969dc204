"""Delivery and engagement statuses from any edge, folded into messages once, with their consequences."""

import pytest
from django.core import mail

from saleor_flows.engine import engagement, suppression
from saleor_flows.engine.engagement import DeliveryStatus
from saleor_flows.models import Contact, Message, MessageEvent

from .flowkit import chain, email, nxt

JANE = "jane@example.com"


def _sent(flows, definition=None):
    flows.contact(JANE, email_consent="subscribed", first_name="Jane")
    flows.flow(definition or chain("go", ("mail", email("Hi"))))
    flows.event("go", email=JANE)
    return Message.objects.get()


def status(message, kind, **extra):
    return DeliveryStatus(provider="testesp", type=kind, occurred_at=extra.pop("at", None) or message.created_at,
                          send_id=str(message.send_id), **extra)


def test_a_retried_provider_event_is_stored_and_counted_once(flows):
    message = _sent(flows)
    first = engagement.record(status(message, "delivered", event_id="evt-1"))
    assert first is not None and first.message_id == message.pk
    assert engagement.record(status(message, "delivered", event_id="evt-1")) is None
    assert MessageEvent.objects.count() == 1
    message.refresh_from_db()
    assert message.delivered_at == message.created_at


def test_events_without_an_id_are_deduplicated_by_their_content(flows):
    message = _sent(flows)
    assert engagement.record(status(message, "opened")) is not None
    assert engagement.record(status(message, "opened")) is None
    assert engagement.record(status(message, "clicked", url="https://shop.example.com/a")) is not None


def test_machine_opens_are_kept_apart_from_human_opens(flows):
    message = _sent(flows)
    engagement.record(status(message, "opened", machine=True, event_id="m"))
    engagement.record(status(message, "clicked", machine=True, event_id="scan", url="https://x.example"))
    message.refresh_from_db()
    assert message.machine_opened_at is not None and message.opened_at is None and message.clicked_at is None
    engagement.record(status(message, "opened", event_id="h", at=flows.now))
    message.refresh_from_db()
    assert message.opened_at == flows.now


def test_a_hard_bounce_suppresses_the_address_for_every_later_message(flows):
    message = _sent(flows)
    engagement.record(status(message, "bounced", event_id="b", reason="550 no such user"))
    assert suppression.reason_for("email", JANE) == "hard_bounce"
    assert Contact.objects.get().suppressed_reason == "hard_bounce"
    flows.flow(chain("order", ("receipt", email("Receipt")), kind="transactional"), slug="receipts")
    flows.event("order", email=JANE)
    assert [m.subject for m in mail.outbox] == ["Hi"]  # not even a receipt reaches a dead address
    assert "message_bounced" in flows.trail_kinds(JANE)


def test_a_complaint_withdraws_consent_and_suppresses_marketing_only(flows):
    message = _sent(flows)
    engagement.record(status(message, "complained", event_id="c"))
    contact = Contact.objects.get()
    assert (contact.email_consent, contact.email_consent_source) == ("unsubscribed", "complaint")
    assert suppression.reason_for("email", JANE) == "complaint"
    flows.flow(chain("order", ("receipt", email("Receipt")), kind="transactional"), slug="receipts")
    flows.flow(chain("promo", ("offer", email("Offer"))), slug="promo")
    flows.event("order", email=JANE)
    flows.event("promo", email=JANE)
    assert [m.subject for m in mail.outbox] == ["Hi", "Receipt"]


def test_an_ambiguous_send_is_reconciled_from_the_provider_s_evidence(flows):
    message = _sent(flows)
    Message.objects.filter(pk=message.pk).update(status="ambiguous")
    engagement.record(status(message, "delivered", event_id="d"))
    message.refresh_from_db()
    assert message.status == "sent"


def test_an_event_for_no_message_of_ours_is_kept_and_a_bounce_still_suppresses(flows):
    stored = engagement.record(DeliveryStatus(provider="testesp", type="bounced", occurred_at=flows.now,
                                              provider_message_id="unknown", recipient="ghost@example.com"))
    assert stored.message_id is None and stored.detail["recipient"] == "ghost@example.com"
    assert suppression.reason_for("email", "ghost@example.com") == "hard_bounce"


def test_an_unknown_status_is_refused_with_a_clear_error(flows):
    with pytest.raises(ValueError, match="unknown delivery status type 'exploded'"):
        engagement.record(DeliveryStatus(provider="x", type="exploded", occurred_at=flows.now))
    assert not MessageEvent.objects.exists()


def test_a_flow_can_wait_for_the_contact_to_open_its_email(flows):
    definition = chain("go", ("mail", nxt(email("Hi"))),
                       ("wait", {"type": "wait_event", "event": "message_opened", "timeout": {"days": 2},
                                 "next": "thanks", "timeout_next": "nudge"}),
                       ("thanks", email("Glad you looked")), ("nudge", email("Did you see this?")))
    message = _sent(flows, definition)
    flows.advance(hours=2)
    engagement.record(status(message, "opened", event_id="o", at=flows.now))
    assert [m.subject for m in mail.outbox] == ["Hi", "Glad you looked"]


def test_a_machine_open_does_not_wake_a_flow_waiting_for_an_open(flows):
    definition = chain("go", ("mail", nxt(email("Hi"))),
                       ("wait", {"type": "wait_event", "event": "message_opened", "timeout": {"days": 2},
                                 "next": "thanks", "timeout_next": "nudge"}),
                       ("thanks", email("Glad you looked")), ("nudge", email("Did you see this?")))
    message = _sent(flows, definition)
    engagement.record(status(message, "opened", event_id="mpp", machine=True))
    flows.advance(days=3)
    assert [m.subject for m in mail.outbox] == ["Hi", "Did you see this?"]
