"""Storage (target: under 1 KB per executed step in the database).

The prebuilt welcome series (welcome email at once, 3 days, brand-story email,
7 days, a split on order_count, a nudge email) is run to completion for 2,000
subscribed contacts (5,000 with ``python -m bench --full``) by the real engine: ``customer_created`` events recorded
with ``record_event()`` and processed (two processes), then the clock moved
3 and 7 days and the due steps claimed with ``claim_due()`` and run with
``run_claimed()`` (two processes). That is 6 executed steps, 3 emails and a
trail of each decision per journey.

Then, per table: rows, heap, indexes, TOAST (``pg_total_relation_size``),
after a plain ``VACUUM ANALYZE`` (the files as a running system has them:
every state change of an execution leaves a dead row version behind, which
vacuum makes reusable but does not give back) and after ``VACUUM FULL``
(compacted: what the live rows need). Bytes per executed step = (step
executions + trail entries + messages + events + enrolments) / executed steps,
also net of what the five tables take when empty (index metapages, TOAST
tables: a fixed cost that a small run would otherwise spread over few steps).
"""

import time
from datetime import timedelta

from bench.common import RESULTS, create_contacts, fmt_int, publish, run_forked, say, truncate, welcome_journey

TARGET_BYTES = 1024
PER_STEP_TABLES = ["stepexecution", "trailentry", "message", "event", "enrolment"]


def sweep_parallel(now, workers=2):
    """claim_due() everything due (batches of 1,000), then run_claimed() it in ``workers`` processes."""
    from saleor_flows.engine import dispatch
    from saleor_flows.engine.runner import run_claimed
    from saleor_flows.engine.sweep import claim_due

    ids = []
    while batch := claim_due(1000, now):
        ids += batch

    def work(chunk):
        with dispatch.forced("inline"):
            run_claimed(chunk)
        return len(chunk)

    run_forked(work, [ids[w::workers] for w in range(workers)])
    return len(ids)


def table_sizes():
    from django.db import connection

    rows = {}
    with connection.cursor() as cursor:
        for name in ["stepexecution", "trailentry", "message", "event", "enrolment", "contact", "flow", "flowversion"]:
            table = f"saleor_flows_{name}"
            cursor.execute(f"SELECT count(*), coalesce(avg(pg_column_size(t.*)), 0) FROM {table} t")
            count, avg_row = cursor.fetchone()
            cursor.execute("SELECT pg_relation_size(%s), pg_indexes_size(%s), pg_total_relation_size(%s)",
                           [table, table, table])
            heap, indexes, total = cursor.fetchone()
            cursor.execute("SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index"
                           " WHERE indrelid = %s::regclass ORDER BY 2 DESC", [table])
            rows[name] = {"rows": count, "avg_row": float(avg_row), "heap": heap, "indexes": indexes,
                          "toast": total - heap - indexes, "total": total, "index_list": cursor.fetchall()}
    return rows


def redundant_indexes():
    """Single-column indexes (Django's automatic foreign-key indexes) whose column already leads
    another, non-partial index of the same table: (table, index, covered by, bytes)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT c.relname, i.indexrelid::regclass::text, min(o.indexrelid::regclass::text),
                   pg_relation_size(i.indexrelid)
            FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid
            JOIN pg_index o ON o.indrelid = i.indrelid AND o.indexrelid <> i.indexrelid
                           AND o.indkey[0] = i.indkey[0] AND o.indnatts > 1 AND o.indpred IS NULL
            WHERE c.relname LIKE 'saleor_flows_%%' AND i.indnatts = 1 AND i.indpred IS NULL
              AND NOT i.indisunique AND NOT i.indisprimary
            GROUP BY 1, 2, 4 ORDER BY 1, 2""")
        return cursor.fetchall()


def vacuum(full=False):
    from django.db import connection

    with connection.cursor() as cursor:
        for name in ["stepexecution", "trailentry", "message", "event", "enrolment", "contact", "flow", "flowversion"]:
            cursor.execute(f"VACUUM {'FULL ' if full else ''}ANALYZE saleor_flows_{name}")


def print_sizes(sizes, steps, title, empty):
    say(f"  {title}")
    say(f"    {'table':<14} {'rows':>8} {'avg row':>8} {'heap':>10} {'indexes':>10} {'toast':>8} {'total':>10} {'per step':>9}")
    for name, s in sizes.items():
        per = f"{s['total'] / steps:,.0f} B" if name in PER_STEP_TABLES else ""
        say(f"    {name:<14} {s['rows']:>8,} {s['avg_row']:>7,.0f}B {s['heap'] / 1024:>8,.0f}kB {s['indexes'] / 1024:>8,.0f}kB"
            f" {s['toast'] / 1024:>6,.0f}kB {s['total'] / 1024:>8,.0f}kB {per:>9}")
    total = sum(sizes[t]["total"] for t in PER_STEP_TABLES)
    fixed = sum(empty[t]["total"] for t in PER_STEP_TABLES)
    say(f"    => {total / steps:,.0f} bytes per executed step, {(total - fixed) / steps:,.0f} net of the empty tables'"
        f" {fixed / 1024:,.0f} kB ({fmt_int(steps)} executed steps; contacts, flows and versions not counted:"
        f" they do not grow with steps)")
    return total / steps, (total - fixed) / steps


def run(n=2000):
    from django.core import mail

    from saleor_flows import clock
    from saleor_flows.models import Enrolment, Message, StepExecution
    from bench.ingest import process_parallel, record_events

    say(f"storage: the welcome series run to completion for {fmt_int(n)} contacts (3 emails, 2 waits, a split)")
    truncate()
    empty = table_sizes()
    start = clock.now()
    clock.set_now(start)
    try:
        publish(welcome_journey(), "welcome")
        create_contacts([f"w{i}@example.com" for i in range(n)])
        t0 = time.perf_counter()
        ids, _, _ = record_events(0, n, prefix="w", timed=False, per_transaction=500)
        done, _, _ = process_parallel(ids, workers=2)
        t1 = time.perf_counter()
        clock.set_now(start + timedelta(days=3, minutes=1))
        second = sweep_parallel(clock.now())
        t2 = time.perf_counter()
        clock.set_now(start + timedelta(days=10, minutes=2))
        third = sweep_parallel(clock.now())
        t3 = time.perf_counter()
    finally:
        clock.reset()
        mail.outbox = []
    say(f"  ran: {fmt_int(done)} events processed in {t1 - t0:,.1f} s, day 3: {fmt_int(second)} steps claimed and run in "
        f"{t2 - t1:,.1f} s, day 10: {fmt_int(third)} in {t3 - t2:,.1f} s (2 processes)")
    finished = StepExecution.objects.exclude(state__in=["pending", "claimed", "sending"]).count()
    completed = Enrolment.objects.filter(status="completed").count()
    sent = Message.objects.filter(status="sent").count()
    say(f"  {fmt_int(completed)} of {fmt_int(n)} journeys completed, {fmt_int(finished)} executed steps, "
        f"{fmt_int(sent)} emails sent")
    if completed != n or sent != 3 * n:
        say("    (UNEXPECTED: not every journey completed with 3 emails)")
    from django.db.models import Count

    from saleor_flows.models import TrailEntry

    kinds = TrailEntry.objects.values_list("kind").annotate(n=Count("id")).order_by("-n")
    say("  trail entries per journey: " + ", ".join(f"{kind} {count / n:g}" for kind, count in kinds))

    vacuum()
    as_written, as_written_net = print_sizes(table_sizes(), finished, "after VACUUM ANALYZE (files as written, dead row"
                                             " versions reusable):", empty)
    vacuum(full=True)
    sizes = table_sizes()
    compacted, compacted_net = print_sizes(sizes, finished, "after VACUUM FULL (live rows only):", empty)
    say("  largest indexes: " + ", ".join(f"{name} {size / 1024:,.0f} kB" for name, size in sorted(
        (i for t in PER_STEP_TABLES for i in sizes[t]["index_list"]), key=lambda i: -i[1])[:8]))
    redundant = redundant_indexes()
    per_step_redundant = sum(size for table, _, _, size in redundant
                             if table.removeprefix("saleor_flows_") in PER_STEP_TABLES) / finished
    say(f"  redundant single-column indexes (their column leads another index): {per_step_redundant:,.0f} B per step")
    for table, index, covered_by, size in redundant:
        say(f"    {index} ({size / 1024:,.0f} kB) covered by {covered_by}")
    RESULTS.add("storage: bytes per executed step (welcome series, 5 tables)",
                f"{as_written_net:,.0f} B as written, {compacted_net:,.0f} B compacted (net of empty tables; gross "
                f"{as_written:,.0f} / {compacted:,.0f} B; {fmt_int(finished)} steps, {fmt_int(n)} journeys)",
                "under 1 KB per executed step", as_written_net < TARGET_BYTES)
    return as_written_net, compacted_net


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
