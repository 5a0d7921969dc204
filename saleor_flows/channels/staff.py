"""Who counts as staff for staff notifications (notify_staff steps, new-subscriber notices).

A staff notification carries contact data; whoever may build a flow must not
be able to point it at an address of their own choosing. So it goes only to
staff addresses: the host's active staff users (a source the host edge adds,
since the engine never imports Saleor) and the deployment's
``STAFF_NOTIFY_RECIPIENTS``. Checked when a flow is published and again
right before each send (a staff member may have left in between).
"""

from ..conf import deployment_setting

_sources: list = []


def add_staff_source(source):
    """Register a callable returning the host's current staff email addresses (the Saleor edge does)."""
    if source not in _sources:
        _sources.append(source)


def staff_addresses() -> set[str]:
    addresses = {str(a) for a in deployment_setting("STAFF_NOTIFY_RECIPIENTS") or []}
    for source in _sources:
        addresses.update(str(a) for a in source() if a)
    return {a.strip().lower() for a in addresses}


def not_staff(addresses) -> list[str]:
    """The given addresses that are not staff addresses (compared without case), in their order."""
    known = staff_addresses()
    return [a for a in addresses if str(a).strip().lower() not in known]
