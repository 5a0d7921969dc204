"""Outgoing webhook steps: a signed JSON POST to a URL the merchant chose.

The body is signed with HMAC-SHA256 over ``<timestamp>.<body>`` so a receiver
can check origin and freshness; ``X-Flows-Delivery`` stays the same across
retries of one attempt series so receivers can drop duplicates.

Staff choose the URL but the server sends the request, so the URL must not
reach what only the server can reach (docs/security.md, "Outgoing
webhooks"). At send time the host is resolved once, every address it has
must be a public one (or allowed by ``WEBHOOK_ALLOWED_TARGETS``), and the
connection goes to the address that was checked: no second lookup that DNS
could answer differently. TLS still verifies the certificate against the
host name. Redirects are never followed (a 3xx is a failed delivery), the
whole request has one deadline, the answer's body is not read, and what
the why-trail records is one of a few generic texts, never a port or errno.
"""

import concurrent.futures
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import re
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from django.core.serializers.json import DjangoJSONEncoder

from ..conf import deployment_setting, flows_setting
from .delivery import template_context
from .templating import render_text

logger = logging.getLogger(__name__)

# The only texts a failed delivery leaves in the why-trail.
TARGET_REFUSED = "target refused"
CONNECTION_FAILED = "connection failed"
TIMEOUT = "timeout"

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# getaddrinfo has no timeout of its own (the system resolver may take 5 s per try and name server):
# lookups run here and are waited for at most the delivery's deadline. A lookup that hangs past it
# keeps its thread until the resolver gives up; the worker has already moved on.
_LOOKUPS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="flows-webhook-dns")
_NUMERIC_HOST = re.compile(r"^[0-9a-fA-Fx.]+$")  # 2130706433, 0x7f.1, 017700000001, 127.1: inet_aton reads them

class WebhookError(Exception):
    """The receiver did not take the delivery: retried with backoff, unless the target itself is refused."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


# --- where a webhook may go ------------------------------------------------------------


def resolve(host: str, port: int) -> list[str]:
    """The host's addresses, in the resolver's order.

    The seam for tests: replace ``webhook.resolve`` to make a name resolve to
    a private address without any traffic going there.
    """
    return list(dict.fromkeys(info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)))


def is_public(ip) -> bool:
    """A globally routable unicast address: not private, loopback, link-local, multicast, reserved,
    unspecified or shared (100.64.0.0/10); an IPv4 address inside IPv6 (mapped, 6to4, Teredo, NAT64) is
    judged by the IPv4 address."""
    if ip.version == 6:
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None) or (
            ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None)
        if embedded is not None:
            return is_public(embedded)
        if ip.is_site_local:
            return False
    return ip.is_global and not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
                                 or ip.is_reserved or ip.is_unspecified)


def is_allowed(host: str, ip) -> bool:
    """Public, or let in by WEBHOOK_ALLOWED_TARGETS (a host name, or a network the address is in)."""
    if is_public(ip):
        return True
    names, networks = _allow_list()
    return _name(host) in names or any(ip.version == network.version and ip in network for network in networks)


def _allow_list() -> tuple[set, list]:
    """WEBHOOK_ALLOWED_TARGETS as (host names, networks); the deployment's setting, never the plugin's."""
    names, networks = set(), []
    for entry in deployment_setting("WEBHOOK_ALLOWED_TARGETS") or []:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            names.add(_name(str(entry)))
    return names, networks


def _name(host: str) -> str:
    return host.strip().lower().rstrip(".")


def literal_ip(host: str):
    """The address a host written as a number stands for (any form the resolver reads), or None."""
    try:
        return ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        pass
    if _NUMERIC_HOST.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def url_problem(url) -> str:
    """What is wrong with a webhook URL before anything is sent ("" when nothing is); for publish time.

    Only what needs no lookup: an http(s) URL with a host, and no address
    (or ``localhost``) that would be refused at send time anyway.
    """
    if not isinstance(url, str):
        return "must be an http(s) URL"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number from 0 to 65535
    except ValueError:
        return "must be an http(s) URL with a valid host and port"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s) URL with a host"
    host = parts.hostname
    ip = literal_ip(host)
    internal = (ip is not None and not is_allowed(host, ip)) or (
        ip is None and _name(host).split(".")[-1] == "localhost" and _name(host) not in _allow_list()[0])
    if internal:
        return (f"{host} is a private, loopback or reserved address; webhooks go to public addresses only "
                "(the host's WEBHOOK_ALLOWED_TARGETS setting lets in internal ones)")
    return ""


def checked_address(host: str, port: int, timeout: float | None = None) -> str:
    """The address to connect to: every address of the host must be allowed, the first is used."""
    try:
        addresses = _LOOKUPS.submit(resolve, host, port).result(timeout=timeout)
    except TimeoutError as exc:  # concurrent.futures.TimeoutError is TimeoutError on 3.11+
        logger.info("saleor-flows: webhook host %s did not resolve within %s s", host, timeout)
        raise WebhookError(TIMEOUT) from exc
    except (OSError, UnicodeError) as exc:
        logger.info("saleor-flows: webhook host %s did not resolve: %s", host, exc)
        raise WebhookError(CONNECTION_FAILED) from exc
    if not addresses:
        raise WebhookError(CONNECTION_FAILED)
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not is_allowed(host, ip):
            logger.warning("saleor-flows: webhook to %s refused: it resolves to %s", host, ip)
            raise WebhookError(TARGET_REFUSED, retryable=False)
    return addresses[0]


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the checked address; the Host header still names the host."""

    def __init__(self, host, port, *, address, timeout):
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self):
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    """As above, with TLS verified against the host name (SNI and certificate), not the address."""

    default_port = 443
    _tls = ssl.create_default_context()

    def connect(self):
        super().connect()
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self.host)


def _send(url: str, body: bytes, headers: dict, timeout: float) -> int:
    """One POST to a checked, pinned address within one deadline; the HTTP status."""
    parts = urlsplit(url)
    https = parts.scheme == "https"
    port = parts.port or (443 if https else 80)
    started = time.monotonic()
    address = checked_address(parts.hostname, port, timeout)
    timeout = max(0.001, timeout - (time.monotonic() - started))  # one deadline for lookup and request
    connection = (_PinnedHTTPSConnection if https else _PinnedHTTPConnection)(
        parts.hostname, port, address=address, timeout=timeout)
    expired = threading.Event()

    def give_up():  # the socket timeout is per read: a receiver trickling bytes must not hold the worker
        expired.set()
        if connection.sock is not None:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    deadline = threading.Timer(timeout, give_up)
    deadline.daemon = True
    deadline.start()
    try:
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", path, body=body, headers=headers)
        status = connection.getresponse().status  # the body is never read
        if expired.is_set():  # cut off mid-answer: what was read may look complete, it is not
            raise WebhookError(TIMEOUT)
        return status
    except (TimeoutError, socket.timeout) as exc:
        raise WebhookError(TIMEOUT) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        logger.info("saleor-flows: webhook to %s failed: %s", parts.hostname, exc)
        raise WebhookError(TIMEOUT if expired.is_set() else CONNECTION_FAILED) from exc
    finally:
        deadline.cancel()
        connection.close()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def build_body(step: dict, *, delivery_id: str, contact, flow, event_payload: dict) -> bytes:
    # The same variables as in emails (publish-time validation allows them all).
    context = template_context(contact=contact, flow=flow, event_payload=event_payload, send_id=delivery_id)
    custom = {key: render_text(value, context) if isinstance(value, str) else value
              for key, value in (step.get("body") or {}).items()}
    body = {"flow": flow.slug, "contact": {"email": contact.email, "user_id": contact.user_id}, **custom}
    return json.dumps(body, cls=DjangoJSONEncoder, sort_keys=True).encode()


def post(step: dict, *, delivery_id: str, contact, flow, event_payload: dict) -> int:
    """POST the step's body; returns the HTTP status, raises WebhookError to retry."""
    body = build_body(step, delivery_id=delivery_id, contact=contact, flow=flow, event_payload=event_payload)
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "User-Agent": "saleor-flows",
               "X-Flows-Delivery": delivery_id, "X-Flows-Timestamp": timestamp}
    if step.get("secret"):
        headers["X-Flows-Signature"] = signature(step["secret"], timestamp, body)
    status = _send(step["url"], body, headers, flows_setting("WEBHOOK_TIMEOUT_SECONDS"))
    if 300 <= status < 400:
        raise WebhookError(f"HTTP {status // 100}xx (redirects are not followed)")
    if not 200 <= status < 300:
        raise WebhookError(f"HTTP {status // 100}xx")
    return status
