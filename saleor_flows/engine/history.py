"""What conditions can ask about the past, answered from our own tables.

Implements the ``HistoryLookup`` protocol of ``conditions.py``. Events still
waiting to be processed count too (matched by the contact's email or user
id): an order recorded a second before a reminder is due must stop it.
"""

from django.db.models import Q

from ..models import Contact, Event, Message
from .conditions import matches_payload


class DatabaseHistory:
    def __init__(self, contact: Contact, *, flow_id: int | None = None, now=None, trigger_event_id=None):
        self.contact = contact
        self.flow_id = flow_id
        self.now = now
        # The event that started a journey is not "an order since entering" it.
        self.trigger_event_id = trigger_event_id

    def _events(self):
        identity = Q(contact_id=self.contact.pk)
        pending = Q()
        if self.contact.email:
            pending |= Q(email=self.contact.email)
        if self.contact.user_id:
            pending |= Q(user_id=self.contact.user_id)
        if pending:
            identity |= Q(status=Event.Status.PENDING) & pending
        events = Event.objects.filter(identity).exclude(status=Event.Status.DEAD)
        if self.trigger_event_id:
            events = events.exclude(pk=self.trigger_event_id)
        return events

    def count_events(self, name, since, where):
        events = self._events().filter(name=name)
        if since is not None:
            events = events.filter(occurred_at__gte=since)
        if not where:
            return events.count()
        return sum(1 for payload in events.values_list("payload", flat=True)
                   if matches_payload(where, payload, self.now))

    def count_recommendations(self, limit):
        """How many products (up to ``limit``) the shop would recommend in a message of this journey now."""
        from .recommendations import for_message

        trigger = Event.objects.filter(pk=self.trigger_event_id).only("payload", "channel").first() \
            if self.trigger_event_id else None
        return len(for_message(self.contact, trigger.payload if trigger else {}, trigger.channel if trigger else "",
                               limit=limit))

    def count_messages(self, action, since, flow_only):
        if action == "sent":
            messages = Message.objects.filter(contact_id=self.contact.pk, status=Message.Status.SENT)
            if flow_only:
                messages = messages.filter(flow_id=self.flow_id)
            if since is not None:
                messages = messages.filter(sent_at__gte=since)
            return messages.count()
        # Engagement arrives as normalized events (email_opened / email_clicked)
        # whose payload names the send id; scope them to this flow's messages.
        events = self._events().filter(name=f"email_{action}")
        if since is not None:
            events = events.filter(occurred_at__gte=since)
        if flow_only:
            send_ids = [str(s) for s in Message.objects.filter(
                contact_id=self.contact.pk, flow_id=self.flow_id).values_list("send_id", flat=True)]
            events = events.filter(payload__send_id__in=send_ids)
        return events.count()
