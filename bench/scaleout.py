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

The limit printed beside the speed-up comes from the same run: the CPU the worker processes and
their PostgreSQL backends spent per event (/proc), and the CPU the rest of the machine took
meanwhile (/proc/stat), give the events/s the cores can carry; a sampler thread reads what the
workers' backends are doing (pg_stat_activity: running, waiting on a lock, idle while Python works).
12,000 events: each task takes 1,000 at a time, and with 3,000 one worker took two batches while
the other took one (a 1.5× ceiling from the backlog's size alone).
"""

import os
import time

from bench.common import RESULTS, fmt_int, say, truncate, vacuum_analyze

TARGET_SPEEDUP = 1.8


def drain(n_workers: int, expected: int, timeout: float) -> dict:
    """``n_workers`` processes process every pending event (their start-up not counted). Returns the wall
    seconds, the CPU seconds of the worker processes, of their PostgreSQL backends and of the whole
    machine meanwhile, and what the backends were doing (bench/common.BackendSampler)."""
    from bench.common import BackendSampler, machine_cpu, process_cpu
    from bench.worker import WORKER_APPLICATION_NAME, app, workers
    from saleor_flows import tasks
    from saleor_flows.models import Event

    app.control.purge()
    tasks.WAKE_GUARD.clear(app)
    with workers(n_workers) as procs:
        with BackendSampler(WORKER_APPLICATION_NAME) as sampler:
            workers_cpu0, machine0, own0 = sum(process_cpu(p.pid) for p in procs), machine_cpu(), time.process_time()
            started = time.perf_counter()
            for _ in range(n_workers):
                tasks.WORKERS.process_pending_events()
            deadline = started + timeout
            while Event.objects.filter(status=Event.Status.PENDING).exists():
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"{n_workers} workers did not drain {expected:,} events in {timeout:.0f} s")
                time.sleep(0.05)
            wall = time.perf_counter() - started
            workers_cpu, machine = sum(process_cpu(p.pid) for p in procs) - workers_cpu0, machine_cpu() - machine0
            own = time.process_time() - own0
    return {"wall": wall, "workers_cpu": workers_cpu, "pg_cpu": sampler.cpu, "machine_cpu": machine,
            "own_cpu": own, "sampler": sampler}


def explain(n_workers, events, measured):
    """The CPU per event, the ceiling it implies on this machine, and what the workers' backends waited on."""
    cores, wall = os.cpu_count(), measured["wall"]
    ours = measured["workers_cpu"] + measured["pg_cpu"]
    per_event = ours / events
    others = max(0.0, measured["machine_cpu"] - ours)
    ceiling = cores / per_event  # the machine to ourselves
    left = max(0.0, cores - others / wall)  # the cores everything else left us
    rate = events / wall
    sampler = measured["sampler"]
    say(f"    CPU per event: worker {measured['workers_cpu'] / events * 1e3:.2f} ms + its PostgreSQL backend "
        f"{measured['pg_cpu'] / events * 1e3:.2f} ms = {per_event * 1e3:.2f} ms → at most {ceiling:,.0f} events/s "
        f"on {cores} idle cores")
    say(f"    the machine meanwhile: {measured['machine_cpu']:.1f} CPU-s busy of {cores * wall:.1f}; the workers "
        f"and their backends {ours:.1f} ({ours / wall:.2f} cores), everything else {others:.1f} ({others / wall:.2f}"
        f" cores; this process's polling and sampling {measured['own_cpu']:.1f} of it, the rest the broker and "
        f"other sessions); with the {left:.2f} cores left to them: at most "
        f"{left / per_event:,.0f} events/s; measured {rate:,.0f}")
    lock = sampler.share(lambda state, wait_type, wait: wait_type == "Lock")
    lwlock = sampler.share(lambda state, wait_type, wait: wait_type == "LWLock")
    io = sampler.share(lambda state, wait_type, wait: wait_type == "IO")
    running = sampler.share(lambda state, wait_type, wait: state == "active" and not wait_type)
    in_txn = sampler.share(lambda state, wait_type, wait: state.startswith("idle in transaction"))
    idle = sampler.share(lambda state, wait_type, wait: state == "idle")
    samples = sum(sampler.busy.values())
    say(f"    the workers' backends, {samples:,} samples of pg_stat_activity: running a statement "
        f"{running:.0%}, waiting on a row/transaction lock {lock:.1%}, on an LWLock {lwlock:.1%}, on IO {io:.1%}, "
        f"idle in a transaction (Python working) {in_txn:.0%}, idle (Python between transactions, or no task) "
        f"{idle:.0%}")
    if n_workers > 1:
        say("    backends in a transaction at once: " + ", ".join(
            f"{busy}: {n / samples:.0%}" for busy, n in sorted(sampler.busy.items())))
    waits = [(key, n) for key, n in sampler.states.most_common() if key[1] in ("Lock", "LWLock")]
    if waits:
        say("    lock waits seen: " + ", ".join(f"{wait_type}/{wait} ({state}) ×{n}" for (state, wait_type, wait), n
                                             in waits[:5]))
    return {"idle": ceiling, "left": left / per_event, "cores_used": ours / wall}


def run(events=12000, timeout=900):
    from bench.ingest import publish_flows, record_events
    from saleor_flows.models import Enrolment, Event

    say(f"scale-out: {fmt_int(events)} pending events drained by 1, then 2 worker processes "
        f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    rates, ceilings = {}, {}
    for n_workers in (1, 2):
        truncate()
        publish_flows()
        record_events(0, events, prefix=f"s{n_workers}-", timed=False, per_transaction=500)
        vacuum_analyze()
        measured = drain(n_workers, events, timeout)
        seconds = measured["wall"]
        processed = Event.objects.filter(status=Event.Status.PROCESSED).count()
        enrolments = Enrolment.objects.count()
        rates[n_workers] = processed / seconds
        say(f"  {n_workers} worker process{'es' if n_workers > 1 else ''}: {fmt_int(processed)} events in "
            f"{seconds:.1f} s = {rates[n_workers]:,.0f} events/s ({fmt_int(enrolments)} enrolments, "
            f"{'each event once' if enrolments == 3 * events else 'NOT 3 PER EVENT'})")
        ceilings[n_workers] = explain(n_workers, events, measured)
    speedup = rates[2] / rates[1]
    limit = min(2.0, ceilings[2]["idle"] / rates[1])
    shared = min(2.0, ceilings[2]["left"] / rates[1])
    say(f"  speed-up: {speedup:.2f}×; the ceiling the CPU per event implies: {limit:.2f}× with {os.cpu_count()} idle "
        f"cores ({ceilings[2]['idle']:,.0f} / {rates[1]:,.0f} events/s), {shared:.2f}× with the cores the rest of "
        f"the machine left ({ceilings[2]['left']:,.0f} / {rates[1]:,.0f}); the workers and their backends used "
        f"{ceilings[1]['cores_used']:.2f} → {ceilings[2]['cores_used']:.2f} cores "
        f"({ceilings[2]['cores_used'] / ceilings[1]['cores_used']:.2f}×)")
    RESULTS.add("scale-out: 2 worker processes vs 1 on the same backlog",
                f"{speedup:.2f}× ({rates[1]:,.0f} → {rates[2]:,.0f} events/s; CPU ceiling {limit:.2f}× on idle cores,"
                f" {shared:.2f}× with the CPU the machine left)",
                f"at least {TARGET_SPEEDUP}×", speedup >= TARGET_SPEEDUP)
    return speedup


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
