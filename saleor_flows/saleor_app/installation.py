"""The App's installation as the engine's sending hold sees it: removed (``APP_DELETED``, a refused token) or not.

The row itself (``SaleorAppInstallation``: which Saleor, the encrypted
token) is written by the shared register endpoint (``dashboard/register.py``),
which also clears the removal when the App is installed again.
"""

import threading
import time

from .. import clock
from ..models import SaleorAppInstallation

HOLD_CACHE_SECONDS = 5  # the runner asks before every step; the answer may be this stale
_lock = threading.Lock()
_cached = {"until": 0.0, "reason": ""}


def current() -> SaleorAppInstallation | None:
    return SaleorAppInstallation.objects.order_by("pk").first()


def mark_removed(reason: str) -> bool:
    """Hold all sending until the App is installed again. True when this changed anything."""
    changed = SaleorAppInstallation.objects.filter(removed_at__isnull=True).update(
        removed_at=clock.now(), removed_reason=reason[:200])
    forget()
    return bool(changed)


def forget() -> None:
    with _lock:
        _cached["until"] = 0.0


def hold_reason() -> str:
    """Registered with ``engine.holds``: why nothing may be sent, or "" while the App is installed."""
    with _lock:
        if time.monotonic() < _cached["until"]:
            return _cached["reason"]
    row = SaleorAppInstallation.objects.filter(removed_at__isnull=False).values_list(
        "removed_reason", flat=True).first()
    reason = f"the Saleor App is not installed ({row or 'removed'}); install it again to resume" if row is not None \
        else ""
    with _lock:
        _cached.update(until=time.monotonic() + HOLD_CACHE_SECONDS, reason=reason)
    return reason
