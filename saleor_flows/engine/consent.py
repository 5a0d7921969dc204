"""Consent operations shared by every edge: storefront signup forms, the preference centre, imports, the API.

Each operation locks the contact, changes consent through
``contacts.set_consent`` (which logs a ``ConsentChange`` with its proof and
suppresses on unsubscribe) and tells the rest of the system:

- a new subscriber gets a ``subscribed`` event (payload: ``channels``,
  ``source``, ``topics``) so flows can start from it, e.g. a welcome series
  whose trigger is ``subscribed``;
- staff in ``NEW_SUBSCRIBER_NOTIFY`` get a short email per new subscriber;
- with ``DOUBLE_OPT_IN`` an email signup is only ``pending`` until the
  person clicks the signed link of the confirmation email.

Callers pass addresses already validated (an email normalized, a phone in
E.164); operations never reveal to them whether a person already existed.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from .. import clock
from ..conf import flows_setting
from ..events import normalize_email, record_event
from ..models import ConsentChange, Contact
from . import dispatch, trail
from .contacts import set_consent

SUBSCRIBED, PENDING, UNSUBSCRIBED = Contact.Consent.SUBSCRIBED, Contact.Consent.PENDING, Contact.Consent.UNSUBSCRIBED

# Where consent came from (the full list is on ConsentChange.source). Storefront-facing
# endpoints accept only PUBLIC_SOURCES: an anonymous request cannot claim to be an import or an API call.
PUBLIC_SOURCES = ("storefront_form", "checkout")
FREQUENCIES = ("", "daily", "weekly", "monthly")


@dataclass
class Proof:
    """What we can show later about a consent request: where from, when, and the browser that sent it."""

    source: str
    ip: str | None = None
    user_agent: str = ""
    detail: dict = field(default_factory=dict)


@dataclass
class SubscribeResult:
    contact_id: int
    subscribed: list[str]  # channels newly subscribed now
    pending: bool  # an email confirmation was sent (double opt-in)


def topic_keys() -> list[str]:
    return [str(topic["key"]) for topic in flows_setting("TOPICS") or [] if isinstance(topic, dict) and topic.get("key")]


def _contact_for(email: str | None, phone: str | None) -> Contact:
    """The contact for an address, created if new, locked for the rest of the transaction."""
    lookup = {"email": email} if email else {"phone": phone}
    contact = Contact.objects.select_for_update().filter(**lookup).order_by("pk").first()
    if contact is None:
        now = clock.now()
        if email:
            # A concurrent signup of the same address: the unique email picks one row.
            Contact.objects.bulk_create([Contact(email=email, created_at=now, updated_at=now)], ignore_conflicts=True)
        else:
            Contact.objects.create(phone=phone, created_at=now, updated_at=now)
        contact = Contact.objects.select_for_update().filter(**lookup).order_by("pk").first()
    return contact


def _consent(contact, channel, status, proof: Proof, changed: list, **detail):
    changed += set_consent(contact, channel, status, source=proof.source, ip=proof.ip, user_agent=proof.user_agent,
                           detail={**proof.detail, **detail})


def subscribe(email: str | None = None, phone: str | None = None, *, proof: Proof, language: str = "",
              topics: list[str] | None = None, first_name: str = "", channel: str = "",
              double_opt_in: bool | None = None) -> SubscribeResult:
    """Subscribe an email address and/or a phone number (E.164) to marketing.

    ``topics`` are the topics the person signed up for (taken off their opt-out
    list); ``channel`` is the host's sales channel, kept on the event.
    ``double_opt_in`` defaults to the DOUBLE_OPT_IN setting and applies to email only.
    """
    email = normalize_email(email) or None
    if not email and not phone:
        raise ValueError("subscribe() needs an email address or a phone number")
    if double_opt_in is None:
        double_opt_in = bool(flows_setting("DOUBLE_OPT_IN"))
    subscribed, pending = [], False
    with transaction.atomic():
        contact = _contact_for(email, phone)
        changed: list[str] = []
        if email and contact.email_consent != SUBSCRIBED:
            if double_opt_in:
                if contact.email_consent != PENDING:
                    _consent(contact, "email", PENDING, proof, changed)
                pending = True  # asked again: send the link again (the address rate limit bounds this)
            else:
                _consent(contact, "email", SUBSCRIBED, proof, changed)
                subscribed.append("email")
        if phone:
            if not contact.phone:
                contact.phone = phone
                changed.append("phone")
            if contact.phone == phone and contact.sms_consent != SUBSCRIBED:
                _consent(contact, "sms", SUBSCRIBED, proof, changed)
                subscribed.append("sms")
        if language and not contact.locale:
            contact.locale = language
            changed.append("locale")
        if first_name and not contact.first_name:
            contact.first_name = first_name
            changed.append("first_name")
        if topics and (subscribed or pending):
            # Signing up for a topic undoes an earlier opt-out of it; a repeat of the same form changes nothing.
            kept = [key for key in contact.unsubscribed_topics if key not in topics]
            if kept != contact.unsubscribed_topics:
                contact.unsubscribed_topics = kept
                changed.append("unsubscribed_topics")
        if changed:
            contact.updated_at = clock.now()
            contact.save(update_fields=sorted(set(changed)) + ["updated_at"])
        if pending:
            trail.record(contact.pk, "opt_in_requested", channel="email", source=proof.source)
    if subscribed:
        _announce(contact, subscribed, proof.source, topics or [], channel)
    if pending:
        dispatch.consent_email("confirm", contact.pk)
    return SubscribeResult(contact_id=contact.pk, subscribed=subscribed, pending=pending)


def confirm_opt_in(contact_id: int, *, ip: str | None = None, user_agent: str = "") -> str:
    """The person clicked their confirmation link: pending → subscribed, with proof.

    Returns "confirmed", "already" (subscribed before) or "not_pending" (e.g.
    unsubscribed since: an old confirmation link never resubscribes anyone).
    """
    with transaction.atomic():
        contact = Contact.objects.select_for_update().filter(pk=contact_id).first()
        if contact is None or contact.email_consent == UNSUBSCRIBED or contact.email_consent == Contact.Consent.NEVER:
            return "not_pending"
        if contact.email_consent == SUBSCRIBED:
            return "already"
        requested_via = contact.email_consent_source
        changed: list[str] = []
        _consent(contact, "email", SUBSCRIBED, Proof("double_opt_in", ip, user_agent), changed,
                 requested_via=requested_via)
        contact.updated_at = clock.now()
        contact.save(update_fields=changed + ["updated_at"])
    _announce(contact, ["email"], "double_opt_in", [], "", requested_via=requested_via)
    return "confirmed"


def _announce(contact: Contact, channels: list[str], source: str, topics: list[str], channel: str, **extra):
    """A new subscriber: an event for flows (email contacts only: events need an address) and a staff notice."""
    if contact.email:
        record_event("subscribed", email=contact.email, user_id=contact.user_id, channel=channel,
                     payload={"channels": channels, "source": source, "topics": list(topics), **extra})
    if flows_setting("NEW_SUBSCRIBER_NOTIFY"):
        dispatch.consent_email("staff", contact.pk, channels=channels, source=source)


def update_preferences(contact: Contact, *, unsubscribed_topics: list[str], frequency: str,
                       paused_until: datetime | None, proof: Proof) -> list[str]:
    """Store the preference centre's choices (the send gate honours them) with a ConsentChange as proof.

    The contact must be locked by the caller; returns the fields saved.
    """
    unknown = set(unsubscribed_topics) - set(topic_keys())
    if unknown:
        raise ValueError(f"unknown topics: {', '.join(sorted(unknown))}")
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be one of {FREQUENCIES}")
    new = {"unsubscribed_topics": sorted(unsubscribed_topics), "frequency": frequency, "paused_until": paused_until}
    changed = [name for name, value in new.items() if getattr(contact, name) != value]
    if not changed:
        return []
    for name in changed:
        setattr(contact, name, new[name])
    # The consent status does not change, so this is logged directly: set_consent would also
    # overwrite the contact's original consent source with "preference_centre".
    ConsentChange.objects.create(
        contact_id=contact.pk, channel="email", status=contact.email_consent, source=proof.source, ip=proof.ip or None,
        user_agent=(proof.user_agent or "")[:400], at=clock.now(),
        detail={**proof.detail, "preferences": {**new, "paused_until": paused_until and paused_until.isoformat()}})
    contact.updated_at = clock.now()
    contact.save(update_fields=changed + ["updated_at"])
    trail.record(contact.pk, "preferences_updated", **{name: new[name] for name in changed})
    return changed


def set_email_status(contact: Contact, status: str, *, proof: Proof) -> bool:
    """Unsubscribe or resubscribe a locked contact's email; False when it already had that status."""
    if contact.email_consent == status:
        return False
    changed: list[str] = []
    _consent(contact, "email", status, proof, changed)
    contact.updated_at = clock.now()
    contact.save(update_fields=changed + ["updated_at"])
    trail.record(contact.pk, "unsubscribed" if status == UNSUBSCRIBED else "resubscribed", channel="email",
                 source=proof.source, **proof.detail)
    return True


# --- Who may receive marketing ------------------------------------------------------------------

CONSENT_POLICIES = ("opt_in", "soft_opt_in", "opt_out")


def policy_for(saleor_channel: str = "") -> str:
    """The shop's consent policy for a Saleor channel (``CONSENT_POLICY``: one word, or per channel)."""
    setting = flows_setting("CONSENT_POLICY")
    policy = (setting.get(saleor_channel) or setting.get("default")) if isinstance(setting, dict) else setting
    if policy not in CONSENT_POLICIES:
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"saleor-flows: CONSENT_POLICY {policy!r}: one of {', '.join(CONSENT_POLICIES)}")
    return policy


def marketing_basis(contact, channel: str, saleor_channel: str = "") -> tuple[str, str]:
    """``(basis, "")`` when marketing on ``channel`` may reach the contact, else ``("", why not)``.

    The basis names the rule, so the why-trail and the reports can say which
    policy let each message out: ``consent`` (the person said yes),
    ``soft_opt_in`` (a customer who bought and never objected) or ``opt_out``
    (nobody said no). Suppression is checked before this, by the caller.
    """
    status = getattr(contact, f"{channel}_consent")
    if status == Contact.Consent.SUBSCRIBED:
        return "consent", ""
    policy = policy_for(saleor_channel) if channel == "email" else "opt_in"  # SMS: explicit consent, always
    if status == Contact.Consent.NEVER and policy == "soft_opt_in" and contact.order_count > 0:
        return "soft_opt_in", ""
    if status in (Contact.Consent.NEVER, Contact.Consent.PENDING) and policy == "opt_out":
        return "opt_out", ""
    return "", f"no {channel} marketing consent ({status}; policy {policy})"
