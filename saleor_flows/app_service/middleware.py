"""What the App service checks on every request before Flows' views see it.

``AllowedHost``: Django checks ``ALLOWED_HOSTS`` only when a view asks for the
host, and Flows' views build their URLs from ``APP_URL`` instead; so the
check is made here, for every request but the health check (which the
container's own probe sends to 127.0.0.1).

``ForwardedClientAddress``: the shopper's address behind the deployment's proxies, for the rate limits of the
public doors.

Behind a load balancer every request comes from the balancer: the signup
form's limit per address (``web/limits.py``) would then count all shoppers as
one. With ``PROXY_HOPS`` = the number of proxies in front of the web server,
the client is the address that many entries from the right of
``X-Forwarded-For``: each proxy appends the address it was reached from, so
the entries further left are whatever the client chose to send and are
never trusted. Without ``PROXY_HOPS`` (0) the header is ignored.
"""

import ipaddress

from django.conf import settings

HEALTH_PATH = "/healthz"


class AllowedHost:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path != HEALTH_PATH:
            request.get_host()  # DisallowedHost: Django answers 400
        return self.get_response(request)


class ForwardedClientAddress:
    def __init__(self, get_response):
        self.get_response = get_response
        self.hops = settings.PROXY_HOPS

    def __call__(self, request):
        if self.hops:
            forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
            if len(forwarded) >= self.hops:
                candidate = forwarded[-self.hops]
                try:
                    request.META["REMOTE_ADDR"] = str(ipaddress.ip_address(candidate))
                except ValueError:
                    pass  # not an address: keep the proxy's
        return self.get_response(request)
