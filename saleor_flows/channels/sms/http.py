"""The one way provider backends talk HTTP: ``urllib`` with a timeout, failures as ``SmsError``.

No SDKs: each provider's API is a single POST, and plain HTTP is what the
tests stand a local server in for.
"""

import json
import socket
import urllib.error
import urllib.request

from ...conf import flows_setting
from .base import SmsError

# Worth trying again later: the provider is busy, throttling us or briefly broken.
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    """POST ``body``; returns ``(status, parsed JSON body or {})`` for any HTTP answer.

    Only a request that never got an answer raises (a retryable ``SmsError``):
    the caller reads the provider's own error format from the answer.
    """
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=flows_setting("SMS_TIMEOUT_SECONDS")) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SmsError(f"no answer from {url.split('?')[0]}: {reason}", retryable=True) from None
    try:
        parsed = json.loads(raw or b"{}")
    except ValueError:
        parsed = {"raw": raw[:500].decode("utf-8", "replace")}
    return status, parsed if isinstance(parsed, dict) else {"raw": parsed}
