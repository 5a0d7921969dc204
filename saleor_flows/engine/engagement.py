"""Delivery and engagement: what happened to a message after we handed it off.

Every edge normalizes its input into one ``DeliveryStatus`` (anymail's
tracking signal, an SMS provider's status webhook, our own open pixel and
click redirect) and calls ``record()``. Here, and only here, the event is
stored once (providers retry), matched to our message by our send id or the
provider's message id, folded into the message's first-time timestamps, and
acted on: a hard bounce or a complaint suppresses the address at once, a
provider-side unsubscribe withdraws consent, and an ambiguous send (its worker
died during hand-off) is reconciled from the evidence that it went out.

Human opens and clicks also become events (``message_opened``,
``message_clicked``) so a flow can wait for or split on engagement like on
any other event; a privacy proxy's prefetch must not count as "opened".
"""

import json
import uuid

from django.db import transaction

from .. import clock
from ..channels.statuses import DeliveryStatus
from ..db import insert_on_conflict
from ..events import record_event
from ..models import Contact, Message, MessageEvent
from . import suppression, trail
from .contacts import set_consent

Type = MessageEvent.Type

# The first time each of these happens is kept on the message itself, for reports.
FIRST_SEEN = {
    Type.DELIVERED: "delivered_at", Type.CLICKED: "clicked_at", Type.BOUNCED: "bounced_at",
    Type.COMPLAINED: "complained_at", Type.UNSUBSCRIBED: "unsubscribed_at",
    Type.REJECTED: "failed_at", Type.FAILED: "failed_at",
}
# Evidence that an ambiguous send did go out, or that it did not.
WENT_OUT = {Type.SENT, Type.DELIVERED, Type.DEFERRED, Type.OPENED, Type.CLICKED, Type.BOUNCED, Type.COMPLAINED,
            Type.UNSUBSCRIBED}
NEVER_WENT = {Type.REJECTED}
# Engagement that flows can react to, as events named after it.
AS_EVENT = {Type.OPENED: "message_opened", Type.CLICKED: "message_clicked"}


def find_message(status: DeliveryStatus) -> Message | None:
    if status.send_id:
        message = Message.objects.filter(send_id=status.send_id).first() if _uuid_like(status.send_id) else None
        if message:
            return message
    if status.provider_message_id:
        return Message.objects.filter(provider_message_id=status.provider_message_id).order_by("-id").first()
    return None


def _uuid_like(value: str) -> bool:
    try:
        uuid.UUID(str(value))
        return True
    except ValueError:
        return False


def record(status: DeliveryStatus) -> MessageEvent | None:
    """Store and act on one status. Returns the stored event, or None if it was seen before."""
    if status.type not in Type.values:
        raise ValueError(f"unknown delivery status type {status.type!r}; use one of {Type.values}")
    with transaction.atomic():
        message = find_message(status)
        event_id = insert_on_conflict(MessageEvent, {
            "message_id": message.pk if message else None, "provider": status.provider[:32],
            "event_id": status.key(), "type": status.type, "machine": status.machine, "url": status.url,
            "occurred_at": status.occurred_at, "received_at": clock.now(),
            "detail": json.dumps({**status.detail, **({"reason": status.reason} if status.reason else {}),
                                  **({"recipient": status.recipient} if status.recipient and not message else {})},
                                 default=str),
        }, conflict=["provider", "event_id"])
        if event_id is None:
            return None  # a provider's retry: already counted and acted on
        if message is not None:
            _fold_into_message(message, status)
            _act(message, status)
        elif status.type in (Type.BOUNCED, Type.COMPLAINED) and status.recipient:
            # Not one of ours (or sent before we kept ids), but the address is bad all the same.
            suppression.suppress(status.channel, status.recipient, _suppression_reason(status.type), source=status.provider)
        return MessageEvent.objects.get(pk=event_id)


def _suppression_reason(kind: str) -> str:
    return suppression.HARD_BOUNCE if kind == Type.BOUNCED else suppression.COMPLAINT


def _fold_into_message(message: Message, status: DeliveryStatus):
    """Keep the first time each thing happened on the message (one conditional UPDATE)."""
    column = FIRST_SEEN.get(status.type)
    if status.type == Type.OPENED:
        column = "machine_opened_at" if status.machine else "opened_at"
    elif status.type == Type.CLICKED and status.machine:
        column = None  # a scanner following links is not a click
    updates = {}
    if column and getattr(message, column) is None:
        updates[column] = status.occurred_at
    if status.provider_message_id and not message.provider_message_id:
        updates["provider_message_id"] = status.provider_message_id[:255]
    if message.status == Message.Status.AMBIGUOUS and status.type in WENT_OUT | NEVER_WENT:
        updates["status"] = Message.Status.SENT if status.type in WENT_OUT else Message.Status.FAILED
    if updates:
        Message.objects.filter(pk=message.pk).update(**updates)
        for name, value in updates.items():
            setattr(message, name, value)


def _act(message: Message, status: DeliveryStatus):
    address = status.recipient or message.to
    contact = Contact.objects.select_for_update().filter(pk=message.contact_id).first() if message.contact_id else None
    if status.type in (Type.BOUNCED, Type.COMPLAINED):
        suppression.suppress(message.channel, address, _suppression_reason(status.type), source=status.provider)
    if status.type in (Type.COMPLAINED, Type.UNSUBSCRIBED) and contact is not None:
        if getattr(contact, f"{message.channel}_consent") != Contact.Consent.UNSUBSCRIBED:
            source = "complaint" if status.type == Type.COMPLAINED else f"{status.provider}_unsubscribe"
            changed = set_consent(contact, message.channel, Contact.Consent.UNSUBSCRIBED, source=source,
                                  at=status.occurred_at, detail={"send_id": str(message.send_id)})
            contact.updated_at = clock.now()
            contact.save(update_fields=changed + ["updated_at"])
    if contact is not None and status.type in (Type.BOUNCED, Type.COMPLAINED, Type.UNSUBSCRIBED, Type.REJECTED,
                                               Type.FAILED):
        trail.record(contact.pk, f"message_{status.type}", step_id=message.step_id, send_id=str(message.send_id),
                     provider=status.provider, reason=status.reason[:200])
    if contact is not None and status.type in AS_EVENT and not status.machine:
        record_event(AS_EVENT[status.type], email=contact.email or "", user_id=contact.user_id or "",
                     occurred_at=status.occurred_at,
                     payload={"send_id": str(message.send_id), "flow": message.flow.slug if message.flow else "",
                              "step": message.step_id, "channel": message.channel, "url": status.url,
                              "machine": status.machine},
                     dedupe_key=f"{AS_EVENT[status.type]}:{status.provider}:{status.key()}"[:255])
