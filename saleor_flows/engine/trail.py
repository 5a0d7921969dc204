"""The per-contact "why" trail.

Every decision the engine takes about a contact leaves one row here, with the
values that decided it, so that support can answer "why did (or didn't) Jane
get this email?" without reading logs.
"""

from django.core.serializers.json import DjangoJSONEncoder
import json

from .. import clock
from ..models import TrailEntry


def _plain(detail: dict) -> dict:
    # Facts may hold datetimes or Decimals: store them as JSON would show them.
    return json.loads(json.dumps(detail, cls=DjangoJSONEncoder))


def record(contact_id: int, kind: str, *, enrolment_id: int | None = None, step_id: str = "", **detail):
    TrailEntry.objects.create(
        contact_id=contact_id, enrolment_id=enrolment_id, step_id=step_id or "",
        kind=kind, detail=_plain(detail), at=clock.now(),
    )


def record_many(entries: list[dict]):
    """Many rows in one INSERT; each dict has ``contact_id``, ``kind``, ``enrolment_id``, ``step_id``, ``detail``."""
    at = clock.now()
    TrailEntry.objects.bulk_create([
        TrailEntry(contact_id=e["contact_id"], enrolment_id=e.get("enrolment_id"), step_id=e.get("step_id") or "",
                   kind=e["kind"], detail=_plain(e.get("detail") or {}), at=at) for e in entries])


def describe(entry: TrailEntry) -> str:
    """One readable line, e.g. ``2026-01-05 10:00 welcome/email_1 sent subject='Welcome'``."""
    where = ""
    if entry.enrolment_id:
        where = f"{entry.enrolment.flow.slug}/{entry.step_id}" if entry.step_id else entry.enrolment.flow.slug
    details = " ".join(f"{key}={value!r}" for key, value in entry.detail.items())
    return f"{entry.at:%Y-%m-%d %H:%M} {where} {entry.kind} {details}".replace("  ", " ").strip()
