"""Keep SMS messages in ``outbox`` (a module-level list) for tests, like ``django.core.mail.outbox``.

Tests empty it with ``locmem.outbox.clear()``.
"""

import copy

from .base import BaseSmsBackend

outbox = []


class SmsBackend(BaseSmsBackend):
    def send_messages(self, messages):
        messages = [copy.copy(message) for message in messages]
        outbox.extend(messages)
        return len(messages)
