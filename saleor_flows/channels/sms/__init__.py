"""SMS: a message type, segment counting, and pluggable backends in the spirit of Django's mail backends.

The backend is a dotted path in the SMS_BACKEND setting (``sms.console`` by
default, ``sms.locmem`` for tests; provider backends live beside them), so the
engine never imports a provider.
"""

from dataclasses import dataclass

from django.utils.module_loading import import_string

from ...conf import flows_setting

# GSM 03.38: the basic set costs one septet a character, the extension set two (escape + char).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")


@dataclass
class SmsMessage:
    to: str
    body: str
    from_: str = ""  # empty: the backend uses SMS_FROM
    send_id: str = ""


def get_sms_backend(backend: str | None = None, *, fail_silently: bool = False, **kwargs):
    """An instance of the configured SMS backend (or of ``backend``, a dotted path)."""
    return import_string(backend or flows_setting("SMS_BACKEND"))(fail_silently=fail_silently, **kwargs)


def segments(body: str) -> tuple[str, int]:
    """``(encoding, count)``: how many SMS parts ``body`` is billed as.

    GSM-7 when every character is in the GSM alphabet: 160 septets in one part,
    153 a part once split (extension characters such as ``€`` take two septets
    and are never split across parts). Otherwise UCS-2: 70 UTF-16 units in one
    part, 67 once split (an emoji takes two units, never split). An empty body
    still counts as one part.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in body):
        encoding, sizes = "GSM-7", [2 if char in GSM7_EXTENSION else 1 for char in body]
        single, part = 160, 153
    else:
        encoding, sizes = "UCS-2", [2 if ord(char) > 0xFFFF else 1 for char in body]
        single, part = 70, 67
    if sum(sizes) <= single:
        return encoding, 1
    count, used = 1, 0
    for size in sizes:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return encoding, count
