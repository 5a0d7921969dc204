"""A mail backend that kills its process in the middle of a send, like a worker OOM-killed mid-hand-off."""

import os

from django.core.mail.backends.base import BaseEmailBackend


class EmailBackend(BaseEmailBackend):
    def send_messages(self, messages):
        os._exit(17)
