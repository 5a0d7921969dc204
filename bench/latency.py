"""Event to first immediate email (target: median under 100 ms, p99 under 2 s).

Through the real thing: ``record_event()`` in a request-like transaction →
the on-commit wake-up (``process_pending``, see bench/hook.py for its cost) → Redis (db 14) → a real Celery worker
(``start_worker``, solo pool, in a thread of this process) → processing,
enrolment and the welcome email (the prebuilt welcome journey, first step an
immediate email) → Django's locmem backend, whose subclass here notes the
moment each message arrives. Latency = arrival − the moment before the
transaction began, per event.

200 events one after another (each waits for its email), then a burst of
1,000 recorded back to back (each in its own transaction).
"""

import threading
import time

from django.core.mail.backends.locmem import EmailBackend as LocmemBackend

from bench.common import RESULTS, Dist, create_contacts, fmt_int, publish, say, truncate, vacuum_analyze, welcome_journey

TARGET_MEDIAN_MS = 100
TARGET_P99_MS = 2000

_arrivals: dict[str, float] = {}
_arrived = threading.Condition()
_task_started: dict[int, float] = {}


class TimedBackend(LocmemBackend):
    """locmem, and the arrival time of each message by recipient."""

    def send_messages(self, messages):
        count = super().send_messages(messages)
        now = time.perf_counter()
        with _arrived:
            for message in messages:
                for to in message.to:
                    _arrivals[to] = now
            _arrived.notify_all()
        return count


def wait_for(recipients, timeout):
    deadline = time.monotonic() + timeout
    with _arrived:
        while not all(r in _arrivals for r in recipients):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            _arrived.wait(left)
    return True


def celery_app():
    from celery import Celery

    app = Celery("saleor_flows_bench")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    import saleor_flows.tasks  # noqa: F401  (registers the shared tasks on this app)

    return app


def _on_prerun(sender=None, args=None, **kwargs):
    if sender is not None and sender.name == "saleor_flows.process_event" and args:
        _task_started[args[0]] = time.perf_counter()


def record(email, i):
    from django.db import transaction

    from saleor_flows.events import record_event

    with transaction.atomic():  # a request: the enqueue happens on commit
        recorded = record_event("customer_created", email=email, payload={"first_name": "Jane", "source": "storefront"},
                                dedupe_key=f"customer_created:{email}")
    return recorded.id


def run(sequential=200, burst=1000):
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_prerun
    from django.core import mail
    from django.test import override_settings

    from saleor_flows.engine import dispatch

    say(f"latency: event → first email through Redis and a real Celery worker "
        f"({sequential} one by one, then a burst of {fmt_int(burst)})")
    truncate()
    publish(welcome_journey(), "welcome")
    emails = [f"lat{i}@example.com" for i in range(sequential + burst + 20)]
    create_contacts(emails)
    vacuum_analyze()
    _arrivals.clear()
    _task_started.clear()
    mail.outbox = []
    app = celery_app()
    app.control.purge()
    task_prerun.connect(_on_prerun)
    try:
        with override_settings(EMAIL_BACKEND="bench.latency.TimedBackend"), dispatch.forced("celery"), \
                start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30):
            # warm-up: first task imports, connects, compiles templates
            for i, email in enumerate(emails[-20:]):
                record(email, i)
                wait_for([email], 30)

            seq_latency, queue_wait, lost = [], [], 0
            for i, email in enumerate(emails[:sequential]):
                t0 = time.perf_counter()
                event_id = record(email, i)
                if not wait_for([email], 30):
                    lost += 1
                    continue
                seq_latency.append(_arrivals[email] - t0)
                if event_id in _task_started:
                    queue_wait.append(_task_started[event_id] - t0)
            seq = Dist(seq_latency)
            say(f"  one by one: {seq.describe()}")
            if queue_wait:
                q = Dist(queue_wait)
                say(f"    of which record + commit + broker + worker pick-up: median {q.median * 1e3:.1f} ms, "
                    f"p99 {q.p(99) * 1e3:.1f} ms; processing + send in the worker: median ≈ "
                    f"{(seq.median - q.median) * 1e3:.1f} ms")

            burst_emails = emails[sequential:sequential + burst]
            starts = {}
            t_burst = time.perf_counter()
            for i, email in enumerate(burst_emails):
                starts[email] = time.perf_counter()
                record(email, i)
            t_recorded = time.perf_counter()
            complete = wait_for(burst_emails, 300)
            arrived = [e for e in burst_emails if e in _arrivals]
            b = Dist([_arrivals[e] - starts[e] for e in arrived])
            last = max(_arrivals[e] for e in arrived)
            say(f"  burst of {fmt_int(burst)}: {b.describe()}")
            say(f"    recorded in {t_recorded - t_burst:.2f} s; all emails out after {last - t_burst:.2f} s "
                f"= {len(arrived) / (last - t_burst):,.0f} events → emails/s through one solo worker"
                f"{'' if complete else f'  (ONLY {len(arrived)} ARRIVED)'}")
            if lost:
                say(f"    ({lost} one-by-one events timed out)")
    finally:
        task_prerun.disconnect(_on_prerun)
        app.control.purge()
        mail.outbox = []

    RESULTS.add("latency: event → first email, one by one (Redis + Celery worker)",
                f"median {seq.median * 1e3:.1f} ms, p95 {seq.p(95) * 1e3:.1f} ms, p99 {seq.p(99) * 1e3:.1f} ms",
                f"median under {TARGET_MEDIAN_MS} ms, p99 under {TARGET_P99_MS / 1000:.0f} s",
                seq.median * 1e3 < TARGET_MEDIAN_MS and seq.p(99) * 1e3 < TARGET_P99_MS)
    RESULTS.add(f"latency: burst of {fmt_int(burst)}, one solo worker",
                f"median {b.median:.2f} s, p95 {b.p(95):.2f} s, p99 {b.p(99):.2f} s "
                f"({len(arrived) / (last - t_burst):,.0f} emails/s)",
                f"median under {TARGET_MEDIAN_MS} ms, p99 under {TARGET_P99_MS / 1000:.0f} s",
                b.median * 1e3 < TARGET_MEDIAN_MS and b.p(99) * 1e3 < TARGET_P99_MS)
    return seq, b


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
