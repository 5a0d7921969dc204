"""Recording events: the one door through which every edge feeds the engine.

``record_event()`` is called in the host's request path (a Saleor hook, a
webhook view, the storefront tracking endpoint), so it does exactly one
INSERT and schedules processing for after the commit. Duplicates (hosts and
webhooks deliver at least once) are dropped by the unique dedupe key inside
that same statement. Validation happens later, in the worker: a malformed
event is stored and dead-lettered with a reason, never lost and never raised
into the shopper's request.
"""

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder

from . import clock
from .db import insert_on_conflict, insert_rows
from .engine import dispatch
from .models import Event

# What PostgreSQL cannot store in text or jsonb (and UTF-8 cannot encode): NUL and lone surrogates.
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def unstorable(*values) -> bool:
    """Whether any text among ``values`` (strings, or lists/dicts of them) holds NUL or a lone surrogate."""
    for value in values:
        if isinstance(value, str):
            if UNSTORABLE.search(value):
                return True
        elif isinstance(value, dict):
            if unstorable(*value.keys(), *value.values()):
                return True
        elif isinstance(value, (list, tuple)) and unstorable(*value):
            return True
    return False


def _storable(value):
    """``value`` with NUL and lone surrogates replaced by U+FFFD, in strings, keys and nested lists/dicts."""
    if isinstance(value, str):
        return UNSTORABLE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_storable(item) for item in value]
    return value


@dataclass(frozen=True)
class RecordedEvent:
    id: int | None  # None when the dedupe key was seen before
    dedupe_key: str

    @property
    def duplicate(self) -> bool:
        return self.id is None


def normalize_email(email) -> str:
    return (email or "").strip().lower() if isinstance(email, str) else ""


# A deliverable address: a dot-atom local part (no quoted strings) at a DNS name with an alphabetic
# top-level domain. Not an address literal (a@[127.0.0.1]), a bare host (a@localhost) or an IP (a@10.0.0.1).
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_TLD = r"(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})"
_ADDRESS = re.compile(rf"(?=[^@]{{1,64}}@){_LOCAL}@(?=.{{4,253}}$)(?:{_LABEL}\.)+{_TLD}")


def valid_email(address) -> bool:
    """Whether ``address`` is an email address we store and send to: the one check every door uses."""
    if not isinstance(address, str) or len(address) > 254:
        return False
    if not address.isascii():
        local, at, domain = address.rpartition("@")
        try:
            address = f"{local}{at}{domain.encode('idna').decode('ascii')}"  # an international domain name
        except UnicodeError:
            return False
    return _ADDRESS.fullmatch(address) is not None


def record_event(
    name: str,
    *,
    email: str | None = None,
    user_id: str | int | None = None,
    channel: str = "",
    payload: dict | None = None,
    occurred_at: datetime | None = None,
    dedupe_key: str | None = None,
) -> RecordedEvent:
    """Store a normalized event once and enqueue its processing on commit.

    ``dedupe_key`` should identify the occurrence (e.g. ``"order_created:<order id>"``).
    Without one, an event that gives ``occurred_at`` is deduplicated on its
    whole content; an event with neither is never deduplicated.
    """
    row = _event_row(name, email=email, user_id=user_id, channel=channel, payload=payload, occurred_at=occurred_at,
                     dedupe_key=dedupe_key)
    event_id = insert_on_conflict(Event, row, conflict=["dedupe_key"])
    if event_id is not None and not row["error"]:
        dispatch.event_recorded(event_id)
    return RecordedEvent(id=event_id, dedupe_key=row["dedupe_key"])


def record_events(events: list[dict]) -> list[RecordedEvent]:
    """``record_event(**kwargs)`` for each of ``events``, stored with one INSERT (the engine's derived events)."""
    rows = [_event_row(**kwargs) for kwargs in events]
    for row in rows:
        row["payload"] = json.loads(row["payload"])  # insert_rows serializes JSON columns itself
    inserted = dict((key, pk) for pk, key in insert_rows(Event, rows, conflict=["dedupe_key"],
                                                          returning="id, dedupe_key"))
    recorded = []
    for row in rows:
        event_id = inserted.get(row["dedupe_key"])
        if event_id is not None and not row["error"]:
            dispatch.event_recorded(event_id)
        recorded.append(RecordedEvent(id=event_id, dedupe_key=row["dedupe_key"]))
    return recorded


def _event_row(name: str, *, email=None, user_id=None, channel: str = "", payload=None, occurred_at=None,
               dedupe_key=None) -> dict:
    """The Event row to store (payload as JSON text): cleaned, keyed, or marked dead with the reason."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("record_event() needs an event name")
    now = clock.now()
    email = normalize_email(email)
    user_id = "" if user_id is None else str(user_id)
    error = ""
    try:
        payload_json = json.dumps(payload if payload is not None else {}, cls=DjangoJSONEncoder, sort_keys=True)
    except (TypeError, ValueError, RecursionError) as exc:
        # Keep what we can read; the worker dead-letters it with this reason.
        try:
            payload = {"unserializable": repr(payload)[:10000]}
        except RecursionError:
            payload = {"unserializable": "(nested too deeply to keep)"}
        payload_json = json.dumps(payload)
        error = f"payload is not JSON-serializable: {exc}"[:1000]
    texts = [name, email, user_id, channel, dedupe_key or ""]
    if unstorable(*texts) or (("\\u0000" in payload_json or "\\ud" in payload_json) and unstorable(payload)):
        # Kept, readable and dead-lettered: PostgreSQL would refuse the row and the event would be lost.
        name, email, user_id, channel, dedupe_key = (_storable(text) for text in texts)
        payload_json = json.dumps(_storable(payload), cls=DjangoJSONEncoder, sort_keys=True)
        error = error or "the event holds NUL bytes or lone surrogates (replaced with U+FFFD)"
    if not dedupe_key:
        if occurred_at is None:
            dedupe_key = f"auto:{uuid.uuid4()}"
        else:
            basis = "\x1f".join([name, email, user_id, channel, occurred_at.isoformat(), payload_json])
            dedupe_key = "sha256:" + hashlib.sha256(basis.encode()).hexdigest()
    dedupe_key = dedupe_key[:255]

    return {
        "name": name[:100], "occurred_at": occurred_at or now, "received_at": now, "email": email[:254],
        "user_id": user_id[:100], "channel": channel[:100], "payload": payload_json, "dedupe_key": dedupe_key,
        "status": Event.Status.DEAD if error else Event.Status.PENDING, "error": error,
    }
