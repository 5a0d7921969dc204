"""Saleor's staff addresses for staff notifications (channels/staff.py asks through its seam)."""

from saleor.account.models import User


def staff_emails() -> list[str]:
    """Active staff users' emails: the only places a notify_staff step may mail contact data to."""
    return list(User.objects.filter(is_staff=True, is_active=True).values_list("email", flat=True))
