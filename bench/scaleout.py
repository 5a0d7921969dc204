"""Scale-out: the same backlog drained by 1, then 2 real worker processes (target: 2 processes ≥ 1.8× one).

A backlog of pending events (the three live flows of bench/ingest.py, first
steps waits: contact, profile, 3 enrolments, 3 waits, trail per event) is
recorded with the wake-up off, then handed to ``n`` Celery worker processes
(``celery -A bench.worker worker -P solo``, one process each) through the
broker: one ``process_pending`` task per worker to start, and the tasks wake
each other while the backlog lasts. They share the events through PostgreSQL
(``FOR UPDATE SKIP LOCKED``) with no coordinator. Measured: the wall time
from the first task to the last event processed, as events/s; then the same
backlog again (new contacts) with 2 processes. Every event must be processed
once: the enrolment count is checked.

The limit printed beside the speed-up is the number of CPUs: two worker
processes and their PostgreSQL backends share the machine's cores.
"""

import os
import time

from bench.common import RESULTS, fmt_int, say, truncate, vacuum_analyze

TARGET_SPEEDUP = 1.8


def drain(n_workers: int, expected: int, timeout: float) -> float:
    """Seconds ``n_workers`` processes take to process every pending event (their start-up not counted)."""
    from bench.worker import app, workers
    from saleor_flows import tasks
    from saleor_flows.models import Event

    app.control.purge()
    tasks.WAKE_GUARD.clear(app)
    with workers(n_workers):
        started = time.perf_counter()
        for _ in range(n_workers):
            tasks.WORKERS.process_pending_events()
        deadline = started + timeout
        while Event.objects.filter(status=Event.Status.PENDING).exists():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{n_workers} workers did not drain {expected:,} events in {timeout:.0f} s")
            time.sleep(0.05)
        return time.perf_counter() - started


def run(events=3000, timeout=900):
    from bench.ingest import publish_flows, record_events
    from saleor_flows.models import Enrolment, Event

    say(f"scale-out: {fmt_int(events)} pending events drained by 1, then 2 worker processes "
        f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    rates = {}
    for n_workers in (1, 2):
        truncate()
        publish_flows()
        record_events(0, events, prefix=f"s{n_workers}-", timed=False, per_transaction=500)
        vacuum_analyze()
        seconds = drain(n_workers, events, timeout)
        processed = Event.objects.filter(status=Event.Status.PROCESSED).count()
        enrolments = Enrolment.objects.count()
        rates[n_workers] = processed / seconds
        say(f"  {n_workers} worker process{'es' if n_workers > 1 else ''}: {fmt_int(processed)} events in "
            f"{seconds:.1f} s = {rates[n_workers]:,.0f} events/s ({fmt_int(enrolments)} enrolments, "
            f"{'each event once' if enrolments == 3 * events else 'NOT 3 PER EVENT'})")
    speedup = rates[2] / rates[1]
    say(f"  speed-up: {speedup:.2f}× (limit on this machine: {min(2, os.cpu_count())}× with the CPUs shared "
        f"by the workers and PostgreSQL)")
    RESULTS.add("scale-out: 2 worker processes vs 1 on the same backlog",
                f"{speedup:.2f}× ({rates[1]:,.0f} → {rates[2]:,.0f} events/s)",
                f"at least {TARGET_SPEEDUP}×", speedup >= TARGET_SPEEDUP)
    return speedup


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
