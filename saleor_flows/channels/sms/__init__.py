"""SMS: a message type, segment counting, and pluggable backends in the spirit of Django's mail backends.

The backend is a dotted path in the SMS_BACKEND setting (``sms.console`` by
default, ``sms.locmem`` for tests; provider backends live beside them), so the
engine never imports a provider.
"""

from dataclasses import dataclass

from django.utils.module_loading import import_string

from ...conf import flows_setting
from .base import SmsError  # noqa: F401  (re-exported: what every backend raises)
from .segments import preview_sms, segments  # noqa: F401  (re-exported)


@dataclass
class SmsMessage:
    to: str
    body: str
    from_: str = ""  # empty: the backend uses SMS_FROM
    send_id: str = ""
    kind: str = ""  # "marketing" or "transactional": some providers route or bill them apart
    # Filled in by the backend once the provider accepted it: its id for the message (Twilio's
    # sid, Vonage's message_uuid, AWS's MessageId), which its status webhooks carry.
    provider_message_id: str = ""


def get_sms_backend(backend: str | None = None, *, fail_silently: bool = False, **kwargs):
    """An instance of the configured SMS backend (or of ``backend``, a dotted path)."""
    return import_string(backend or flows_setting("SMS_BACKEND"))(fail_silently=fail_silently, **kwargs)
