"""Suppression: addresses and numbers that must not get (some) messages, whoever they belong to.

Kept as a hash of the address per channel, so it survives erasing the
person: an old import or a stale event can never quietly start mailing an
erased, bounced or complaining address again.

Which messages a reason blocks:
- email: every reason blocks marketing; only reasons meaning "this address
  does not work" (a hard bounce, a provider rejection) also block
  transactional mail, so a complaint about a newsletter never stops an order
  confirmation.
- sms: every reason blocks every message. After STOP carriers require
  silence from that sender until the person texts START.
"""

import hashlib

from .. import clock
from ..db import insert_on_conflict
from ..models import Contact, Suppression

HARD_BOUNCE = "hard_bounce"
REJECTED = "rejected"
COMPLAINT = "complaint"
UNSUBSCRIBED = "unsubscribed"
SMS_STOP = "sms_stop"
ERASED = "erased"

# Email reasons that also block transactional messages.
ADDRESS_DOES_NOT_WORK = {HARD_BOUNCE, REJECTED}


def address_hash(address: str) -> str:
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def suppress(channel: str, address: str, reason: str, *, source: str = "") -> bool:
    """Suppress an address at once, across all flows. Returns False if it already was.

    For email the matching contact's ``suppressed`` flag (a cache read by the
    send path and by conditions) is set in the same transaction.
    """
    if channel not in ("email", "sms"):
        raise ValueError(f"unknown channel {channel!r}")
    if not address:
        return False
    now = clock.now()
    created = insert_on_conflict(Suppression, {
        "channel": channel, "address_hash": address_hash(address), "reason": reason[:64],
        "source": source[:64], "created_at": now,
    }, conflict=["channel", "address_hash"]) is not None
    if not created and reason in ADDRESS_DOES_NOT_WORK:
        # A hard bounce after an unsubscribe: the stronger reason wins.
        Suppression.objects.filter(channel=channel, address_hash=address_hash(address)).update(reason=reason)
    if channel == "email":
        Contact.objects.filter(email=address.strip().lower()).exclude(
            suppressed=True, suppressed_reason__in=ADDRESS_DOES_NOT_WORK - {reason}).update(
            suppressed=True, suppressed_reason=reason[:64], suppressed_at=now)
    return created


def unsuppress(channel: str, address: str) -> bool:
    """Lift a suppression (the person asked again, e.g. texted START or re-subscribed)."""
    deleted, _ = Suppression.objects.filter(channel=channel, address_hash=address_hash(address)).delete()
    if channel == "email":
        Contact.objects.filter(email=address.strip().lower()).update(
            suppressed=False, suppressed_reason="", suppressed_at=None)
    return bool(deleted)


def reason_for(channel: str, address: str) -> str | None:
    """The suppression reason of an address, or None."""
    if not address:
        return None
    return Suppression.objects.filter(channel=channel, address_hash=address_hash(address)).values_list(
        "reason", flat=True).first()


def reasons_for(channel: str, addresses: list[str]) -> dict[str, str]:
    """{address: suppression reason} for those of ``addresses`` that are suppressed (one query)."""
    hashes = {address_hash(address): address for address in addresses if address}
    if not hashes:
        return {}
    return {hashes[digest]: reason for digest, reason in Suppression.objects.filter(
        channel=channel, address_hash__in=list(hashes)).values_list("address_hash", "reason")}


def lift_opt_out(channel: str, address: str) -> bool:
    """The person asked again (texted START, re-subscribed): lift their own opt-out, never a bounce or an erasure."""
    if reason_for(channel, address) in (UNSUBSCRIBED, SMS_STOP):
        return unsuppress(channel, address)
    return False


def blocks(channel: str, reason: str | None, *, marketing: bool) -> bool:
    """Whether a suppression with this reason stops a message of this kind."""
    if not reason:
        return False
    if channel == "sms" or marketing:
        return True
    return reason in ADDRESS_DOES_NOT_WORK
