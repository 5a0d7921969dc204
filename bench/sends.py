"""Sends from due executions to a real SMTP server (target: at least 1,000 emails/s per process, and at
least half of what plain ``smtplib`` does with the same messages over one connection to the same server).

An aiosmtpd server runs in a process of its own (its CPU is not this process's) and accepts every
message. The prebuilt abandoned-checkout journey is published and N contacts each have a due
``email_reminder`` execution (pending, due now; set up in bulk). Then, in this one process:

1. the engine, as a worker runs it: ``sweep.claim_due(SWEEP_BATCH_SIZE)``, then ``runner.run_claimed()``
   over chunks of ``SWEEP_CHUNK_SIZE`` (locks, exit and goal checks, consent, render, `sending`
   committed per window, the hand-off over one open SMTP connection per chunk, `sent` recorded, the trail,
   the next wait scheduled), until nothing is due;
2. the limit: the same N messages, built beforehand as bytes (``EmailMessage.message().as_bytes()``),
   sent with ``smtplib.SMTP.sendmail()`` over one connection to the same server.

Then a cProfile of the engine path over a further batch says where the time goes, and a last
batch (4,000; 100,000 with ``--full``) due at once is drained by 2 fresh worker processes (their start
included), with each one's RSS after its first and last chunk.
"""

import cProfile
import io
import multiprocessing
import os
import pstats
import smtplib
import time
from datetime import timedelta

from bench.common import RESULTS, CpuMeter, fmt_int, say, short_paths, truncate

TARGET_PER_S = 1000
TARGET_RATIO = 0.5
STEP = "email_reminder"


class _CountingHandler:
    """Accept every message; count them (and their bytes) in shared memory; with ``arrivals`` (a
    multiprocessing queue), also say when each message for a ``probe`` address arrived (``time.time()``)."""

    def __init__(self, count, size, arrivals=None):
        self.count, self.size, self.arrivals = count, size, arrivals

    async def handle_DATA(self, server, session, envelope):
        with self.count.get_lock():
            self.count.value += 1
            self.size.value += len(envelope.content)
        if self.arrivals is not None:
            now = time.time()
            for to in envelope.rcpt_tos:
                if to.startswith("probe"):
                    self.arrivals.put((to, now))
        return "250 OK"


def _serve(port, count, size, ready, arrivals=None):
    import asyncio

    from aiosmtpd.controller import Controller

    controller = Controller(_CountingHandler(count, size, arrivals), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    asyncio.run(asyncio.sleep(10 ** 6))


class SmtpSink:
    """An aiosmtpd server in its own process: ``.port``, ``.count``, ``.stop()``; ``.arrivals`` with ``timed``."""

    def __init__(self, timed=False):
        import socket

        with socket.socket() as probe:  # aiosmtpd needs a concrete port
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        ctx = multiprocessing.get_context("fork")  # the child only serves SMTP (no database)
        self._count, self._size, ready = ctx.Value("l", 0), ctx.Value("q", 0), ctx.Event()
        self.arrivals = ctx.Queue() if timed else None
        self.process = ctx.Process(target=_serve, args=(self.port, self._count, self._size, ready, self.arrivals),
                                   daemon=True)
        self.process.start()
        if not ready.wait(30):
            raise RuntimeError("the aiosmtpd server did not start")

    @property
    def count(self):
        return self._count.value

    @property
    def size(self):
        return self._size.value

    def stop(self):
        self.process.kill()
        self.process.join()


def drain(limit=None, rss=None, batch=None):
    """What a worker does with the due sends: claim a batch, run it chunk by chunk; until nothing is due
    (or ``limit`` sends). Returns how many ran; appends this process's RSS (MB) after each batch to ``rss``."""
    from saleor_flows.conf import flows_setting
    from saleor_flows.engine.runner import run_claimed
    from saleor_flows.engine.sweep import claim_due

    batch, chunk = batch or flows_setting("SWEEP_BATCH_SIZE"), flows_setting("SWEEP_CHUNK_SIZE")
    if limit:
        batch = min(batch, limit)
    done = 0
    while True:
        ids = claim_due(batch)
        for start in range(0, len(ids), chunk):
            run_claimed(ids[start:start + chunk])
        done += len(ids)
        if rss is not None:
            rss.append(_rss_mb())
        if len(ids) < batch or (limit and done >= limit):
            return done


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


WORKER = """
import json, sys
import django
django.setup()
from django.conf import settings
settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "SMTP": {"host": "127.0.0.1", "port": int(sys.argv[1]), "timeout": 30}}
from saleor_flows.conf import flows_setting
from saleor_flows.engine import dispatch
from bench.sends import drain
rss = []
with dispatch.forced("inline"):
    done = drain(rss=rss, batch=flows_setting("SWEEP_CHUNK_SIZE"))
print(json.dumps([done, rss[0], rss[-1], max(rss)]))
"""


def drained_by_workers(workers: int, port: int):
    """Everything due (by the real clock), drained by ``workers`` fresh worker processes, each doing what
    ``drain()`` does a chunk at a time (they share the work through SKIP LOCKED, as workers share a sweep's
    tasks). Returns (wall seconds, [(sends, RSS after the first chunk, at the end, max)]) (RSS in MB)."""
    import json
    import subprocess
    import sys

    env = dict(os.environ, DJANGO_SETTINGS_MODULE=os.environ.get("DJANGO_SETTINGS_MODULE", "bench.settings"))
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(port)], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    results = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    return time.perf_counter() - t0, results


def prebuilt(n):
    """n cart emails as the engine builds them (rendered, headers, MIME), as bytes: the raw limit's input."""
    import uuid

    from saleor_flows.channels import delivery
    from saleor_flows.engine.definition import message_kind
    from saleor_flows.models import Enrolment

    enrolments = list(Enrolment.objects.select_related("contact", "trigger_event", "flow", "version")
                      .order_by("id")[:n])
    out = []
    for enrolment in enrolments:
        definition = enrolment.version.definition
        step = definition["steps"][STEP]
        outgoing = delivery.prepare(step, kind=message_kind(step, definition), flow=enrolment.flow,
                                    contact=enrolment.contact, event_payload=enrolment.trigger_event.payload,
                                    send_id=uuid.uuid4())
        msg = outgoing.payload
        out.append((msg.from_email, msg.recipients(), msg.message().as_bytes(linesep="\r\n")))  # as Django's SMTP backend sends it
    return out


def raw_smtplib(port, messages):
    t0 = time.perf_counter()
    server = smtplib.SMTP("127.0.0.1", port, timeout=30)
    for from_email, recipients, data in messages:
        server.sendmail(from_email, recipients, data)
    server.quit()
    return time.perf_counter() - t0


def run(n=3000, n_profile=600, n_drain=4000):
    from django.test import override_settings
    from django.utils import timezone

    from saleor_flows import clock
    from saleor_flows.conf import flows_setting
    from saleor_flows.engine import dispatch
    from saleor_flows.models import Message, StepExecution
    from bench.render import send_executions, setup_journeys

    say(f"sends: {fmt_int(n)} due cart emails (abandoned-checkout journey) to a real SMTP server (aiosmtpd in its own"
        f" process), one process")
    truncate()
    start = clock.now()
    clock.set_now(start)
    sink = SmtpSink()
    smtp = {"host": "127.0.0.1", "port": sink.port, "timeout": 30}
    try:
        setup_journeys(n + n_profile + n_drain)
        clock.set_now(start + timedelta(hours=1, seconds=1))
        send_executions(clock.now(), n, claimed=False)
        with override_settings(SALEOR_FLOWS={**_flows_settings(), "SMTP": smtp}), dispatch.forced("inline"):
            chunk, window = flows_setting("SWEEP_CHUNK_SIZE"), flows_setting("SEND_WINDOW")
            with CpuMeter() as meter:
                drained = drain()
            arrived = sink.count
            engine_rate = drained / meter.wall
            sent = Message.objects.filter(status="sent").count()
            say(f"  engine (claim_due + run_claimed, chunks of {chunk}, windows of {window}): {fmt_int(drained)} sends"
                f" in {meter.wall:.2f} s: {engine_rate:,.0f} emails/s; {meter.per(drained)}")
            if sent != n or arrived != n:
                say(f"    (UNEXPECTED: {sent} messages sent, {arrived} at the server, expected {n})")
            messages = prebuilt(n)
            before = sink.count
            raw_s = raw_smtplib(sink.port, messages)
            raw_rate = n / raw_s
            if sink.count - before != n:
                say(f"    (UNEXPECTED: {sink.count - before} raw messages at the server, expected {n})")
            size = sum(len(data) for _, _, data in messages) / n / 1024
            ratio = engine_rate / raw_rate
            say(f"  limit: smtplib, the same {fmt_int(n)} prebuilt messages ({size:.1f} KB each) over one connection:"
                f" {raw_rate:,.0f} emails/s")
            say(f"  engine / limit: {ratio:.0%}")
            profile_text, queries = profile(n, n_profile)
            say(f"  engine path, per send: {queries:.1f} statements")
            say(f"  cProfile of {fmt_int(n_profile - n_profile // 2)} more engine sends:")
            say("    " + "\n    ".join(line for line in profile_text.strip().splitlines() if line.strip()))
            # Due by the real clock: the workers are processes of their own, without this one's clock.
            send_executions(timezone.now(), n_drain, claimed=False, offset=n + n_profile)
            before = sink.count
            drain_s, per_worker = drained_by_workers(2, sink.port)
            drained_n = sum(done for done, *_ in per_worker)
            say(f"  {fmt_int(n_drain)} due at once, drained by 2 worker processes: {drain_s:.1f} s"
                f" ({drained_n / drain_s:,.0f} emails/s); per process: " + "; ".join(
                    f"{fmt_int(done)} sends, RSS {first:.0f} MB after its first chunk, {last:.0f} MB at the end"
                    f" (max {top:.0f})" for done, first, last, top in per_worker))
            if drained_n != n_drain or sink.count - before != n_drain:
                say(f"    (UNEXPECTED: {drained_n} drained, {sink.count - before} at the server, expected {n_drain})")
            left = StepExecution.objects.filter(step_id=STEP, state__in=["pending", "claimed", "sending"]).count()
            if left:
                say(f"    (UNEXPECTED: {left} email_reminder executions not finished)")
    finally:
        sink.stop()
        clock.reset()
    RESULTS.add("sends: due executions to aiosmtpd (claim + run_claimed)", f"{engine_rate:,.0f} emails/s per process",
                f"at least {TARGET_PER_S:,} emails/s per process", engine_rate >= TARGET_PER_S)
    RESULTS.add("sends: engine / raw smtplib over one connection, same server, same run",
                f"{ratio:.0%} ({engine_rate:,.0f} / {raw_rate:,.0f} emails/s)", f"at least {TARGET_RATIO:.0%}",
                ratio >= TARGET_RATIO)
    top_rss = max(top for *_, top in per_worker)
    RESULTS.add(f"sends: {fmt_int(n_drain)} due drained to aiosmtpd by 2 worker processes",
                f"{drain_s:.1f} s, worker RSS up to {top_rss:.0f} MB",
                "100,000 in under 100 s (--full), RSS flat and under 300 MB",
                (drain_s < 100 if n_drain >= 100_000 else None) and top_rss < 300)
    return {"engine": engine_rate, "raw": raw_rate, "ratio": ratio, "drain_s": drain_s}


def _flows_settings():
    from django.conf import settings

    return dict(settings.SALEOR_FLOWS)


def profile(n, n_profile):
    """Statements per send (half of ``n_profile`` more due sends) and a cProfile (the other half)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from saleor_flows import clock
    from bench.render import send_executions

    send_executions(clock.now(), n_profile, claimed=False, offset=n)
    connection.queries_log.clear()  # a full log would capture nothing
    with CaptureQueriesContext(connection) as captured:
        done = drain(limit=n_profile // 2)
    queries = len(captured.captured_queries) / max(1, done)
    profiler = cProfile.Profile()
    profiler.enable()
    drain()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"saleor_flows|django/core/mail|smtplib|jinja2/environment|psycopg/cursor", 25)
    stats.sort_stats("tottime").print_stats(12)
    return short_paths(out.getvalue()), queries


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
