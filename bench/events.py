"""Batched event processing against its limit: the same rows written by plain multi-row INSERTs.

``python -m bench events``. N events (default 20,000: customer_created, checkout_updated and
order_created, over N/4 contacts, so that most people have several events and a batch has
several waves) are stored pending; three live flows whose first step is a wait trigger on them:

* welcome: ``customer_created``, re-entry once, wait 1 day, email;
* cart: ``checkout_updated``, re-entry single_active, goal ``contact.order_count >= 1``, wait 4 hours, email;
* thanks: ``order_created``, re-entry always, wait 2 days, email.

One process runs ``processing.process_pending(1000)`` until nothing is pending (orders derive
``first_order`` / ``nth_order`` events, which are processed too). Measured: events/s, and the
CPU per event of this process and of its PostgreSQL backend.

The limit, in the same run: every row that processing wrote (events updated, contacts,
enrolments, step executions, trail rows, idle timers, derived events, conversions) is read
back, the tables are reset, and the same rows are written again by one multi-row INSERT per
table (``INSERT … SELECT FROM unnest``, with their ids) and one UPDATE of the events, in as
many transactions as processing used batches. Nothing else: no reads, no decisions.
"""

import cProfile
import io
import json
import pstats
import random
import time
from datetime import timedelta
from unittest import mock

from bench.common import RESULTS, CpuMeter, fmt_int, mjml, publish, say, short_paths, truncate, vacuum_analyze

TARGET = 5000
BATCH = 1000
# Tables the engine writes while processing (ids grow, so "new rows" are those above the old maximum).
WRITTEN = ["contact", "enrolment", "stepexecution", "trailentry", "idletimer", "conversion", "event"]


def publish_flows():
    def flow(trigger, wait, **top):
        return {"trigger": {"event": trigger}, "kind": "marketing", "start": "wait", **top, "steps": {
            "wait": {"type": "wait", "duration": wait, "next": "mail"},
            "mail": {"type": "send_email", "subject": "Hello {{ contact.first_name }}",
                     "mjml": mjml("Hi {{ contact.first_name }}"), "next": None}}}

    publish(flow("customer_created", {"days": 1}, reentry={"mode": "once"}), "welcome")
    publish(flow("checkout_updated", {"hours": 4}, reentry={"mode": "single_active"},
                 goal={"field": "contact.order_count", "op": "gte", "value": 1}), "cart")
    publish(flow("order_created", {"days": 2}, reentry={"mode": "always"}), "thanks")


def store_events(n: int, seed: int = 10) -> int:
    """N pending events, received over the last hour (setup: one INSERT per 5,000, not measured)."""
    from saleor_flows import clock
    from saleor_flows.db import insert_rows
    from saleor_flows.models import Event

    rng = random.Random(seed)
    now = clock.now()
    people = max(1, n // 4)
    rows = []
    for i in range(n):
        person = rng.randrange(people)
        at = now - timedelta(hours=1) + timedelta(seconds=3600 * i / n)
        kind = rng.choices(["customer_created", "checkout_updated", "order_created"], [2, 5, 3])[0]
        token = f"t{person}-{i // 7}"
        payload = {
            "customer_created": {"first_name": f"Jane{person}", "last_name": "Doe", "language_code": "en"},
            "checkout_updated": {"token": token, "email": f"p{person}@example.com", "lines": [{"sku": "A", "q": 1}],
                                 "billing_address": {"first_name": f"Jane{person}", "last_name": "Doe"}},
            "order_created": {"id": f"o{i}", "total_gross_amount": "42.50", "currency": "USD",
                              "checkout_token": token},
        }[kind]
        rows.append({"name": kind, "occurred_at": at, "received_at": at, "email": f"p{person}@example.com",
                     "user_id": f"u{person}" if person % 2 else "", "channel": "default", "payload": payload,
                     "dedupe_key": f"{kind}:{i}", "status": "pending", "error": ""})
    for start in range(0, n, 5000):
        insert_rows(Event, rows[start:start + 5000])
    return people


def max_ids():
    from django.db import connection

    with connection.cursor() as cursor:
        result = {}
        for table in WRITTEN:
            cursor.execute(f"SELECT coalesce(max(id), 0) FROM saleor_flows_{table}")
            result[table] = cursor.fetchone()[0]
    return result


def process_everything():
    """process_pending(1000) until nothing is left. Returns (events, bounds, CpuMeter, seconds not processing).

    ``bounds``: after each batch, the time and the highest id of each written table, so that the
    limit writes the same rows in the same transactions (those lookups are timed and left out).
    """
    from saleor_flows import clock
    from saleor_flows.engine import dispatch
    from saleor_flows.engine.processing import process_pending

    events, bounds, bookkeeping = 0, [], 0.0
    # Celery mode with the enqueue of derived events a no-op: they stay pending and the loop takes them.
    with dispatch.forced("celery"), mock.patch.object(dispatch, "event_recorded", lambda event_id: None), \
            CpuMeter() as meter:
        while True:
            done = process_pending(BATCH)
            if not done:
                break
            events += done
            t0 = time.perf_counter()
            bounds.append((clock.now(), max_ids()))
            bookkeeping += time.perf_counter() - t0
    return events, bounds, meter, bookkeeping


# --- the limit: the same rows, written by plain multi-row statements ---------------------------------

def _columns(cursor, table):
    cursor.execute("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass"
                   " AND attnum > 0 AND NOT attisdropped ORDER BY attnum", [table])
    return cursor.fetchall()


def capture(before: dict) -> dict:
    """Every row processing wrote: {table: (columns, rows)}, plus the processed events' final columns."""
    from django.db import connection

    connection.ensure_connection()
    written = {}
    with connection.connection.cursor() as cursor:
        for table in WRITTEN:
            name = f"saleor_flows_{table}"
            columns = _columns(cursor, name)
            cursor.execute(f"SELECT {', '.join(c for c, _ in columns)} FROM {name} WHERE id > %s ORDER BY id",
                           [before[table]])
            written[table] = (columns, cursor.fetchall())
        cursor.execute("SELECT id, status, error, contact_id, processed_at FROM saleor_flows_event"
                       " WHERE id <= %s ORDER BY id", [before["event"]])
        written["event_updates"] = cursor.fetchall()
    return written


def reset(before: dict):
    """Back to the state before processing: new rows gone, stored events pending again."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE saleor_flows_statdelta")
        for table in ["trailentry", "conversion", "stepexecution", "enrolment", "idletimer"]:
            cursor.execute(f"DELETE FROM saleor_flows_{table} WHERE id > %s", [before[table]])
        cursor.execute("UPDATE saleor_flows_event SET status = 'pending', contact_id = NULL, processed_at = NULL")
        cursor.execute("DELETE FROM saleor_flows_event WHERE id > %s", [before["event"]])
        cursor.execute("DELETE FROM saleor_flows_contact WHERE id > %s", [before["contact"]])
    vacuum_analyze()


def _insert_sql(table, columns):
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
    return f"INSERT INTO saleor_flows_{table} ({', '.join(c for c, _ in columns)}) SELECT * FROM unnest({arrays})"


def _params(columns, rows):
    params = []
    for index, (_, kind) in enumerate(columns):
        values = [row[index] for row in rows]
        if kind == "jsonb":
            values = [None if v is None else json.dumps(v) for v in values]
        params.append(values)
    return params


def write_plainly(written: dict, bounds: list) -> CpuMeter:
    """The captured rows again, each in the transaction (batch) that wrote it, one statement per table."""
    from django.db import connection, transaction

    order = ["contact", "event", "enrolment", "stepexecution", "trailentry", "idletimer", "conversion"]
    update_sql = ("UPDATE saleor_flows_event SET status = v.status, error = v.error, contact_id = v.contact_id,"
                  " processed_at = v.processed_at FROM unnest(%s::bigint[], %s::varchar[], %s::text[], %s::bigint[],"
                  " %s::timestamptz[]) AS v(id, status, error, contact_id, processed_at)"
                  " WHERE saleor_flows_event.id = v.id")
    batches = []  # built before the clock starts: the limit is the database's part
    previous_at, previous_ids = None, None
    for at, ids in bounds:
        statements = []
        updates = [row for row in written["event_updates"] if row[4] <= at and (previous_at is None or row[4] > previous_at)]
        if updates:
            statements.append((update_sql, [list(column) for column in zip(*updates)]))
        for table in order:
            columns, rows = written[table]
            low = previous_ids[table] if previous_ids else 0
            chunk = [row for row in rows if low < row[0] <= ids[table]]
            if chunk:
                statements.append((_insert_sql(table, columns), _params(columns, chunk)))
        batches.append(statements)
        previous_at, previous_ids = at, ids
    connection.ensure_connection()
    with CpuMeter() as meter:
        for statements in batches:
            with transaction.atomic(), connection.connection.cursor() as cursor:
                for statement in statements:
                    cursor.execute(*statement)
    return meter


def profile_one_batch(n_profile: int, top: int = 22) -> str:
    from saleor_flows.engine import dispatch
    from saleor_flows.engine.processing import process_pending

    profiler = cProfile.Profile(time.process_time)  # CPU time: waiting for a shared core is not the code's
    with dispatch.forced("celery"), mock.patch.object(dispatch, "event_recorded", lambda event_id: None):
        profiler.enable()
        process_pending(n_profile)
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"saleor_flows|models/query\.py.*_fetch_all|psycopg/cursor\.py", top)
    return short_paths(out.getvalue())


def run(n=20_000, n_profile=1_000):
    from saleor_flows.models import Enrolment, Event, StepExecution, TrailEntry

    say(f"events: {fmt_int(n)} pending events (customer_created, checkout_updated, order_created) over "
        f"{fmt_int(max(1, n // 4))} contacts, 3 live flows whose first step is a wait; process_pending({BATCH:,}) "
        f"in 1 process")
    truncate()
    publish_flows()
    store_events(n)
    vacuum_analyze()
    before = max_ids()

    events, bounds, meter, bookkeeping = process_everything()
    meter.wall -= bookkeeping
    batches = len(bounds)
    rate = events / meter.wall
    say(f"  processed {fmt_int(events)} events (incl. derived first/nth_order) in {batches} batches, "
        f"{meter.wall:,.1f} s = {rate:,.0f} events/s")
    say(f"    {meter.per(events)}")
    pending = Event.objects.filter(status="pending").count()
    enrolments, executions, trail = Enrolment.objects.count(), StepExecution.objects.count(), TrailEntry.objects.count()
    say(f"    wrote {fmt_int(enrolments)} enrolments, {fmt_int(executions)} step executions, "
        f"{fmt_int(trail)} trail rows; {fmt_int(pending)} events left pending"
        f"{'' if pending == 0 and executions == enrolments else '  (UNEXPECTED)'}")

    written = capture(before)
    rows = sum(len(rows) for table, (_, rows) in ((t, written[t]) for t in WRITTEN)) + len(written["event_updates"])
    reset(before)
    limit = write_plainly(written, bounds)
    limit_rate = events / limit.wall
    say(f"  limit: the same {fmt_int(rows)} rows by plain multi-row INSERT/UPDATE, {batches} transactions: "
        f"{limit.wall:,.2f} s = {limit_rate:,.0f} events/s")
    say(f"    {limit.per(events)}")
    share = rate / limit_rate
    cpu_rate, cpu_limit = events / (meter.cpu + meter.pg), events / (limit.cpu + limit.pg)
    say(f"  processing reaches {share:.0%} of the limit (wall clock); by CPU seconds (this process + its backend, "
        f"which waiting for a shared core does not inflate): {cpu_rate:,.0f} vs {cpu_limit:,.0f} events/s, "
        f"{cpu_rate / cpu_limit:.0%}")
    RESULTS.add("events: batched processing, 1 process (3 flows, first steps waits)",
                f"{rate:,.0f} events/s; the same rows by plain INSERTs {limit_rate:,.0f}/s ({share:.0%}); "
                f"CPU-bound {cpu_rate:,.0f} vs {cpu_limit:,.0f}/s ({cpu_rate / cpu_limit:.0%})",
                f"at least {TARGET:,} events/s and 50 % of the limit", rate >= TARGET and share >= 0.5)

    # Where the time goes: a profile of one more batch.
    truncate()
    publish_flows()
    store_events(n_profile, seed=11)
    vacuum_analyze()
    text = profile_one_batch(n_profile)
    say(f"  cProfile (CPU time) of one batch of {fmt_int(n_profile)} events, cumulative:")
    say("    " + "\n    ".join(line for line in text.strip().splitlines() if line.strip()))
    return {"rate": rate, "limit": limit_rate, "share": share, "cpu_rate": cpu_rate, "cpu_limit": cpu_limit}


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
