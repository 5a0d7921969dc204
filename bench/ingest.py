"""Events ingested, matched and enrolled (target: at least 5,000 events/s sustained, in batches).

Three live flows trigger on ``customer_created`` and all match: the prebuilt
welcome series starting with a 1-day wait, a tips flow (2-day wait, re-entry
once) and a flow with an entry filter on the event (6-hour wait, re-entry
single_active). So one event = resolve/create the contact, update the profile,
3 trigger matches, 3 enrolments, 3 pending waits, 6 trail entries; no sends.

Measured:

* hook side: ``record_event()`` alone, one call per transaction as in a request,
  the enqueue on commit going to a no-op (µs per call, with and without the COMMIT);
* processing: ``process_event_and_continue(id)`` for every event, one process, as
  events/s processed+matched+enrolled: the one-event path (a batch of one) that tests,
  tiny shops and ``process_event`` tasks left by an upgrade take; the batched path that
  workers take is ``bench/events.py``, two processes ``bench/scaleout.py``;
* a variant whose first welcome step is an immediate email (render + locmem hand-off);
* where the time goes: queries per event and a cProfile of the processing.

The runs stop at a time limit (20 s, 10 s) rather than after all
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


def run(n=20_000, n_hook=5_000, n_immediate=2_000, n_profile=300, max_seconds=(20, 10)):
    """``max_seconds``: time limits of the wait-first and immediate-email runs (one event at a time is
    far slower than batches; the limits keep ``make bench`` short)."""
    from django.core import mail

    from saleor_flows.models import Contact, Event

    limit1, limit_immediate = max_seconds
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

    RESULTS.add("ingest: one event at a time (a batch of one; 3 flows, waits first)",
                f"{rate1:,.0f} events/s in 1 process (CPU-bound ceiling {cpu_bound:,.0f}/s); "
                "the batched path is `events`")

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
    return {"cpu_bound": cpu_bound, "rate1": rate1, "immediate": rate, "hook": call, "txn": txn,
            "queries": q, "contacts": contacts}


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
