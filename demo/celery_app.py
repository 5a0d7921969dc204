"""The demo's Celery app and its in-process worker (used when ``CELERY_BROKER_URL`` is set).

The worker runs in a thread of the demo's own process, not as a separate
program: it then reads the same simulated clock (``saleor_flows.clock``) as
the main thread that records events and runs the sweep. The main thread waits
for the worker to finish (``wait_until_idle``) before it moves the clock on,
so every step runs at the simulated moment it was due.
"""

import contextlib
import sys
import time

from celery import Celery
from celery.contrib.testing.worker import start_worker

from saleor_flows.engine.sweep import leased_not_taken
from saleor_flows.models import Event, StepExecution

app = Celery("saleor_flows_demo")
app.config_from_object("django.conf:settings", namespace="CELERY")
import saleor_flows.tasks  # noqa: E402,F401  (registers the engine's shared tasks on this app)

IDLE_TIMEOUT_SECONDS = 60


@contextlib.contextmanager
def running_worker():
    """A real Celery worker (solo pool) consuming the demo queue in a background thread."""
    app.control.purge()  # leftovers of an interrupted run would point at rows that no longer exist
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="WARNING", shutdown_timeout=30):
        yield app


def is_idle() -> bool:
    """Nothing queued for the worker: no event waiting to be processed, no step leased by the sweep and not
    yet taken by the worker, no claimed step or send in flight."""
    return not (
        Event.objects.filter(status=Event.Status.PENDING).exists()
        or leased_not_taken()
        or StepExecution.objects.filter(state__in=[StepExecution.State.CLAIMED, StepExecution.State.SENDING]).exists()
    )


def wait_until_idle(timeout: float = IDLE_TIMEOUT_SECONDS) -> bool:
    """Poll until the worker has drained everything; warn (and go on) if it seems stuck."""
    deadline = time.monotonic() + timeout
    while not is_idle():
        if time.monotonic() > deadline:
            print(f"\nwarning: the Celery worker did not finish within {timeout:.0f}s; going on",
                  file=sys.stderr)
            return False
        time.sleep(0.002)
    return True
