"""An email backend that writes each message to a folder, so a person can open what the demo sent.

Each message becomes ``<NNNN>-<recipient>-<subject-slug>.eml`` (the full RFC 822
message, openable in any mail client) and ``.html`` (its HTML part, openable
in a browser). Numbers follow the order of sending across the whole run, so
the folder listing reads like a timeline, and the ``Date`` header is the
engine's clock (the simulated moment in the demo).

Configure with ``EMAIL_BACKEND = "demo.outbox.EmailBackend"`` and
``DEMO_OUTBOX_DIR`` (or pass ``file_path=`` to ``get_connection``).

The ``.eml`` is the message as sent: its images and links are the shop's real
URLs (a mail client fetches product images from the shop's media host, as
with any shop mail; embedding them as ``cid:`` parts would make every email
heavier and ``data:`` URIs are blocked by Gmail and Outlook). The ``.html``
copy is for reading offline: the demo writes the storefront's pages and
images into ``shop/`` next to it (``demo/catalog.py``), and each link or
image on the storefront's host (a tracked link is first resolved the way our
redirect resolves it, without counting a click) points to that local page.
"""

import html
import re
import threading
from email.utils import format_datetime
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.text import slugify

from saleor_flows import clock

FILE_RE = re.compile(r"^(\d{4,})-.*\.(eml|html)$")

# The engine opens a new connection per send, so the running number lives here,
# one per folder; the lock covers a Celery worker thread sending at the same time.
_lock = threading.Lock()
_last_number: dict[Path, int] = {}


def clear(directory) -> int:
    """Remove the files a previous run wrote (only ours: NNNN-….eml/.html). Returns how many."""
    directory = Path(directory)
    removed = 0
    if directory.is_dir():
        for path in directory.iterdir():
            if path.is_file() and FILE_RE.match(path.name):
                path.unlink()
                removed += 1
    with _lock:
        _last_number.pop(directory.resolve(), None)
    return removed


def _next_number(directory: Path) -> int:
    key = directory.resolve()
    with _lock:
        if key not in _last_number:
            numbers = [int(m.group(1)) for p in directory.iterdir() if (m := FILE_RE.match(p.name))]
            _last_number[key] = max(numbers, default=0)
        _last_number[key] += 1
        return _last_number[key]


def offline(page: str, shop_dir: Path) -> str:
    """The email's HTML with the storefront's links and images pointing into the local ``shop/`` copy."""
    from saleor_flows.web.tracking import LinkRefused, resolve_click

    from .store import SHOP_URL

    def local(url: str) -> str:
        if "/saleor.flows/c/" in url:
            try:
                url = resolve_click(url.split("/saleor.flows/c/", 1)[1].strip("/"))[2]
            except LinkRefused:
                return url
        if not url.startswith(SHOP_URL):
            return url
        path = url[len(SHOP_URL):].split("?", 1)[0].split("#", 1)[0].strip("/")
        if path.startswith("checkout/"):  # a cart link (its token) leads to the demo's one checkout page
            path = "checkout"
        local_file = path if path.startswith("media/") else f"{path}/index.html".lstrip("/")
        # Pages the storefront has; ours (unsubscribe, preferences, the pixel) stay as they are.
        return f"{shop_dir.name}/{local_file}" if (shop_dir / local_file).is_file() else url

    return re.sub(r'(href|src)="([^"]+)"',
                  lambda m: f'{m.group(1)}="{html.escape(local(html.unescape(m.group(2))))}"', page)


def html_part(message) -> str:
    """The HTML alternative, or the text body as preformatted HTML when there is none."""
    for content, mimetype in getattr(message, "alternatives", None) or []:
        if mimetype == "text/html":
            return content
    if getattr(message, "content_subtype", "") == "html":
        return message.body
    return f"<pre>{html.escape(message.body)}</pre>"


class EmailBackend(BaseEmailBackend):
    def __init__(self, *, file_path=None, fail_silently=False, **kwargs):
        super().__init__(fail_silently=fail_silently, **kwargs)
        self.directory = Path(file_path or getattr(settings, "DEMO_OUTBOX_DIR", "demo-outbox"))

    def send_messages(self, email_messages):
        self.directory.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            recipient = re.sub(r"[^A-Za-z0-9@._+-]", "_", (message.to or ["unknown"])[0])[:80]
            stem = f"{_next_number(self.directory):04d}-{recipient}-{slugify(message.subject)[:50] or 'no-subject'}"
            mime = message.message()
            del mime["Date"]  # Django stamps the wall clock; the demo's mail goes out in the simulated month
            mime["Date"] = format_datetime(clock.now())
            (self.directory / f"{stem}.eml").write_bytes(mime.as_bytes())
            shop_dir = self.directory / "shop"
            if not (shop_dir / "index.html").is_file():
                from .catalog import write_shop

                write_shop(shop_dir)
            (self.directory / f"{stem}.html").write_text(offline(html_part(message), shop_dir), encoding="utf-8")
        return len(email_messages)
