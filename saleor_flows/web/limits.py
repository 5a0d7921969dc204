"""What guards our anonymous endpoints (the signup form, storefront tracking): rate limits and the public key.

Limits are fixed windows counted in Django's cache, so every worker process
of the host shares them. The public key only says which shop a storefront
belongs to (it sits in the page source): it identifies, it does not protect.
"""

import hashlib
import hmac

from django.core.cache import cache

from .. import clock
from ..conf import flows_setting


def client_address(request) -> str:
    """The caller's address. Behind a proxy, hosts set REMOTE_ADDR from X-Forwarded-For themselves (as Saleor does)."""
    return request.META.get("REMOTE_ADDR") or "unknown"


def over_limit(scope: str, value: str, limit: int, *, window_seconds: int) -> int:
    """Count one request for ``value`` in ``scope``; seconds until its window ends if over ``limit``, else 0."""
    now = int(clock.now().timestamp())
    window = now // window_seconds
    key = f"saleor-flows:{scope}:{hashlib.sha256(value.encode()).hexdigest()[:32]}:{window}"
    cache.add(key, 0, timeout=window_seconds + 60)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, timeout=window_seconds + 60)
        count = 1
    return (window + 1) * window_seconds - now if count > limit else 0


def public_key_matches(given) -> bool:
    """``given`` is the shop's PUBLIC_KEY (compared in constant time); never true when none is configured."""
    expected = flows_setting("PUBLIC_KEY") or ""
    return bool(expected) and isinstance(given, str) and hmac.compare_digest(
        given.encode(errors="surrogatepass"), expected.encode())
