"""Event → first email while a big send drains (targets: median under 100 ms with an idle queue; p99 under 5 s
while 100,000 due sends drain: sends must not starve events).

Everything real: Celery worker processes (``celery -A bench.worker worker -P solo --prefetch-multiplier 1``,
bench/worker.py), the Redis broker, an aiosmtpd server in a process of its own (bench/sends.py's sink,
which notes when each probe's email arrives), PostgreSQL. This process plays the shop: Saleor's hooks
(``record_event()`` in a transaction, the wake-up on commit) and beat (a ``sweep`` task every 10 s).

Two deployments of docs/operations.md, each on a fresh backlog:

* one queue (the default): 2 worker processes on the app's default queue take everything;
* ``TASK_QUEUES`` ``{"events": …, "sends": …}``: one process on the events queue, one on the sends
  queue, and one on the default queue (Saleor's own worker: beat's sweep runs there);
* one queue as before this benchmark: the send chunks on the same Redis priority list as the
  wake-ups (``tasks.SENDS_PRIORITY`` 0), so a wake-up waits behind every chunk queued before it.

For each: N due cart emails (the abandoned-checkout journey, set up in bulk, due now; 5,000, or
100,000 with ``--full``); first, with the queue idle, probe events one at a time (a new contact's
``customer_created``; the welcome journey's first step is an immediate email), each waiting for its
email; then beat starts, the sweep claims the backlog and hands it out in chunks, and a probe event
is recorded every ``probe_every`` seconds until the last due email is at the server. Latency = the
probe email's arrival at the server − the moment before the hook's transaction began.
"""

import json
import os
import time

from bench.common import RESULTS, Dist, create_contacts, fmt_int, publish, say, truncate, vacuum_analyze, welcome_journey

TARGET_IDLE_MEDIAN_MS = 100
TARGET_DRAIN_P99_S = 5
BEAT_SECONDS = 10.0
EVENTS_QUEUE, SENDS_QUEUE = "flows-events-bench", "flows-sends-bench"
# label: (TASK_QUEUES, the sends' priority in the workers or None: as shipped)
SETUPS = {
    "one queue, 2 worker processes": (None, None),
    "TASK_QUEUES: 1 events + 1 sends + 1 default worker": ({"events": EVENTS_QUEUE, "sends": SENDS_QUEUE}, None),
    "one queue, sends not behind events (before)": (None, 0),
}


def record(email):
    from django.db import transaction

    from saleor_flows.events import record_event

    with transaction.atomic():  # a request: the wake-up happens on commit
        record_event("customer_created", email=email, payload={"first_name": "Jane", "source": "storefront"},
                     dedupe_key=f"customer_created:{email}")


def purge(queues):
    from bench.worker import app

    with app.connection_for_write() as conn:
        for queue in queues:
            try:
                conn.default_channel.queue_purge(queue)
            except Exception:  # noqa: BLE001 - a queue never declared: nothing in it
                pass


class Arrivals:
    """Probe emails at the server: address → arrival (``time.time()``), read from the sink's queue."""

    def __init__(self, sink):
        self.sink, self.at = sink, {}

    def collect(self, wait=0.0):
        import queue

        try:
            while True:
                to, at = self.sink.arrivals.get(timeout=wait) if wait else self.sink.arrivals.get_nowait()
                self.at[to] = at
                wait = 0.0
        except queue.Empty:
            pass

    def wait_for(self, emails, timeout):
        deadline = time.monotonic() + timeout
        while not all(e in self.at for e in emails) and time.monotonic() < deadline:
            self.collect(wait=0.05)
        return all(e in self.at for e in emails)


def run_setup(label, queues, priority, n, idle_probes, probe_every, timeout):
    from django.conf import settings
    from django.test import override_settings
    from django.utils import timezone

    from bench.render import send_executions, setup_journeys
    from bench.sends import SmtpSink
    from bench.worker import app
    from saleor_flows import tasks
    from saleor_flows.engine import dispatch
    from saleor_flows.models import Message

    truncate()
    setup_journeys(n)
    publish(welcome_journey(), "welcome")
    probes = [f"probe{i}@example.com" for i in range(idle_probes + 10 + int(timeout / probe_every))]
    create_contacts(probes)
    send_executions(timezone.now(), n, claimed=False)  # due by the real clock: the workers have no other
    vacuum_analyze()
    default_queue = app.conf.task_default_queue
    purge([default_queue, EVENTS_QUEUE, SENDS_QUEUE])
    tasks.WAKE_GUARD.clear(app)
    sink = SmtpSink(timed=True)
    arrivals = Arrivals(sink)
    os.environ["BENCH_SMTP_PORT"] = str(sink.port)
    os.environ["BENCH_TASK_QUEUES"] = json.dumps(queues or {})
    if priority is not None:
        os.environ["BENCH_SENDS_PRIORITY"] = str(priority)
    flows = {**settings.SALEOR_FLOWS, "SMTP": {"host": "127.0.0.1", "port": sink.port, "timeout": 30},
             "TASK_QUEUES": queues or {}}
    options = ("--prefetch-multiplier", "1")
    layout = [("w", 2, ())] if not queues else [
        ("ev", 1, (EVENTS_QUEUE,)), ("se", 1, (SENDS_QUEUE,)), ("de", 1, (default_queue,))]
    next_probe = iter(probes)
    try:
        with override_settings(SALEOR_FLOWS=flows), dispatch.forced("celery"), _all_workers(layout, options):
            idle = []
            for i in range(5 + idle_probes):  # the first 5 warm the workers up (imports, connections, templates)
                email = next(next_probe)
                t0 = time.time()
                record(email)
                if arrivals.wait_for([email], 30) and i >= 5:
                    idle.append(arrivals.at[email] - t0)
                time.sleep(0.05)
            sent_before = Message.objects.filter(status="sent").count()
            started = {}
            t_start = time.time()
            deadline, next_sweep = t_start + timeout, t_start
            while sink.count - len(arrivals.at) < n and time.time() < deadline:
                if time.time() >= next_sweep:  # beat, here: kombu's producer pool is not for two threads
                    tasks.publish(tasks.sweep)
                    next_sweep += BEAT_SECONDS
                email = next(next_probe)
                started[email] = time.time()
                record(email)
                arrivals.collect()
                time.sleep(max(0.0, probe_every - (time.time() - started[email])))
            drained_s = time.time() - t_start
            arrivals.wait_for(list(started), 60)
    finally:
        sink.stop()
        for key in ("BENCH_SMTP_PORT", "BENCH_TASK_QUEUES", "BENCH_SENDS_PRIORITY"):
            os.environ.pop(key, None)
        purge([default_queue, EVENTS_QUEUE, SENDS_QUEUE])
    sends = Message.objects.filter(status="sent").count() - sent_before - sum(1 for e in started if e in arrivals.at)
    idle_d = Dist(idle)
    got = [arrivals.at[e] - t for e, t in started.items() if e in arrivals.at]
    lost = len(started) - len(got)
    drain_d = Dist(got)
    say(f"  {label}:")
    say(f"    idle queue, {len(idle)} events one by one: {idle_d.describe()}")
    say(f"    while {fmt_int(n)} due emails drain ({drained_s:.1f} s, {sends / drained_s:,.0f} emails/s, "
        f"{fmt_int(sends)} sent): {len(started)} events {probe_every:g} s apart: "
        f"{drain_d.describe('s', 1, 2)}{f'  ({lost} NEVER GOT THEIR EMAIL)' if lost else ''}")
    if sends < n:
        say(f"    (UNEXPECTED: {fmt_int(sends)} of {fmt_int(n)} due emails sent within {timeout:.0f} s)")
    return idle_d, drain_d, lost, sends / drained_s


class _all_workers:
    """The worker groups of a layout [(name, processes, queues)], started together, stopped together."""

    def __init__(self, layout, options):
        import contextlib

        from bench.worker import workers

        self.stack = contextlib.ExitStack()
        self.enter = lambda: [self.stack.enter_context(workers(count, queues=queues, name=name, options=options))
                              for name, count, queues in layout]

    def __enter__(self):
        try:
            self.enter()
        except BaseException:
            self.stack.close()
            raise
        return self

    def __exit__(self, *exc):
        return self.stack.__exit__(*exc)


def run(n=5000, idle_probes=30, probe_every=0.2, timeout=None, before=True):
    """``before``: also the one-queue setup as it was (with --full its events would wait for most of the drain)."""
    timeout = timeout or max(300, n / 50)
    say(f"drain: event → first email while {fmt_int(n)} due emails drain to aiosmtpd, real Celery workers and Redis "
        f"({os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    results = {}
    for label, (queues, priority) in SETUPS.items():
        if priority is not None and not before:
            continue
        results[label] = run_setup(label, queues, priority, n, idle_probes, probe_every, timeout)
    for label, (idle, drain, lost, rate) in results.items():
        if SETUPS[label][1] is not None:  # the "before": for comparison, no target
            RESULTS.add(f"drain: event → first email while {fmt_int(n)} due emails drain ({label})",
                        f"median {drain.median:.2f} s, p99 {drain.p(99):.2f} s, max {max(drain.values):.2f} s")
            continue
        RESULTS.add(f"drain: event → first email, idle queue ({label})",
                    f"median {idle.median * 1e3:.1f} ms, p99 {idle.p(99) * 1e3:.1f} ms",
                    f"median under {TARGET_IDLE_MEDIAN_MS} ms", idle.median * 1e3 < TARGET_IDLE_MEDIAN_MS)
        RESULTS.add(f"drain: event → first email while {fmt_int(n)} due emails drain ({label})",
                    f"median {drain.median:.2f} s, p99 {drain.p(99):.2f} s, max {max(drain.values):.2f} s"
                    f"{f', {lost} lost' if lost else ''} ({rate:,.0f} emails/s)",
                    f"p99 under {TARGET_DRAIN_P99_S} s (100,000 due with --full)",
                    drain.p(99) < TARGET_DRAIN_P99_S and not lost)
    return results


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
