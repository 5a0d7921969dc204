"""Events ingested, matched and enrolled (target: at least 5,000 events/s sustained, in batches).

Three live flows trigger on ``customer_created`` and all match: the prebuilt
welcome series starting with a 1-day wait, a tips flow (2-day wait, re-entry
once) and a flow with an entry filter on the event (6-hour wait, re-entry
single_active). So one event = resolve/create the contact, update the profile,
3 trigger matches, 3 enrolments, 3 pending waits, 6 trail entries; no sends.

Measured:

* hook side: ``record_event()`` alone, one call per transaction as in a request,
  the enqueue on commit going to a no-op (µs per call, with and without the COMMIT);
* processing: ``process_event_and_continue(id)`` for every event, one process, then
  two processes (the machine has two cores), as events/s processed+matched+enrolled;
* a variant whose first welcome step is an immediate email (render + locmem hand-off);
* where the time goes: queries per event and a cProfile of the processing;
* what set-based processing would reach: ``bench/batched.py`` (a prototype, not the
  engine) on the same events, in batches of 1,000, 1 and 2 processes.

The engine's runs stop at a time limit (60 s, 30 s, 20 s) rather than after all
20,000 events, to keep ``make bench`` under 10 minutes; ``python -m bench --full``
lifts the limits.
"""

import cProfile
import io
import pstats
import re
import time
from collections import Counter
from unittest import mock

from bench.common import (RESULTS, CpuMeter, Dist, create_contacts, fmt_int, mjml, publish, run_forked, say,
                          short_paths, truncate, vacuum_analyze, welcome_journey)

TARGET_EVENTS_PER_S = 5000
PAYLOAD = {"first_name": "Jane", "last_name": "Doe", "language_code": "en", "source": "storefront",
           "is_active": True, "note": "", "metadata": {"signup": "storefront"}}


def publish_flows(*, immediate_welcome=False):
    publish(welcome_journey(first_wait_days=None if immediate_welcome else 1), "welcome")
    publish({"trigger": {"event": "customer_created"}, "reentry": {"mode": "once"}, "kind": "marketing",
             "start": "wait_2d", "steps": {
                 "wait_2d": {"type": "wait", "duration": {"days": 2}, "next": "tips"},
                 "tips": {"type": "send_email", "subject": "Three tips, {{ contact.first_name }}",
                          "mjml": mjml("Hi {{ contact.first_name }}, here are three tips."), "next": None}}},
            "tips")
    publish({"trigger": {"event": "customer_created",
                         "filter": {"field": "event.source", "op": "eq", "value": "storefront"}},
             "reentry": {"mode": "single_active"}, "kind": "marketing", "start": "wait_6h", "steps": {
                 "wait_6h": {"type": "wait", "duration": {"hours": 6}, "next": "hello"},
                 "hello": {"type": "send_email", "subject": "Hello from the storefront",
                           "mjml": mjml("Hi {{ contact.first_name }}"), "next": None}}},
            "storefront-signup")


def _noop_enqueue():
    """Patch the Celery task so that the on-commit enqueue does nothing."""
    from saleor_flows import tasks

    return mock.patch.object(tasks.WORKERS, "wake_event_processing", lambda: True)  # dispatch wakes a worker on commit


def record_events(start, count, *, prefix="c", timed=True, per_transaction=1):
    """record_event() calls (celery mode, the on-commit enqueue a no-op). Returns ids and timings.

    Timed: one call per transaction, as in a request. Untimed (setup): ``per_transaction`` calls
    share a transaction, so that filling the queue does not wait for a disk flush per event.
    """
    from django.db import transaction

    from saleor_flows.engine import dispatch
    from saleor_flows.events import record_event

    ids, call_times, txn_times = [], [], []
    perf = time.perf_counter
    with dispatch.forced("celery"), _noop_enqueue():
        for chunk in range(start, start + count, per_transaction):
            t0 = perf()
            with transaction.atomic():
                for i in range(chunk, min(chunk + per_transaction, start + count)):
                    t1 = perf()
                    recorded = record_event("customer_created", email=f"{prefix}{i}@example.com",
                                            user_id=f"user-{prefix}{i}", payload=PAYLOAD,
                                            dedupe_key=f"customer_created:{prefix}{i}")
                    t2 = perf()
                    ids.append(recorded.id)
            t3 = perf()
            if timed:
                call_times.append(t2 - t1)
                txn_times.append(t3 - t0)
    return ids, Dist(call_times) if timed else None, Dist(txn_times) if timed else None


def process_all(ids, *, max_seconds=None, report_every=None):
    """process_event_and_continue for each id in this process (inline mode), until done or out of time.

    Returns (events processed, CpuMeter).
    """
    from saleor_flows.engine import dispatch
    from saleor_flows.engine.processing import process_event_and_continue

    perf = time.perf_counter
    deadline = perf() + max_seconds if max_seconds else float("inf")
    done = 0
    with dispatch.forced("inline"), CpuMeter() as meter:
        chunk_start = perf()
        for event_id in ids:
            process_event_and_continue(event_id)
            done += 1
            now = perf()
            if report_every and done % report_every == 0:
                say(f"    events {done - report_every + 1:>6,}-{done:<6,} {report_every / (now - chunk_start):8,.0f} events/s")
                chunk_start = now
            if now > deadline:
                break
    return done, meter


def process_parallel(ids, workers=2, max_seconds=None):
    """The same, split over ``workers`` forked processes. Returns (events processed, wall seconds, per worker)."""

    def work(chunk):
        done, meter = process_all(chunk, max_seconds=max_seconds)
        return done, meter.wall

    start = time.perf_counter()
    per_worker = run_forked(work, [ids[w::workers] for w in range(workers)])
    wall = time.perf_counter() - start
    return sum(d for d, _ in per_worker), wall, per_worker


def check_outcome(expected_events, expected_enrolments):
    from saleor_flows.models import Enrolment, Event, StepExecution

    processed = Event.objects.filter(status=Event.Status.PROCESSED).count()
    enrolments = Enrolment.objects.count()
    pending = StepExecution.objects.filter(state="pending").count()
    ok = processed == expected_events and enrolments == expected_enrolments
    say(f"    check: {fmt_int(processed)} events processed, {fmt_int(enrolments)} enrolments, "
        f"{fmt_int(pending)} pending steps{'' if ok else '  (UNEXPECTED)'}")
    return ok


def queries_per_event(ids):
    """Queries issued while processing these events, by kind, and their share of the time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from saleor_flows.engine import dispatch
    from saleor_flows.engine.processing import process_event_and_continue

    connection.queries_log.clear()  # a full log (9,000 entries) would capture nothing
    with dispatch.forced("inline"), CaptureQueriesContext(connection) as captured:
        start = time.perf_counter()
        for event_id in ids:
            process_event_and_continue(event_id)
        wall = time.perf_counter() - start
    kinds = Counter()
    tables = Counter()
    shapes = Counter()
    for query in captured.captured_queries:
        shape = re.sub(r"'[^']*'|\b\d+\b", "?", query["sql"])
        shape = re.sub(r'SELECT .*? FROM', "SELECT … FROM", shape)
        shape = re.sub(r'\(("\w+", )+"\w+"\) VALUES \(.*\)', "(…) VALUES (…)", shape)
        shapes[shape[:140]] += float(query["time"])
        sql = query["sql"]
        verb = sql.split(None, 1)[0].upper()
        if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK"):
            verb = "SAVEPOINT/RELEASE"
        kinds[verb] += 1
        match = re.search(r'(?:FROM|INTO|UPDATE)\s+"saleor_flows_(\w+)"', sql)
        if match and verb not in ("BEGIN", "COMMIT", "SAVEPOINT/RELEASE"):
            tables[f"{verb} {match.group(1)}"] += 1
    db_time = sum(float(q["time"]) for q in captured.captured_queries)
    n = len(ids)
    return {
        "per_event": len(captured.captured_queries) / n,
        "kinds": {k: v / n for k, v in kinds.most_common()},
        "tables": {k: v / n for k, v in tables.most_common()},
        "db_ms": db_time / n * 1e3,
        "wall_ms": wall / n * 1e3,
        "slowest": [(shape, t / n * 1e3) for shape, t in shapes.most_common(6)],
    }


def profile(ids, top=18):
    """cProfile of the processing of these events: (wall seconds, text of the top functions)."""
    from saleor_flows.engine import dispatch
    from saleor_flows.engine.processing import process_event_and_continue

    profiler = cProfile.Profile()
    start = time.perf_counter()
    with dispatch.forced("inline"):
        profiler.enable()
        for event_id in ids:
            process_event_and_continue(event_id)
        profiler.disable()
    wall = time.perf_counter() - start
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"saleor_flows|psycopg/cursor|json/decoder|django/db/models/query\.py", top)
    stats.sort_stats("tottime").print_stats(top)
    text = short_paths(out.getvalue())
    return wall, text


def run(n=20_000, n_hook=5_000, n_immediate=2_000, n_profile=300, max_seconds=(60, 30, 20), batch=1000,
        n_prototype=10_000):
    """``max_seconds``: time limits of the 1-process, 2-process and immediate-email runs (the engine is
    far slower than the target; the limits keep ``make bench`` under 10 minutes)."""
    from django.core import mail

    from saleor_flows.models import Contact, Event

    limit1, limit2, limit_immediate = max_seconds
    say(f"ingest: {fmt_int(n)} customer_created events, 3 live flows matching each (first steps are waits)")
    truncate()
    publish_flows()

    # --- hook side ------------------------------------------------------------------
    ids, call, txn = record_events(0, n_hook)
    say(f"  record_event() call, in a transaction (enqueue on commit → no-op): {call.describe('µs', 1e6, 0)}")
    say(f"  the same with BEGIN … COMMIT around it (what the request pays):   {txn.describe('µs', 1e6, 0)}")
    RESULTS.add("hook: record_event() median (one INSERT + on_commit)", f"{call.median * 1e6:,.0f} µs "
                f"(p99 {call.p(99) * 1e6:,.0f} µs); with its own COMMIT {txn.median * 1e6:,.0f} µs",
                "median under 1 ms added to the request", call.median < 1e-3)
    ids = ids[:n]
    if n > n_hook:
        more, _, _ = record_events(n_hook, n - n_hook, timed=False, per_transaction=1000)
        ids += more
    vacuum_analyze()

    # --- processing, one process ------------------------------------------------------
    done, meter = process_all(ids, max_seconds=limit1, report_every=2000)
    rate1 = done / meter.wall
    say(f"  processing, 1 process: {fmt_int(done)} of {fmt_int(n)} events in {meter.wall:,.1f} s = {rate1:,.0f} events/s "
        f"({meter.wall / done * 1e3:.2f} ms per event){'' if done == n else f' (stopped at the {limit1} s limit)'}")
    say(f"    {meter.per(done)}")
    cpu_bound = done / (meter.cpu + meter.pg)
    say(f"    if this process and its backend never waited (for a CPU or a disk flush): {cpu_bound:,.0f} events/s")
    check_outcome(done, 3 * done)
    contacts = Contact.objects.count()

    # --- processing, two processes ------------------------------------------------------
    truncate()
    publish_flows()
    ids2, _, _ = record_events(0, n, prefix="d", timed=False, per_transaction=1000)
    vacuum_analyze()
    done2, wall, per_worker = process_parallel(ids2, workers=2, max_seconds=limit2)
    rate2 = done2 / wall
    say(f"  processing, 2 processes: {fmt_int(done2)} of {fmt_int(n)} events in {wall:,.1f} s = {rate2:,.0f} events/s "
        f"(per process {', '.join(f'{d / s:,.0f}' for d, s in per_worker)} events/s)"
        f"{'' if done2 == n else f' (stopped at the {limit2} s limit)'}")
    check_outcome(done2, 3 * done2)
    RESULTS.add("ingest: events processed+matched+enrolled (3 flows, waits first)",
                f"{rate1:,.0f} events/s in 1 process, {rate2:,.0f} events/s in 2 processes "
                f"(CPU-bound ceiling of 1 process {cpu_bound:,.0f}/s)",
                f"at least {TARGET_EVENTS_PER_S:,} events/s", max(rate1, rate2) >= TARGET_EVENTS_PER_S)

    # --- where the time goes ------------------------------------------------------------
    ids3, _, _ = record_events(n, 150 + n_profile, prefix="p", timed=False, per_transaction=1000)
    q = queries_per_event(ids3[:150])
    say(f"  queries per event: {q['per_event']:.1f} "
        f"({', '.join(f'{k} {v:.1f}' for k, v in q['kinds'].items())}); "
        f"time in the database driver {q['db_ms']:.2f} ms of {q['wall_ms']:.2f} ms per event")
    say("    by statement: " + ", ".join(f"{k} {v:.1f}" for k, v in q["tables"].items()))
    say("    most time per event:")
    for shape, t in q["slowest"]:
        say(f"      {t:5.2f} ms  {shape}")
    wall, text = profile(ids3[150:])
    say(f"  cProfile of {fmt_int(n_profile)} events ({wall / n_profile * 1e3:.2f} ms per event under the profiler):")
    say("    " + "\n    ".join(line for line in text.strip().splitlines() if line.strip()))

    # --- the batched design, prototyped (bench/batched.py, not the engine) --------------------
    from bench.batched import process_batch

    say(f"ingest, prototype of set-based processing (bench/batched.py: NOT the engine), batches of {batch:,}:")
    proto = {}
    for workers, trail_rows in ((1, True), (2, True), (1, False), (2, False)):
        truncate()
        publish_flows()
        ids5, _, _ = record_events(0, n_prototype, prefix="b", timed=False, per_transaction=1000)
        vacuum_analyze()

        def work(chunk):
            with CpuMeter() as m:
                done = sum(process_batch(chunk[i:i + batch], trail_rows=trail_rows) for i in range(0, len(chunk), batch))
            return done, m.wall, m.cpu, m.pg

        if workers == 1:
            results = [work(ids5)]
            wall = results[0][1]
        else:
            t0 = time.perf_counter()
            batches = [ids5[i:i + batch] for i in range(0, len(ids5), batch)]  # whole batches, interleaved
            results = run_forked(work, [sum(batches[w::workers], []) for w in range(workers)])
            wall = time.perf_counter() - t0
        done5 = sum(r[0] for r in results)
        proto[(workers, trail_rows)] = done5 / wall
        cpu, pg = sum(r[2] for r in results), sum(r[3] for r in results)
        say(f"  {workers} process{'es' if workers > 1 else ''}{'' if trail_rows else ', without the entered/waiting trail rows'}: "
            f"{fmt_int(done5)} events in {wall:,.1f} s = {proto[(workers, trail_rows)]:,.0f} events/s; CPU per event: "
            f"Python {cpu / done5 * 1e3:.3f} ms + PostgreSQL {pg / done5 * 1e3:.3f} ms "
            f"(two cores: at most {2 / ((cpu + pg) / done5):,.0f} events/s)")
        check_outcome(done5, 3 * done5)
    RESULTS.add("ingest prototype: set-based batches (bench/batched.py, not the engine)",
                f"{proto[(1, True)]:,.0f} events/s in 1 process, {proto[(2, True)]:,.0f} events/s in 2 processes; "
                f"without entered/waiting trail rows {proto[(1, False)]:,.0f} and {proto[(2, False)]:,.0f} events/s",
                f"at least {TARGET_EVENTS_PER_S:,} events/s", max(proto.values()) >= TARGET_EVENTS_PER_S)

    # --- variant: the welcome email is sent at once ----------------------------------------
    say(f"ingest, variant: {fmt_int(n_immediate)} events, the welcome flow's first step is an immediate email")
    truncate()
    publish_flows(immediate_welcome=True)
    create_contacts([f"s{i}@example.com" for i in range(n_immediate)])
    ids4, _, _ = record_events(0, n_immediate, prefix="s", timed=False, per_transaction=1000)
    vacuum_analyze()
    mail.outbox = []
    done4, meter = process_all(ids4, max_seconds=limit_immediate)
    rate = done4 / meter.wall
    sent = len(mail.outbox)
    say(f"  processing, 1 process: {fmt_int(done4)} of {fmt_int(n_immediate)} events in {meter.wall:,.1f} s = "
        f"{rate:,.0f} events/s ({meter.wall / done4 * 1e3:.2f} ms per event), {fmt_int(sent)} emails handed to locmem"
        f"{'' if done4 == n_immediate else f' (stopped at the {limit_immediate} s limit)'}")
    say(f"    {meter.per(done4)}")
    if Event.objects.filter(status="processed").count() != done4 or sent != done4:
        say("    (UNEXPECTED: not every event was processed or emailed)")
    mail.outbox = []
    RESULTS.add("ingest variant: with an immediate welcome email", f"{rate:,.0f} events/s in 1 process")
    return {"cpu_bound": cpu_bound, "rate1": rate1, "rate2": rate2, "immediate": rate, "hook": call, "txn": txn,
            "queries": q, "contacts": contacts, "prototype": proto}


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
