"""Shared set-up for the SMS provider tests: settings and a flow that texts."""

from .flowkit import chain

JANE = "jane@example.com"
PUBLIC = "https://api.shop.example"


def sms_settings(settings, **values):
    """Override SALEOR_FLOWS keys for one test (pytest-django restores them afterwards)."""
    settings.SALEOR_FLOWS = {**settings.SALEOR_FLOWS, "PUBLIC_URL": PUBLIC, **values}


def texting_flow(flows, body="Hi {{ contact.first_name }}, your cart is waiting", **top):
    return flows.flow(chain("go", ("text", {"type": "send_sms", "body": body, "next": None}), **top))
