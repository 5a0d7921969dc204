"""What conditions can ask about the past, answered from our own tables.

Implements the ``HistoryLookup`` protocol of ``conditions.py``. Events still
waiting to be processed count too (matched by the contact's email or user
id): an order recorded a second before a reminder is due must stop it.
"""

from django.db.models import Q

from ..models import Contact, Event, Message
from .conditions import matches_payload


class SharedEvents:
    """The events of many contacts, one query per event name, shared by their ``DatabaseHistory``.

    A window of sends re-checks goal, exit and entry conditions for every
    contact in it; asked one by one that is one query per send, asked here it
    is one per window and event name. The same events count as one at a time
    would (``DatabaseHistory._events``): the contact's own, plus pending ones
    matched by its email or user id, never dead ones. Made inside the
    transaction that holds the contacts' locks, so what it sees is as fresh.
    """

    def __init__(self, contacts):
        self.contacts = list(contacts)
        self._by_name: dict[str, dict[int, list]] = {}

    def of(self, contact, name: str) -> list[tuple]:
        """(id, occurred_at, payload) of ``contact``'s events called ``name``."""
        if name not in self._by_name:
            self._by_name[name] = self._fetch(name)
        return self._by_name[name].get(contact.pk, [])

    def _fetch(self, name: str) -> dict[int, list]:
        by_email = {c.email: c.pk for c in self.contacts if c.email}
        by_user = {c.user_id: c.pk for c in self.contacts if c.user_id}
        identity = Q(contact_id__in=[c.pk for c in self.contacts])
        if by_email:
            identity |= Q(status=Event.Status.PENDING, email__in=list(by_email))
        if by_user:
            identity |= Q(status=Event.Status.PENDING, user_id__in=list(by_user))
        found: dict[int, dict[int, tuple]] = {}
        rows = (Event.objects.filter(identity, name=name).exclude(status=Event.Status.DEAD)
                .values_list("id", "contact_id", "email", "user_id", "status", "occurred_at", "payload"))
        wanted = {c.pk for c in self.contacts}
        for event_id, contact_id, email, user_id, status, occurred_at, payload in rows:
            owners = {contact_id} & wanted
            if status == Event.Status.PENDING:
                owners |= {owner for owner in (by_email.get(email), by_user.get(user_id)) if owner}
            for owner in owners:
                found.setdefault(owner, {})[event_id] = (event_id, occurred_at, payload)
        return {owner: list(events.values()) for owner, events in found.items()}


class DatabaseHistory:
    def __init__(self, contact: Contact, *, flow_id: int | None = None, now=None, trigger_event_id=None,
                 shared: SharedEvents | None = None):
        self.contact = contact
        self.flow_id = flow_id
        self.now = now
        # The event that started a journey is not "an order since entering" it.
        self.trigger_event_id = trigger_event_id
        self.shared = shared

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
        if self.shared is not None:
            payloads = [payload for event_id, occurred_at, payload in self.shared.of(self.contact, name)
                        if event_id != self.trigger_event_id and (since is None or occurred_at >= since)]
            if not where:
                return len(payloads)
            return sum(1 for payload in payloads if matches_payload(where, payload, self.now))
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
