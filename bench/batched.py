"""A prototype of set-based event processing, to size the batched design the ingest target needs.

NOT the engine. It does, for a batch of pending events in one transaction and
with a fixed number of statements per batch, the writes ``process_event()``
does one event at a time for the ingest benchmark's case (new contacts, wait
first steps): lock the events, create and lock the contacts, fold the profile
in, check re-entry, enrol in every matching live flow, schedule the first
steps, write the trail, mark the events processed. Entry filters and due times
use the engine's own ``evaluate()`` and ``due_at_for()``.

It leaves out what the ingest case does not exercise (exit checks of active
enrolments, ``wait_event`` wake-ups, history conditions, immediate first
steps, dead-lettering) and so is an upper bound for a batched engine; the
point is the order of magnitude the database allows on this machine.
"""

import json
from datetime import timedelta

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import JSONField, Q

from saleor_flows import clock
from saleor_flows.engine.conditions import EvalContext, evaluate
from saleor_flows.engine.waits import due_at_for
from saleor_flows.models import Contact, Enrolment, Event, Flow, StepExecution, TrailEntry

PROFILE_FIELDS = ("first_name", "last_name", "locale")


# --- set-based writes: one statement for many rows, no per-row ORM work -------------------------

def _column(field, values):
    """(SQL array type, values ready for the driver) for one column."""
    if isinstance(field, JSONField):
        return "jsonb[]", [None if v is None else json.dumps(v, cls=DjangoJSONEncoder) for v in values]
    db_type = field.rel_db_type(connection) if field.is_relation else field.db_type(connection)
    return f"{db_type}[]", values


def _cursor():
    """A plain psycopg cursor on Django's connection (same transaction): parameters are bound by the
    server, so arrays travel as parameters instead of being quoted into the SQL text by Python."""
    connection.ensure_connection()
    return connection.connection.cursor()


def insert_rows(model, rows: list[dict], *, returning: str = "id", on_conflict: str = ""):
    """INSERT INTO <table> (<every column>) SELECT * FROM unnest(<one array per column>) [RETURNING …].

    ``rows`` give values by attname (``contact_id``); other columns take the model's defaults.
    """
    if not rows:
        return []
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns, arrays, params = [], [], []
    for field in fields:
        default = field.get_default() if field.has_default() else None
        values = [row.get(field.attname, default) for row in rows]
        array_type, values = _column(field, values)
        columns.append(connection.ops.quote_name(field.column))
        arrays.append(f"%s::{array_type}")
        params.append(values)
    sql = (f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)})"
           f" SELECT * FROM unnest({', '.join(arrays)}) {on_conflict}")
    with _cursor() as cursor:
        cursor.execute(sql + (f" RETURNING {returning}" if returning else ""), params)
        return cursor.fetchall() if returning else []


def update_rows(model, ids: list[int], values: dict[str, list]):
    """UPDATE <table> SET col = v.col … FROM unnest(ids, <one array per column>) WHERE id = v.id."""
    if not ids:
        return
    names, arrays, params = ["id"], ["%s::bigint[]"], [ids]
    for attname, column_values in values.items():
        field = next(f for f in model._meta.concrete_fields if f.attname == attname)
        array_type, column_values = _column(field, column_values)
        names.append(connection.ops.quote_name(field.column))
        arrays.append(f"%s::{array_type}")
        params.append(column_values)
    table = connection.ops.quote_name(model._meta.db_table)
    sets = ", ".join(f"{name} = v.{name}" for name in names[1:])
    with _cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET {sets} FROM unnest({', '.join(arrays)}) AS v({', '.join(names)})"
                       f" WHERE {table}.id = v.id", params)


def process_batch(event_ids: list[int], *, trail_rows: bool = True) -> int:
    """``trail_rows=False``: no 'entered'/'waiting' trail rows (they would be read from the enrolment
    and step execution rows instead), to size what they cost."""
    now = clock.now()
    with transaction.atomic():
        events = list(Event.objects.select_for_update(skip_locked=True)
                      .filter(id__in=event_ids, status=Event.Status.PENDING).order_by("id"))
        if not events:
            return 0
        # contacts: create the missing ones (one INSERT), then lock all of them (one SELECT)
        insert_rows(Contact, [{"email": e.email or None, "user_id": e.user_id or None, "created_at": e.occurred_at,
                               "updated_at": now} for e in events], returning="", on_conflict="ON CONFLICT DO NOTHING")
        emails = [e.email for e in events if e.email]
        user_ids = [e.user_id for e in events if e.user_id]
        contacts = list(Contact.objects.select_for_update()
                        .filter(Q(email__in=emails) | Q(user_id__in=user_ids)).order_by("id"))
        by_user = {c.user_id: c for c in contacts if c.user_id}
        by_email = {c.email: c for c in contacts if c.email}
        changed = {}
        for event in events:
            contact = by_user.get(event.user_id) or by_email[event.email]
            event.contact = contact
            if event.user_id and not contact.user_id:
                contact.user_id = event.user_id
                changed[contact.pk] = contact
            payload = event.payload if isinstance(event.payload, dict) else {}
            for field, key in zip(PROFILE_FIELDS, ("first_name", "last_name", "language_code")):
                value = payload.get(key)
                if isinstance(value, str) and value and getattr(contact, field) != value:
                    setattr(contact, field, value)
                    contact.updated_at = now
                    changed[contact.pk] = contact
        if changed:  # one UPDATE
            rows = list(changed.values())
            update_rows(Contact, [c.pk for c in rows], {name: [getattr(c, name) for c in rows]
                                                        for name in ("user_id", *PROFILE_FIELDS, "updated_at")})

        # live flows for these event names, once per batch, without the draft definitions
        flows = list(Flow.objects.select_related("live_version").defer("definition")
                     .filter(status=Flow.Status.LIVE, trigger_event__in={e.name for e in events},
                             live_version__isnull=False))
        contact_ids = [c.pk for c in contacts]
        previous = {}  # (flow, contact) -> (any active, latest entered_at): one SELECT
        for row in (Enrolment.objects.filter(flow__in=flows, contact_id__in=contact_ids)
                    .values("flow_id", "contact_id", "status", "entered_at")):
            active, latest = previous.get((row["flow_id"], row["contact_id"]), (False, None))
            previous[(row["flow_id"], row["contact_id"])] = (
                active or row["status"] == Enrolment.Status.ACTIVE, max(filter(None, [latest, row["entered_at"]])))

        new_enrolments, trail = [], []
        for event in events:
            contact = event.contact
            context = None
            for flow in flows:
                if flow.trigger_event != event.name:
                    continue
                definition = flow.live_version.definition
                trigger_filter = definition["trigger"].get("filter")
                if trigger_filter:
                    context = context or EvalContext(contact=contact.as_context(), event=event.payload, now=now)
                    if not evaluate(trigger_filter, context).result:
                        trail.append({"contact_id": contact.pk, "kind": "not_entered", "at": now,
                                      "detail": {"flow": flow.slug, "reason": "entry filter did not match"}})
                        continue
                rule = definition.get("reentry") or {"mode": "once"}
                seen = previous.get((flow.pk, contact.pk))
                blocked = seen and (rule["mode"] == "once" or (rule["mode"] == "single_active" and seen[0]) or (
                    rule["mode"] == "once_per_period" and seen[1] > now - timedelta(days=rule["days"])))
                if blocked:
                    trail.append({"contact_id": contact.pk, "kind": "not_entered", "at": now,
                                  "detail": {"flow": flow.slug, "reason": f"re-entry: {rule['mode']}"}})
                    continue
                previous[(flow.pk, contact.pk)] = (True, now)
                new_enrolments.append(Enrolment(flow=flow, version=flow.live_version, contact=contact,
                                                trigger_event=event, entered_at=now))
        ids = insert_rows(Enrolment, [{"flow_id": e.flow.pk, "version_id": e.version.pk, "contact_id": e.contact.pk,
                                       "trigger_event_id": e.trigger_event.pk, "status": "active", "entered_at": now}
                                      for e in new_enrolments])  # one INSERT
        for enrolment, (pk,) in zip(new_enrolments, ids):
            enrolment.pk = pk
        enrolments = new_enrolments

        executions = []
        for enrolment in enrolments:
            definition = enrolment.version.definition
            step_id = definition["start"]
            step = definition["steps"][step_id]
            due = due_at_for(step, now=now, contact=enrolment.contact.as_context(),
                             event_payload=enrolment.trigger_event.payload)
            executions.append({"enrolment_id": enrolment.pk, "step_id": step_id, "due_at": due, "state": "pending"})
            trail.append({"contact_id": enrolment.contact.pk, "enrolment_id": enrolment.pk, "kind": "entered", "at": now,
                          "detail": {"flow": enrolment.flow.slug, "version": enrolment.version.number,
                                     "event": enrolment.trigger_event.name, "event_id": enrolment.trigger_event.pk}})
            trail.append({"contact_id": enrolment.contact.pk, "enrolment_id": enrolment.pk, "step_id": step_id,
                          "kind": "waiting", "at": now, "detail": {"until": due.isoformat()}})
        insert_rows(StepExecution, executions, returning="")  # one INSERT
        if trail_rows:
            insert_rows(TrailEntry, trail, returning="")  # one INSERT
        update_rows(Event, [e.pk for e in events], {"contact_id": [e.contact.pk for e in events],
                                                    "status": [Event.Status.PROCESSED] * len(events),
                                                    "processed_at": [now] * len(events)})  # one UPDATE
    return len(events)
