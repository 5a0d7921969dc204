"""Claiming due steps (target: a batch of 1,000 from a backlog of 1,000,000 pending in under 20 ms,
cost flat with the backlog).

The step_executions table is filled with pending rows by set-based SQL
(``INSERT … SELECT generate_series``, all referencing one enrolment: this is
setup, the ORM and the triggers are bypassed, then migration 0015's backfill puts
the new pending rows into the due queue, timed), due times spread uniformly over
now ± 1 day so that about half are due. After ``VACUUM ANALYZE`` the real
``sweep.claim_due(1000, now)`` (a lease in the narrow due queue) is timed 20 times,
each followed by the worker's side, ``runner.take(ids)`` (``pending -> claimed`` on
the execution rows, which removes their queue rows), timed apart; both commit. The
taken rows are put back to pending after each run (not timed; their trigger queues
them again), due just before ``now`` (so the next run claims the next-oldest rows),
so the backlog keeps its size and its due half. Backlogs of 10k, 100k and 1M (grown
in place). At the largest, the session-4 claim on the execution rows is measured
again beside it (``alternatives``).
"""

import time

from bench.common import RESULTS, Dist, fmt_int, say, truncate

BATCH = 1000
RUNS = 20
SIZES = [10_000, 100_000, 1_000_000]
TARGET_MS = 20
VACUUM_EVERY = 5


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
    """Rows first..last (occurrence = the row number keeps the unique key unique), half of them due.

    Returns the seconds migration 0015's backfill took to queue them (it walks every pending row)."""
    import importlib

    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        # Setup, not measured: without the triggers (the analytics trigger's join and statdelta row
        # per inserted row made 1,000,000 rows take about 20 minutes); the claim itself runs with them.
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SELECT setseed(%s)", [first / 10_000_000])
        cursor.execute(
            "INSERT INTO saleor_flows_stepexecution"
            " (enrolment_id, step_id, occurrence, state, due_at, waiting_for, attempts, claimed_at, finished_at, result)"
            " SELECT %s, 'wait', g, 'pending', %s + (random() - 0.5) * interval '2 days', '', 0, NULL, NULL, '{}'::jsonb"
            " FROM generate_series(%s, %s) AS g",
            [enrolment_id, now, first, last],
        )
    t0 = time.perf_counter()
    importlib.import_module("saleor_flows.migrations.0016_due_queue_backfill").backfill_queue(connection)
    backfill_s = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE saleor_flows_stepexecution")
        cursor.execute("VACUUM ANALYZE saleor_flows_dueexecution")
    return backfill_s


def reset(ids, now):
    """Taken rows back to pending, due just now: at the back of the due queue (their trigger queues
    them again), so the next claim takes the next-oldest rows (fresh places in the heap and indexes,
    as in production)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE saleor_flows_stepexecution SET state = 'pending', claimed_at = NULL,"
                       " due_at = %s - interval '1 microsecond' WHERE id = ANY(%s)", [now, ids])


def time_claims(now, runs=RUNS, vacuum_every=VACUUM_EVERY):
    """claim_due(BATCH, now), then take(ids, now), ``runs`` times: seconds of each, and of the VACUUMs.

    Every ``vacuum_every`` runs the due queue is vacuumed (not timed in the claim): what autovacuum
    does with migration 0015's per-table setting (every 10,000 dead rows; a run leaves 2,000 in the
    queue: the lease and the take's delete). This server runs with autovacuum off. ``vacuum_every``
    None: never (the dead versions pile up at the front of the due_at index).
    """
    from django.db import connection

    from saleor_flows.engine.runner import take
    from saleor_flows.engine.sweep import claim_due

    claims, takes, vacuums = [], [], []
    for run in range(runs):
        if vacuum_every and run and run % vacuum_every == 0:
            t0 = time.perf_counter()
            with connection.cursor() as cursor:
                cursor.execute("VACUUM saleor_flows_dueexecution")
            vacuums.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ids = claim_due(BATCH, now)
        t1 = time.perf_counter()
        taken = take(ids, now)
        t2 = time.perf_counter()
        claims.append(t1 - t0)
        takes.append(t2 - t1)
        if len(ids) != BATCH or taken != BATCH:
            raise RuntimeError(f"claim_due returned {len(ids)} rows and take() took {taken}, expected {BATCH}")
        reset(ids, now)
    return Dist(claims), Dist(takes), Dist(vacuums or [0.0])


def explain(now):
    """EXPLAIN (ANALYZE, BUFFERS) of the exact statements claim_due() and take() send, rolled back."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from saleor_flows.engine.runner import take
    from saleor_flows.engine.sweep import claim_due

    connection.queries_log.clear()  # a full log (9,000 entries) would capture nothing
    with transaction.atomic(), CaptureQueriesContext(connection) as captured:
        take(claim_due(BATCH, now), now)
        transaction.set_rollback(True)
    statements = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("UPDATE")]
    plans = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plans.append((sql, [row[0] for row in cursor.fetchall()]))
        transaction.set_rollback(True)
    return plans



DUE_TRIGGERS = ("saleor_flows_due_updated", "saleor_flows_due_deleted", "saleor_flows_due_inserted")


def alternatives(now, runs=RUNS):
    """The engine's claim beside the other forms, at the largest backlog (SQL here, not engine code):

    A  claim_due(): the lease in the narrow due queue (what the sweep waits for);
    A+ A, then the worker's take(ids) (the whole cost of a claimed execution, paid in the worker);
    B  the session-4 claim: UPDATE … SET state = 'claimed' … WHERE id IN (SELECT … FROM the
       execution rows … FOR UPDATE SKIP LOCKED) RETURNING id, with the queue triggers disabled
       and its partial index on pending rows recreated (as before migrations 0015 and 0017; the
       queue is rebuilt and the index dropped after);
    C  session 1's sketch: DELETE … RETURNING from a narrow temporary table of pending work.
    Each: VACUUM ANALYZE and CHECKPOINT first (so all pay the same full-page writes), then 20 runs with no
    VACUUM between them (the dead versions of the claimed rows pile up, for every form alike).
    """
    from django.db import connection, transaction

    from saleor_flows.engine.runner import take
    from saleor_flows.engine.sweep import claim_due

    def one_statement():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("UPDATE saleor_flows_stepexecution SET state = 'claimed', claimed_at = %s"
                           " WHERE id IN (SELECT id FROM saleor_flows_stepexecution WHERE due_at <= %s"
                           " AND state = 'pending' ORDER BY due_at LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id",
                           [now, now, BATCH])
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

    def claim_and_take():
        ids = claim_due(BATCH, now)
        assert take(ids, now) == BATCH
        return ids

    def due_triggers(enabled):
        with connection.cursor() as cursor:
            for name in DUE_TRIGGERS:
                cursor.execute(f"ALTER TABLE saleor_flows_stepexecution {'ENABLE' if enabled else 'DISABLE'}"
                               f" TRIGGER {name}")

    def measure(label, claim, put_back, tables=("saleor_flows_stepexecution", "saleor_flows_dueexecution")):
        with connection.cursor() as cursor:
            for table in tables:
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

    def lease_back(ids, now):  # A alone: the leased rows due again just now, as reset() would queue them
        with connection.cursor() as cursor:
            cursor.execute("UPDATE saleor_flows_dueexecution SET due_at = %s - interval '1 microsecond'"
                           " WHERE execution_id = ANY(%s)", [now, ids])

    results = {}
    say(f"  alternatives at this backlog (each after VACUUM + CHECKPOINT, {runs} runs; SQL in bench/claim.py):")
    results["A"] = measure("A claim_due(): a lease in the narrow due queue", lambda: claim_due(BATCH, now),
                           lease_back)
    results["A+take"] = measure("A+ claim_due(), then the worker's take(ids)", claim_and_take, reset)
    due_triggers(False)
    with connection.cursor() as cursor:  # B's index, as session 4 had it (migration 0017 dropped it)
        cursor.execute("CREATE INDEX flows_bench_execution_due ON saleor_flows_stepexecution (due_at)"
                       " WHERE state = 'pending'")
    try:
        results["B"] = measure("B session 4: UPDATE … state = 'claimed' … (SELECT … SKIP LOCKED) RETURNING",
                               one_statement, reset)
    finally:
        due_triggers(True)
        with connection.cursor() as cursor:  # B's claims and resets bypassed the queue: rebuild it
            cursor.execute("DROP INDEX flows_bench_execution_due")
            cursor.execute("TRUNCATE saleor_flows_dueexecution")
            cursor.execute("INSERT INTO saleor_flows_dueexecution SELECT id, due_at FROM saleor_flows_stepexecution"
                           " WHERE state = 'pending'")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE flows_bench_due_queue (execution_id bigint PRIMARY KEY,"
                       " due_at timestamptz NOT NULL)")
        cursor.execute("INSERT INTO flows_bench_due_queue SELECT id, due_at FROM saleor_flows_stepexecution"
                       " WHERE state = 'pending'")
        cursor.execute("CREATE INDEX ON flows_bench_due_queue (due_at)")
    try:
        results["C"] = measure("C narrow temporary table: DELETE … WHERE id IN (SELECT … SKIP LOCKED) RETURNING",
                               from_queue, requeue, tables=("flows_bench_due_queue",))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE flows_bench_due_queue")
    return results


def sizes_report():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_table_size('saleor_flows_stepexecution')),"
                       " pg_size_pretty(pg_table_size('saleor_flows_dueexecution')),"
                       " pg_size_pretty(pg_relation_size('flows_due_at'))")
        return cursor.fetchone()


def run(sizes=SIZES):
    from saleor_flows import clock

    say(f"claim: claim_due({BATCH:,}) from a backlog of pending step executions (about half due), then the worker's"
        f" take(), {RUNS} runs each")
    truncate()
    enrolment = make_enrolment()
    now = clock.now()
    filled = 0
    medians, takes = {}, {}
    for size in sizes:
        t0 = time.perf_counter()
        backfill_s = fill(enrolment.pk, filled + 1, size, now)
        fill_s = time.perf_counter() - t0
        filled = size
        table, queue, index = sizes_report()
        claim, take, vacuum = time_claims(now)
        medians[size], takes[size] = claim.median, take.median
        say(f"  claim: backlog {size:>9,}  batch {BATCH:,}  {claim.describe()}")
        say(f"         then take() in the worker (pending -> claimed on the execution rows): median"
            f" {take.median * 1e3:.1f} ms; first claim {claim.values[0] * 1e3:.1f} ms, last {claim.values[-1] * 1e3:.1f} ms;"
            f" VACUUM of the queue every {VACUUM_EVERY} runs (autovacuum's part, not timed in the claim): median"
            f" {vacuum.median * 1e3:.1f} ms")
        say(f"         (filling to {fmt_int(size)} rows took {fill_s:,.1f} s, of which migration 0015's backfill"
            f" {backfill_s:,.1f} s; execution table {table}, due queue {queue}, its due_at index {index})")
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
                ", ".join(f"{fmt_int(s)}: {m * 1e3:.1f} ms" for s, m in medians.items()) + f"; ×{growth:.2f} from smallest to largest;"
                f" then take() in the worker {takes[largest] * 1e3:.1f} ms)",
                f"under {TARGET_MS} ms, flat with the backlog",
                medians[largest] * 1e3 < TARGET_MS and growth < 1.5)
    RESULTS.add(f"claim forms at {fmt_int(largest)} (bench/claim.py, after a checkpoint)",
                ", ".join(f"{k} {v * 1e3:.1f} ms" for k, v in alt.items()), f"A under {TARGET_MS} ms",
                alt["A"] * 1e3 < TARGET_MS)
    return medians


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
