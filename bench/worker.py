"""Real Celery worker processes for the benchmarks: ``celery -A bench.worker worker`` on the bench settings.

``workers(n)`` starts ``n`` of them (solo pool, one process each, as a shop
scales out: one more process, no coordinator) and stops them at the end.
They share the work through the broker and PostgreSQL (``SKIP LOCKED``).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import django
from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

app = Celery("saleor_flows_bench")
app.config_from_object("django.conf:settings", namespace="CELERY")
import saleor_flows.tasks  # noqa: E402,F401  (registers the shared tasks on this app)


@worker_ready.connect
def _say_ready(**kwargs):
    """Tells ``workers()`` this process consumes its queues (a file: a control ping went unanswered at times
    once an earlier group of workers had come and gone)."""
    if os.environ.get("BENCH_READY_FILE"):
        open(os.environ["BENCH_READY_FILE"], "w").close()


if os.environ.get("BENCH_SENDS_PRIORITY"):  # bench/drain.py's "before": sends on the same list as events
    saleor_flows.tasks.SENDS_PRIORITY = int(os.environ["BENCH_SENDS_PRIORITY"])


WORKER_APPLICATION_NAME = "saleor-flows-bench-worker"  # their PostgreSQL backends, in pg_stat_activity


@contextlib.contextmanager
def workers(n: int, *, queues: tuple[str, ...] = (), name: str = "bench", options: tuple[str, ...] = ()):
    """``n`` worker processes consuming ``queues`` (default: the app's default queue); ready when this yields.

    ``name`` tells apart the groups started side by side (one per queue); ``options`` are more
    ``celery worker`` options (``--prefetch-multiplier 1`` as docs/operations.md recommends).
    """
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
           "BENCH_APPLICATION_NAME": WORKER_APPLICATION_NAME,
           "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")]))}
    procs = []
    ready_dir = tempfile.mkdtemp(prefix="bench-workers-")
    ready = [os.path.join(ready_dir, f"{name}{i}") for i in range(n)]
    try:
        for i in range(n):
            command = [sys.executable, "-m", "celery", "-A", "bench.worker", "worker", "-P", "solo",
                       "-n", f"{name}{i}-{os.getpid()}@%h", "-l", "WARNING", "--without-gossip", "--without-mingle",
                       "--without-heartbeat"]
            if queues:
                command += ["-Q", ",".join(queues)]
            command += list(options)
            log = open(os.environ["BENCH_WORKER_LOG"], "ab") if os.environ.get("BENCH_WORKER_LOG") else subprocess.DEVNULL
            procs.append(subprocess.Popen(command, env={**env, "BENCH_READY_FILE": ready[i]},
                                          stdout=subprocess.DEVNULL, stderr=log))
        _wait_ready(procs, ready)
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # warm shutdown: the running task finishes
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(ready_dir, ignore_errors=True)


def _wait_ready(procs, ready, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a benchmark worker exited at start")
        if all(os.path.exists(path) for path in ready):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{len(procs)} benchmark workers were not ready within {timeout} s")
