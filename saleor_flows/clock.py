"""The engine's notion of "now".

All due times are computed from and compared against ``now()``, never the
database's own clock, so that tests (and the demo's simulated month) can move
time forward with :func:`travel` and run the real sweep against it.
"""

import contextlib
from datetime import datetime, timedelta

from django.utils import timezone

_frozen: list[datetime] = []


def now() -> datetime:
    if _frozen:
        return _frozen[-1]
    return timezone.now()


def set_now(moment: datetime):
    """Pin the clock (until :func:`reset`)."""
    if timezone.is_naive(moment):
        raise ValueError("clock.set_now() needs an aware datetime")
    _frozen[:] = [moment]


def advance(delta: timedelta):
    set_now(now() + delta)


def reset():
    _frozen.clear()


@contextlib.contextmanager
def travel(moment: datetime):
    set_now(moment)
    try:
        yield
    finally:
        reset()
