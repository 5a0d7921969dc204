"""Contacts: finding (or creating) the person behind an event, and keeping their profile current.

Event payloads use the normalized vocabulary (Saleor's webhook field names,
which every edge produces, see ``processing.EVENT_SHAPES``; plus an optional
``consent`` object an edge fills from the host), so this module reads plain
dicts and knows nothing of any host.
"""

from decimal import Decimal, InvalidOperation

from django.db import transaction
from django.db.models import Q

from django.utils import timezone
from django.utils.dateparse import parse_datetime

from .. import clock
from ..conf import flows_setting
from ..db import any_of, insert_rows, update_rows
from ..phone import to_e164
from ..models import ConsentChange, Contact, Event, IdleTimer, Message, TrailEntry
from ..signals import consent_changed
from . import suppression


def _lock_all(emails, user_ids) -> list[Contact]:
    """The contacts with any of these addresses or user ids, locked in id order (two batches never deadlock)."""
    if not emails and not user_ids:
        return []
    return list(Contact.objects.select_for_update().filter(any_of("email", emails) | any_of("user_id", user_ids))
                .order_by("id"))


def resolve_contacts(events: list[Event]) -> tuple[dict[int, Contact], dict[int, set], list[Event]]:
    """The contacts for events about different people, found or created with a few set-based statements.

    Returns ({event id: contact}, {contact id: fields changed but not saved yet}, events deferred).
    Each contact is locked for the rest of the transaction: locking serializes all processing for
    one person, which is what makes re-entry rules ("only one active enrolment") and exits race-free.
    An event about a person another event of this call is about already (found through another
    address, say) is deferred: the caller processes it after the first one, as one at a time would.
    A contact is looked up by user id, then by email; a new one gets the event's identity.
    """
    now = clock.now()
    by_user, by_email = {}, {}

    def index(contacts):
        for contact in contacts:
            if contact.user_id:
                by_user[contact.user_id] = contact
            if contact.email:
                by_email[contact.email] = contact

    def find(event):
        return (by_user.get(event.user_id) if event.user_id else None) or (
            by_email.get(event.email) if event.email else None)

    index(_lock_all({e.email for e in events if e.email}, {e.user_id for e in events if e.user_id}))
    chosen, deferred, new, taken, new_keys = {}, [], [], set(), set()
    for event in events:
        contact = find(event)
        keys = {("email", event.email), ("user", event.user_id)} - {("email", ""), ("user", "")}
        if contact is None and not keys & new_keys:
            new.append(event)
            new_keys |= keys
        elif contact is not None and contact.id not in taken:
            chosen[event.id] = contact
            taken.add(contact.id)
        else:
            deferred.append(event)
    changed: dict[int, set] = {}
    if new:
        # Two workers may meet a new person at once: the unique keys pick one row.
        insert_rows(Contact, [{"email": e.email or None, "user_id": e.user_id or None,
                               "created_at": e.occurred_at or now, "updated_at": now} for e in new], conflict=[])
        index(_lock_all({e.email for e in new if e.email}, {e.user_id for e in new if e.user_id}))
        reasons = suppression.reasons_for("email", [e.email for e in new if e.email])
        for event in new:
            contact = find(event)
            if contact.id in taken:  # another worker's new row, about someone this call has met already
                deferred.append(event)
                continue
            chosen[event.id] = contact
            taken.add(contact.id)
            reason = reasons.get(event.email) if event.email else None
            if reason and not contact.suppressed:
                contact.suppressed, contact.suppressed_reason, contact.suppressed_at = True, reason, now
                changed.setdefault(contact.id, set()).update({"suppressed", "suppressed_reason", "suppressed_at"})
    for event in events:
        contact = chosen.get(event.id)
        if contact is None:
            continue
        if event.user_id and not contact.user_id:
            contact.user_id = event.user_id
            changed.setdefault(contact.id, set()).add("user_id")
        if event.email and not contact.email and event.email not in by_email:
            contact.email = event.email
            by_email[event.email] = contact
            changed.setdefault(contact.id, set()).add("email")
    position = {event.id: index for index, event in enumerate(events)}
    return chosen, changed, sorted(deferred, key=lambda e: position[e.id])


def save_contacts(contacts: list[Contact], fields: list[set[str]]):
    """Write ``fields[i]`` of each (locked) contact ``contacts[i]``, all in one UPDATE."""
    names = sorted(set().union(*fields))
    if contacts and names:
        update_rows(Contact, [c.pk for c in contacts], {name: [getattr(c, name) for c in contacts] for name in names},
                    only=fields)


def erase_contact(contact: Contact, *, reason: str = "erased"):
    """Forget a person (GDPR erasure): their events, journeys, messages and profile.

    Only a hash of the address stays, as a suppression entry, so that an old
    import or a stale event can never quietly start mailing them again.
    """
    if contact.email:
        suppression.suppress("email", contact.email, reason, source="erasure")
        IdleTimer.objects.filter(email=contact.email).delete()
    identity = Q(contact=contact)
    if contact.email:
        identity |= Q(email=contact.email)
    if contact.user_id:
        identity |= Q(user_id=contact.user_id)
    Message.objects.filter(contact=contact).update(to="", subject="")
    TrailEntry.objects.filter(contact=contact).delete()
    contact.enrolments.all().delete()  # their steps and trail go with them
    # Events are kept for counts only: no identity, no payload.
    Event.objects.filter(identity).update(email="", user_id="", payload={}, contact=None)
    contact.delete()


def _decimal(value) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        return None


def _set_if_given(contact: Contact, field: str, value, changed: list, *, overwrite=True):
    if isinstance(value, str) and value and (overwrite or not getattr(contact, field)):
        if getattr(contact, field) != value:
            setattr(contact, field, value)
            changed.append(field)


def _phone(address: dict) -> str:
    """The address's phone in E.164 (read with the address's country), or as given when it does not parse.

    A raw number is kept so the person's data is not lost; sending to it is
    skipped with the reason "invalid phone number".
    """
    country = address.get("country")
    country = country.get("code") if isinstance(country, dict) else country
    try:
        return to_e164(address["phone"], country if isinstance(country, str) and country else
                       flows_setting("PHONE_REGION"))
    except ValueError:
        return address["phone"].strip()[:32]


def set_consent(contact: Contact, channel: str, status: str, *, source: str, at=None, ip=None, user_agent="",
                detail=None) -> list[str]:
    """Record consent for a channel ("email" or "sms") with its source and time, and log the proof.

    Returns the contact fields it changed; the caller saves them (it holds the contact's lock).
    """
    if channel not in ("email", "sms"):
        raise ValueError(f"unknown consent channel {channel!r}")
    if status not in Contact.Consent.values:
        raise ValueError(f"unknown consent status {status!r}; use one of {Contact.Consent.values}")
    if getattr(contact, f"{channel}_consent") != status:
        # Tell edges once the change is committed (e.g. Saleor writes its metadata key).
        transaction.on_commit(lambda: consent_changed.send(
            sender=Contact, contact=contact, channel=channel, status=status, source=source))
    ConsentChange.objects.create(contact_id=contact.pk, channel=channel, status=status, source=source[:64],
                                 ip=ip or None, user_agent=(user_agent or "")[:400], detail=detail or {},
                                 at=at or clock.now())
    setattr(contact, f"{channel}_consent", status)
    setattr(contact, f"{channel}_consent_source", source[:64])
    setattr(contact, f"{channel}_consent_at", at or clock.now())
    changed = [f"{channel}_consent", f"{channel}_consent_source", f"{channel}_consent_at"]
    address = contact.email if channel == "email" else contact.phone
    if status == Contact.Consent.UNSUBSCRIBED and address:
        # Kept as a hash too, so the choice outlives an erasure or a re-import.
        suppression.suppress(channel, address, suppression.UNSUBSCRIBED, source=source)
        if channel == "email" and not contact.suppressed:
            contact.suppressed, contact.suppressed_reason, contact.suppressed_at = True, suppression.UNSUBSCRIBED, clock.now()
            changed += ["suppressed", "suppressed_reason", "suppressed_at"]
    elif status == Contact.Consent.SUBSCRIBED and channel == "sms" and address:
        suppression.lift_opt_out("sms", address)
    if (status == Contact.Consent.SUBSCRIBED and channel == "email" and contact.suppressed
            and contact.suppressed_reason in (suppression.ERASED, suppression.UNSUBSCRIBED)):
        # Someone who was erased or unsubscribed and opts in again is a consenting person again.
        suppression.unsuppress("email", contact.email)
        contact.suppressed, contact.suppressed_reason, contact.suppressed_at = False, "", None
        changed += ["suppressed", "suppressed_reason", "suppressed_at"]
    return changed


def fold_profile(contact: Contact, event: Event) -> set[str]:
    """Fold what an event tells us about the person into their profile; returns the fields to save."""
    payload = event.payload if isinstance(event.payload, dict) else {}
    changed: list[str] = []
    address = payload.get("billing_address") or payload.get("default_billing_address") or {}
    if event.name.startswith("customer_"):
        metadata = payload.get("metadata") if isinstance(payload.get("metadata"), dict) else {}
        birthday_key = flows_setting("BIRTHDAY_ATTRIBUTE")
        if isinstance(metadata.get(birthday_key), str) and contact.attributes.get(birthday_key) != metadata[birthday_key]:
            # Storefronts keep a birthday in the user's metadata; it becomes a custom field.
            contact.attributes[birthday_key] = metadata[birthday_key]
            changed.append("attributes")
        _set_if_given(contact, "first_name", payload.get("first_name"), changed)
        _set_if_given(contact, "last_name", payload.get("last_name"), changed)
        _set_if_given(contact, "locale", payload.get("language_code"), changed)
    elif isinstance(address, dict):
        # Checkouts and orders name the person too; never overwrite what the account says.
        _set_if_given(contact, "first_name", address.get("first_name"), changed, overwrite=False)
        _set_if_given(contact, "last_name", address.get("last_name"), changed, overwrite=False)
        _set_if_given(contact, "locale", payload.get("language_code"), changed, overwrite=False)
    if isinstance(address, dict) and isinstance(address.get("phone"), str) and address["phone"].strip():
        _set_if_given(contact, "phone", _phone(address), changed, overwrite=False)
    _set_if_given(contact, "timezone", payload.get("timezone"), changed)

    if event.name == "order_created":
        contact.order_count += 1
        total = _decimal(payload.get("total_gross_amount"))
        if total is not None:
            contact.total_spent += total
        _set_if_given(contact, "currency", payload.get("currency"), changed)
        contact.last_order_at = max(filter(None, [contact.last_order_at, event.occurred_at]))
        contact.first_order_at = min(filter(None, [contact.first_order_at, event.occurred_at]))
        changed += ["order_count", "total_spent", "last_order_at", "first_order_at"]
    elif event.name == "consent_updated":
        channel, status = payload.get("channel"), payload.get("status")
        changed += set_consent(contact, channel, status, source=str(payload.get("source") or "event"),
                               at=event.occurred_at)
    consent = payload.get("consent")
    if isinstance(consent, dict):
        # An edge read the person's choice from the host (e.g. a Saleor user metadata key).
        # ``as_of``: when the host's record was made; a choice the person made after it wins.
        as_of = parse_when(consent.get("as_of"))
        if as_of is not None and timezone.is_naive(as_of):
            as_of = timezone.make_aware(as_of, timezone.utc)
        for channel in ("email", "sms"):
            status = consent.get(channel)
            decided_at = getattr(contact, f"{channel}_consent_at")
            if (status in Contact.Consent.values and getattr(contact, f"{channel}_consent") != status
                    and not (as_of and decided_at and decided_at > as_of)):
                detail = consent.get("detail") if isinstance(consent.get("detail"), dict) else None
                changed += set_consent(contact, channel, status, source=str(consent.get("source") or "host"),
                                       at=event.occurred_at, detail=detail)
    if event.name == "profile_updated" and payload["attributes"]:
        contact.attributes.update({str(key): value for key, value in payload["attributes"].items()})
        changed.append("attributes")

    if not changed:
        return set()
    contact.updated_at = clock.now()
    return {*changed, "updated_at"}


def parse_when(value):
    """A payload datetime (ISO string) as an aware datetime, or None."""
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None
