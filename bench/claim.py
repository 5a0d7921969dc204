"""Claiming due steps (target: a batch of 1,000 from a backlog of 1,000,000 pending in under 20 ms,
cost flat with the backlog).

The step_executions table is filled with pending rows by set-based SQL
(``INSERT … SELECT generate_series``, all referencing one enrolment: this is
setup, the ORM is bypassed), due times spread uniformly over now ± 1 day so
that about half are due. After ``VACUUM ANALYZE`` the real
``sweep.claim_due(1000, now)`` is timed 20 times; it commits, like the sweep,
and the claimed rows are put back to pending after each run (not timed), due
just before ``now`` (so the next run claims the next-oldest rows), so the
backlog keeps its size and its due half. Backlogs of 10k, 100k and 1M (grown in place).
"""

import time

from bench.common import RESULTS, Dist, fmt_int, say, truncate

BATCH = 1000
RUNS = 20
SIZES = [10_000, 100_000, 1_000_000]
TARGET_MS = 20


def make_enrolment():
    """One flow, version, contact, event and enrolment for every row to point at."""
    from saleor_flows import clock
    from saleor_flows.models import Contact, Enrolment, Event
    from bench.common import mjml, publish

    now = clock.now()
    flow = publish({"trigger": {"event": "bench"}, "start": "wait", "kind": "transactional", "steps": {
        "wait": {"type": "wait", "duration": {"hours": 1}, "next": "mail"},
        "mail": {"type": "send_email", "subject": "Hi", "mjml": mjml("Hi"), "next": None}}}, "claim-bench")
    contact = Contact.objects.create(email="claim@example.com", created_at=now, updated_at=now)
    event = Event.objects.create(name="bench", occurred_at=now, received_at=now, email=contact.email,
                                 dedupe_key="bench:1", status="processed", contact=contact)
    return Enrolment.objects.create(flow=flow, version=flow.live_version, contact=contact, trigger_event=event,
                                    entered_at=now)


def fill(enrolment_id, first, last, now):
    """Rows first..last (occurrence = the row number keeps the unique key unique), half of them due."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        # Setup, not measured: without the analytics trigger (a join and a statdelta row per inserted
        # row, which made 1,000,000 rows take about 20 minutes); the claim itself runs with it.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT setseed(%s)", [first / 10_000_000])
        cursor.execute(
            "INSERT INTO saleor_flows_stepexecution"
            " (enrolment_id, step_id, occurrence, state, due_at, waiting_for, attempts, claimed_at, finished_at, result)"
            " SELECT %s, 'wait', g, 'pending', %s + (random() - 0.5) * interval '2 days', '', 0, NULL, NULL, '{}'::jsonb"
            " FROM generate_series(%s, %s) AS g",
            [enrolment_id, now, first, last],
        )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE saleor_flows_stepexecution")


def reset(ids, now):
    """Claimed rows back to pending, due just now: at the back of the due queue, so the next claim
    takes the next-oldest rows (fresh places in the heap and indexes, as in production)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE saleor_flows_stepexecution SET state = 'pending', claimed_at = NULL,"
                       " due_at = %s - interval '1 microsecond' WHERE id = ANY(%s)", [now, ids])


def time_claims(now, runs=RUNS):
    """claim_due(BATCH, now) ``runs`` times; per run: total, SELECT and UPDATE seconds."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from saleor_flows.engine.sweep import claim_due

    totals, selects, updates = [], [], []
    for _ in range(runs):
        connection.queries_log.clear()  # a full log (9,000 entries) would capture nothing
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            ids = claim_due(BATCH, now)
            totals.append(time.perf_counter() - t0)
        if len(ids) != BATCH:
            raise RuntimeError(f"claim_due returned {len(ids)} rows, expected {BATCH}")
        queries = captured.captured_queries
        selects.append(sum(float(q["time"]) for q in queries if q["sql"].startswith("SELECT")))
        updates.append(sum(float(q["time"]) for q in queries if q["sql"].startswith("UPDATE")))
        reset(ids, now)
    return Dist(totals), Dist(selects), Dist(updates)


def explain(now):
    """EXPLAIN (ANALYZE, BUFFERS) of the exact statements claim_due() sends, rolled back."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from saleor_flows.engine.sweep import claim_due

    connection.queries_log.clear()  # a full log (9,000 entries) would capture nothing
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        claim_due(BATCH, now)
        transaction.set_rollback(True)
    statements = [q["sql"] for q in captured.captured_queries if q["sql"].startswith(("SELECT", "UPDATE"))]
    plans = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plans.append((sql, [row[0] for row in cursor.fetchall()]))
        transaction.set_rollback(True)
    return plans


CLAIM_SQL = ("SELECT id FROM saleor_flows_stepexecution WHERE due_at <= %s AND state = 'pending'"
             " ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED")


def alternatives(now, runs=RUNS):
    """The same claim written differently, at the largest backlog (SQL here, not engine code):

    A  claim_due() as it is (since session 4 the one statement B, so A and B measure the same SQL);
    B  one statement: UPDATE … WHERE id IN (SELECT … SKIP LOCKED) RETURNING id;
    B' B without the redundant single-column index on enrolment_id (flows_execution_once
       starts with that column), dropped for the measurement and recreated after;
    C  a narrow queue table (execution_id, due_at) holding pending work only, claimed with
       DELETE … WHERE execution_id IN (SELECT … SKIP LOCKED) RETURNING (a temporary table).
    Each: VACUUM ANALYZE and CHECKPOINT first (so all pay the same full-page writes), then 20 runs.
    """
    from django.db import connection, transaction

    from saleor_flows.engine.sweep import claim_due

    def one_statement():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE saleor_flows_stepexecution SET state = 'claimed', claimed_at = %s"
                           f" WHERE id IN ({CLAIM_SQL}) RETURNING id", [now, now, BATCH])
            return [row[0] for row in cursor.fetchall()]

    def from_queue():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM flows_bench_due_queue WHERE execution_id IN (SELECT execution_id"
                           " FROM flows_bench_due_queue WHERE due_at <= %s ORDER BY due_at LIMIT %s"
                           " FOR UPDATE SKIP LOCKED) RETURNING execution_id", [now, BATCH])
            return [row[0] for row in cursor.fetchall()]

    def requeue(ids, now):
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO flows_bench_due_queue"
                           " SELECT unnest(%s::bigint[]), %s - interval '1 microsecond'", [ids, now])

    def measure(label, claim, put_back, table="saleor_flows_stepexecution"):
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {table}")
            cursor.execute("CHECKPOINT")
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            ids = claim()
            times.append(time.perf_counter() - t0)
            assert len(ids) == BATCH, len(ids)
            put_back(ids, now)
        dist = Dist(times)
        say(f"    {label:<72} median {dist.median * 1e3:5.1f} ms  min {min(times) * 1e3:5.1f}  max {max(times) * 1e3:5.1f} ms")
        return dist.median

    results = {}
    say(f"  alternatives at this backlog (each after VACUUM + CHECKPOINT, {runs} runs; SQL in bench/claim.py):")
    results["A"] = measure("A claim_due() as it is (one statement, as B)",
                           lambda: claim_due(BATCH, now), reset)
    results["B"] = measure("B one statement: UPDATE … WHERE id IN (SELECT … SKIP LOCKED) RETURNING", one_statement, reset)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index"
                       " WHERE indrelid = 'saleor_flows_stepexecution'::regclass AND indnatts = 1"
                       " AND NOT indisunique AND NOT indisprimary AND indpred IS NULL")
        redundant = cursor.fetchall()
        for name, _ in redundant:
            cursor.execute(f"DROP INDEX {name}")
    try:
        results["B'"] = measure(f"B' B without the redundant index {', '.join(n for n, _ in redundant) or '(none found)'}",
                                one_statement, reset)
    finally:
        with connection.cursor() as cursor:
            for _, definition in redundant:
                cursor.execute(definition)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE flows_bench_due_queue (execution_id bigint PRIMARY KEY,"
                       " due_at timestamptz NOT NULL)")
        cursor.execute("INSERT INTO flows_bench_due_queue SELECT id, due_at FROM saleor_flows_stepexecution"
                       " WHERE state = 'pending'")
        cursor.execute("CREATE INDEX ON flows_bench_due_queue (due_at)")
    try:
        results["C"] = measure("C narrow queue table: DELETE … WHERE id IN (SELECT … SKIP LOCKED) RETURNING",
                               from_queue, requeue, table="flows_bench_due_queue")
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE flows_bench_due_queue")
    return results


def sizes_report():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_table_size('saleor_flows_stepexecution')),"
                       " pg_size_pretty(pg_relation_size('flows_execution_due'))")
        return cursor.fetchone()


def run(sizes=SIZES):
    from saleor_flows import clock

    say(f"claim: claim_due({BATCH:,}) from a backlog of pending step executions (about half due), {RUNS} runs each")
    truncate()
    enrolment = make_enrolment()
    now = clock.now()
    filled = 0
    medians = {}
    for size in sizes:
        t0 = time.perf_counter()
        fill(enrolment.pk, filled + 1, size, now)
        fill_s = time.perf_counter() - t0
        filled = size
        table, index = sizes_report()
        total, select, update = time_claims(now)
        medians[size] = total.median
        say(f"  claim: backlog {size:>9,}  batch {BATCH:,}  {total.describe()}")
        say(f"         the statement (UPDATE … WHERE id IN (SELECT … SKIP LOCKED) RETURNING) median"
            f" {(select.median + update.median) * 1e3:.1f} ms, the rest (COMMIT, Python)"
            f" {(total.median - select.median - update.median) * 1e3:.1f} ms;"
            f" first run {total.values[0] * 1e3:.1f} ms, last {total.values[-1] * 1e3:.1f} ms")
        say(f"         (filling to {fmt_int(size)} rows took {fill_s:,.1f} s with VACUUM ANALYZE;"
            f" table {table}, due index {index})")
    plans = explain(now)
    say(f"  EXPLAIN (ANALYZE, BUFFERS) at a backlog of {fmt_int(filled)}:")
    for sql, lines in plans:
        say(f"    -- {sql if len(sql) < 400 else sql[:300] + ' … ' + sql[-80:]}")
        for line in lines:
            say(f"    {line if len(line) < 200 else line[:160] + ' …'}")
    alt = alternatives(now)
    largest = max(sizes)
    growth = medians[largest] / medians[min(sizes)]
    RESULTS.add(f"claim: batch of {BATCH:,} from a backlog of {fmt_int(largest)}",
                f"median {medians[largest] * 1e3:.1f} ms (" +
                ", ".join(f"{fmt_int(s)}: {m * 1e3:.1f} ms" for s, m in medians.items()) + f"; ×{growth:.2f} from smallest to largest)",
                f"under {TARGET_MS} ms, flat with the backlog",
                medians[largest] * 1e3 < TARGET_MS and growth < 1.5)
    RESULTS.add(f"claim alternatives at {fmt_int(largest)} (bench/claim.py SQL, after a checkpoint)",
                ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in alt.items()), f"under {TARGET_MS} ms",
                min(alt.values()) * 1e3 < TARGET_MS)
    return medians


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
