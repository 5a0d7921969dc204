"""What every benchmark shares: Django setup, emptying tables, statistics, flows and result lines."""

import os
import re
import statistics
import time
from dataclasses import dataclass, field

_ready = False


def setup():
    """Create the database if missing, start Django, migrate. Safe to call twice."""
    global _ready
    if _ready:
        return
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    from bench import settings as bench_settings

    if os.environ["DJANGO_SETTINGS_MODULE"] == "bench.settings":
        bench_settings.ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    start_autoanalyze()
    _ready = True


AUTOANALYZE_SECONDS = 10


def start_autoanalyze(interval=AUTOANALYZE_SECONDS):
    """ANALYZE the saleor_flows tables every ``interval`` seconds, in a daemon thread.

    A stand-in for autovacuum, which is off on the server these benchmarks were written on:
    without fresh statistics the planner keeps the plans it chose for empty tables while
    they grow (it then scans every enrolment of a flow through the flow_id index to check
    one contact's re-entry). A production server's autovacuum analyzes a growing table about
    once a minute; every 10 s is kinder to the engine than that.
    """
    import threading

    def loop():
        from django.db import connection

        while True:
            time.sleep(interval)
            try:
                with connection.cursor() as cursor:
                    for table in flows_tables():
                        cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")
            except Exception:  # noqa: BLE001 - a table being truncated or dropped: next round
                connection.close()

    threading.Thread(target=loop, name="bench-autoanalyze", daemon=True).start()


def flows_tables() -> list[str]:
    from django.apps import apps

    return [model._meta.db_table for model in apps.get_app_config("saleor_flows").get_models()]


def truncate():
    """Empty every saleor_flows table, then VACUUM ANALYZE them; forget cached flow versions.

    Ids are not restarted: the engine caches published versions by id for the life of a
    process (they are immutable), so an id must never come back with other contents.
    The server this was written on runs with autovacuum off, so the benchmarks
    vacuum and analyze themselves where a production server's autovacuum would.
    """
    from django.core import mail
    from django.db import connection

    tables = ", ".join(connection.ops.quote_name(t) for t in flows_tables())
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} CASCADE")
    vacuum_analyze()
    clear_caches()
    mail.outbox = []


def clear_caches():
    """The engine's per-process caches of immutable things (published versions, compiled templates)."""
    import functools

    from saleor_flows.channels import templating
    from saleor_flows.engine import definition

    for module in (definition, templating):
        for value in vars(module).values():
            if isinstance(value, functools._lru_cache_wrapper):
                value.cache_clear()


def vacuum_analyze(*tables):
    from django.db import connection

    names = tables or flows_tables()
    with connection.cursor() as cursor:
        for table in names:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


# --- numbers -------------------------------------------------------------------

def percentile(values, p):
    """The p-th percentile (0..100), nearest-rank on the sorted values."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class Dist:
    values: list

    @property
    def median(self):
        return statistics.median(self.values)

    def p(self, q):
        return percentile(self.values, q)

    def describe(self, unit="ms", scale=1e3, digits=1):
        fmt = lambda v: f"{v * scale:,.{digits}f}"  # noqa: E731
        return (f"median {fmt(self.median)} {unit}  p95 {fmt(self.p(95))} {unit}  p99 {fmt(self.p(99))} {unit}"
                f"  min {fmt(min(self.values))}  max {fmt(max(self.values))} {unit}  (n={len(self.values):,})")


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


# --- results -------------------------------------------------------------------

@dataclass
class Figure:
    """One measured figure against its docs/design.md target (``met`` None: no target, reported for context)."""

    name: str
    value: str
    target: str = ""
    met: bool | None = None


@dataclass
class Results:
    figures: list[Figure] = field(default_factory=list)

    def add(self, name, value, target="", met=None):
        self.figures.append(Figure(name, value, target, met))
        mark = "" if met is None else ("  [target met]" if met else "  [target MISSED]")
        print(f"  => {name}: {value}{'  (target: ' + target + ')' if target else ''}{mark}", flush=True)


RESULTS = Results()


def say(text=""):
    print(text, flush=True)


def fmt_int(n):
    return f"{n:,}"


def short_paths(text: str) -> str:
    """Profiler output with site-packages, the standard library and this checkout left out of file names."""
    from pathlib import Path

    text = re.sub(r"\S*/site-packages/", "", text)
    text = re.sub(r"\S*/lib/python3\.\d+/", "", text)
    return text.replace(str(Path(__file__).resolve().parents[1]) + "/", "")


# --- flows -----------------------------------------------------------------------

def mjml(body: str) -> str:
    return ("<mjml><mj-body><mj-section><mj-column>"
            f"<mj-text>{body}</mj-text>"
            "</mj-column></mj-section></mj-body></mjml>")


def publish(definition: dict, slug: str):
    from saleor_flows.engine.definition import create_flow, publish_flow

    flow = create_flow(slug, definition)
    publish_flow(flow)
    flow.refresh_from_db()
    return flow


def welcome_journey(*, first_wait_days: int | None = None) -> dict:
    """The prebuilt welcome series; with ``first_wait_days`` it starts with a wait instead of an email."""
    from saleor_flows.journeys import load_journey

    definition = load_journey("welcome")
    for key in ("name", "description", "version"):
        definition.pop(key, None)
    if first_wait_days:
        definition["steps"]["wait_first"] = {"type": "wait", "duration": {"days": first_wait_days},
                                             "next": definition["start"]}
        definition["start"] = "wait_first"
    return definition


def create_contacts(emails, *, consent="subscribed", first_name="Jane"):
    """Contacts with marketing consent, set up in bulk (not what is measured)."""
    from saleor_flows import clock
    from saleor_flows.models import Contact

    now = clock.now()
    Contact.objects.bulk_create(
        [Contact(email=e, first_name=first_name, email_consent=consent, email_consent_source="signup",
                 email_consent_at=now, created_at=now, updated_at=now) for e in emails],
        batch_size=5000,
    )


# --- CPU accounting -----------------------------------------------------------------
#
# The development machine is shared: other processes compete for its two cores, so wall
# times include waiting for a CPU. CPU seconds (this process, and the PostgreSQL backend
# serving its connection) do not, and tell what the work itself costs.

_TICK = os.sysconf("SC_CLK_TCK")


def backend_pid():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _proc_cpu(pid) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:  # another machine (PostgreSQL not local) or no permission
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / _TICK


def machine_cpu() -> float:
    """CPU seconds the whole machine has spent busy since boot (every core, every process: /proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / _TICK


class BackendSampler:
    """Samples, every ``interval`` s in a thread, the PostgreSQL backends of one application_name:
    what each is doing (running, waiting on a lock, or idle while its client works) and its CPU.

    A backend that appears during the run started after it, so all of its CPU is counted.
    Stop it before the clients close their connections (their backends' /proc entries go with them).
    """

    def __init__(self, application_name, interval=0.05):
        import collections
        import threading

        self.name, self.interval = application_name, interval
        self.states = collections.Counter()  # (state, wait_event_type, wait_event) → samples
        self.busy = collections.Counter()  # backends in a transaction or a statement at once → samples
        self.cpu0, self.cpu1 = {}, {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-pg-sampler", daemon=True)

    def __enter__(self):
        self._sample(first=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _loop(self):
        from django.db import connection

        try:
            while not self._stop.wait(self.interval):
                self._sample()
            self._sample()
        finally:
            connection.close()

    def _sample(self, first=False):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid, state, coalesce(wait_event_type, ''), coalesce(wait_event, '') "
                           "FROM pg_stat_activity WHERE application_name = %s", [self.name])
            rows = cursor.fetchall()
        busy = 0
        for pid, state, wait_type, wait in rows:
            self.cpu0.setdefault(pid, _proc_cpu(pid) if first else 0.0)
            self.cpu1[pid] = _proc_cpu(pid)
            if not first:
                self.states[(state, wait_type, wait)] += 1
                busy += state != "idle"
        if not first:
            self.busy[busy] += 1

    @property
    def cpu(self) -> float:
        return sum(self.cpu1[pid] - self.cpu0[pid] for pid in self.cpu1)

    def share(self, predicate) -> float:
        total = sum(self.states.values())
        return sum(n for key, n in self.states.items() if predicate(*key)) / total if total else float("nan")


def process_cpu(pid) -> float:
    """CPU seconds (user + system) process ``pid`` has used (nan where /proc cannot tell)."""
    return _proc_cpu(pid)


class CpuMeter:
    """Wall seconds, this process's CPU seconds, and the PostgreSQL backend's CPU seconds."""

    def __enter__(self):
        self.pid = backend_pid()
        self.wall0, self.cpu0, self.pg0 = time.perf_counter(), time.process_time(), _proc_cpu(self.pid)
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0
        self.pg = _proc_cpu(self.pid) - self.pg0

    def per(self, n, unit=1e3):
        """'python 1.23 ms + postgres 0.45 ms CPU per item (wall 2.00 ms)'."""
        return (f"CPU per item: Python {self.cpu / n * unit:.2f} ms + PostgreSQL backend {self.pg / n * unit:.2f} ms"
                f" (wall {self.wall / n * unit:.2f} ms)")


def run_forked(func, chunks):
    """func(chunk) in one forked process per chunk (two cores: two processes). Returns their results.

    Django's connections are closed first so that every child opens its own; ``func`` runs with
    this process's state (settings, the engine's clock), which fork copies.
    """
    import multiprocessing

    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("fork")

    def child(chunk, pipe):
        try:
            result = ("ok", func(chunk))
        except BaseException:  # said to the parent, which would otherwise wait for an answer forever
            import traceback

            result = ("error", traceback.format_exc())
        finally:
            connections.close_all()
        pipe.send(result)
        pipe.close()

    pipes, procs = [], []
    for chunk in chunks:
        parent, child_end = ctx.Pipe()
        proc = ctx.Process(target=child, args=(chunk, child_end))
        proc.start()
        child_end.close()  # only the child writes: a child that dies unannounced is then an EOFError here
        procs.append(proc)
        pipes.append(parent)
    results = []
    for pipe in pipes:
        try:
            results.append(pipe.recv())
        except EOFError:
            results.append(("error", "the worker process died without an answer"))
    for proc in procs:
        proc.join()
    failed = [detail for status, detail in results if status == "error"]
    if failed:
        raise RuntimeError("a forked benchmark worker failed:\n" + failed[0])
    return [value for _, value in results]
