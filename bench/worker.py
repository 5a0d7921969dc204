"""Real Celery worker processes for the benchmarks: ``celery -A bench.worker worker`` on the bench settings.

``workers(n)`` starts ``n`` of them (solo pool, one process each, as a shop
scales out: one more process, no coordinator) and stops them at the end.
They share the work through the broker and PostgreSQL (``SKIP LOCKED``).
"""

import contextlib
import os
import signal
import subprocess
import sys
import time

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

app = Celery("saleor_flows_bench")
app.config_from_object("django.conf:settings", namespace="CELERY")
import saleor_flows.tasks  # noqa: E402,F401  (registers the shared tasks on this app)

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
    try:
        for i in range(n):
            command = [sys.executable, "-m", "celery", "-A", "bench.worker", "worker", "-P", "solo",
                       "-n", f"{name}{i}-{os.getpid()}@%h", "-l", "WARNING", "--without-gossip", "--without-mingle",
                       "--without-heartbeat"]
            if queues:
                command += ["-Q", ",".join(queues)]
            command += list(options)
            log = open(os.environ["BENCH_WORKER_LOG"], "ab") if os.environ.get("BENCH_WORKER_LOG") else subprocess.DEVNULL
            procs.append(subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log))
        _wait_ready(procs, n, name)
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


def _wait_ready(procs, n, name, timeout=60):
    deadline = time.monotonic() + timeout
    suffix = f"-{os.getpid()}@{os.uname().nodename}"
    while time.monotonic() < deadline:
        if any(proc.poll() is not None for proc in procs):
            raise RuntimeError("a benchmark worker exited at start")
        replies = app.control.ping(timeout=0.5) or []
        mine = [node for reply in replies for node in reply
                if node.endswith(suffix) and node.startswith(name) and node[len(name):-len(suffix)].isdigit()]
        if len(mine) >= n:
            return
    raise RuntimeError(f"{n} benchmark workers did not answer a ping within {timeout} s")
