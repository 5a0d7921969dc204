"""Holds on all sending, set by an edge: "stop, the shop took us out" without the engine knowing the host.

An edge registers a check (``register_hold``) that answers why nothing may
be sent right now, or "". The Saleor App edge holds sending while its App is
uninstalled (``APP_DELETED``) or its token is refused. The runner asks
before every step: a held step goes back to waiting, exactly as in a paused
flow, and runs when the hold is lifted (the App installed again), so
journeys pick up where they were instead of ending.
"""

import logging

logger = logging.getLogger(__name__)
_checks: list = []


def register_hold(check) -> None:
    """``check() -> str``: why sending is held, or "" (registered once per process; the same check twice is one)."""
    if check not in _checks:
        _checks.append(check)


def unregister_hold(check) -> None:
    if check in _checks:
        _checks.remove(check)


def sending_held() -> str:
    """The first reason an edge gives to hold all sending, or ""."""
    for check in _checks:
        try:
            reason = check()
        except Exception:  # a broken check must not stop (nor silently release) the runner: hold, and say why
            logger.exception("saleor-flows: a sending hold check failed; holding")
            return "a sending hold check failed"
        if reason:
            return reason
    return ""
