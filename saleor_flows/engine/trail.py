"""The per-contact "why" trail.

Every decision the engine takes about a contact leaves one row here, with the
values that decided it, so that support can answer "why did (or didn't) Jane
get this email?" without reading logs.
"""

from .. import clock
from ..db import insert_rows
from ..models import TrailEntry


def entry(contact_id: int, kind: str, *, enrolment_id: int | None = None, step_id: str = "", **detail) -> dict:
    """One trail row, not written yet: a batch collects them and ``write``s them in one INSERT."""
    return {"contact_id": contact_id, "enrolment_id": enrolment_id, "step_id": step_id or "", "kind": kind,
            "detail": detail, "at": clock.now()}  # (serialized as JSON by insert_rows)


def write(rows: list[dict]):
    insert_rows(TrailEntry, rows)


def record(contact_id: int, kind: str, *, enrolment_id: int | None = None, step_id: str = "", **detail):
    write([entry(contact_id, kind, enrolment_id=enrolment_id, step_id=step_id, **detail)])


def describe(entry: TrailEntry) -> str:
    """One readable line, e.g. ``2026-01-05 10:00 welcome/email_1 sent subject='Welcome'``."""
    where = ""
    if entry.enrolment_id:
        where = f"{entry.enrolment.flow.slug}/{entry.step_id}" if entry.step_id else entry.enrolment.flow.slug
    details = " ".join(f"{key}={value!r}" for key, value in entry.detail.items())
    return f"{entry.at:%Y-%m-%d %H:%M} {where} {entry.kind} {details}".replace("  ", " ").strip()
