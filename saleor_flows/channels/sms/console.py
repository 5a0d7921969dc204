"""Print SMS messages instead of sending them: the default, for development."""

import sys
import threading

from ...conf import flows_setting
from . import segments
from .base import BaseSmsBackend


class SmsBackend(BaseSmsBackend):
    def __init__(self, *args, stream=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.stream = stream or sys.stdout
        self._lock = threading.RLock()

    def send_messages(self, messages):
        sent = 0
        with self._lock:
            try:
                for message in messages:
                    encoding, count = segments(message.body)
                    self.stream.write(
                        f"SMS to {message.to} from {message.from_ or flows_setting('SMS_FROM') or '-'}"
                        f" (send {message.send_id or '-'}, {count} x {encoding})\n{message.body}\n{'-' * 40}\n"
                    )
                    sent += 1
                self.stream.flush()
            except Exception:
                if not self.fail_silently:
                    raise
        return sent
