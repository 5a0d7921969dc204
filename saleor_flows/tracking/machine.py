"""Is this open or click a person, or a machine acting on the message?

Pure functions: the callers gather the facts (user agent, time since the send,
other clicks on the same message) and record the answer as ``machine=True``;
analytics and flows count human engagement only.

What counts as a machine, and why:

* **Apple Mail Privacy Protection.** Apple's proxy fetches every remote image
  of a message when it reaches the device, read or not, with the bare user
  agent ``Mozilla/5.0`` (no platform, no product tokens). No mail client a
  person reads with sends that. We do not use Apple's published egress IP
  ranges: they are the iCloud Private Relay ranges, which also carry the real
  browsing (and clicks) of every Safari user with Private Relay on.
* **Security scanners and link checkers** (Barracuda, Mimecast, Proofpoint,
  Microsoft Defender / Safe Links, Google's safe-browsing fetcher, Symantec,
  Trend Micro, Sophos, Cisco, …), link-preview fetchers and plain HTTP
  libraries: recognized by their user agents (``AUTOMATED_AGENTS``).
  A request with no user agent at all, or a ``HEAD`` request, is a machine too:
  mail clients and browsers always send one and always ``GET``.
* **Too soon.** Nobody opens, let alone clicks, a message within a few seconds
  of it being sent; scanners at the receiving server do (``seconds_since_send``
  under the ``TRACKING_MACHINE_SECONDS`` setting).
* **A burst of clicks.** A person clicks one link at a time; a scanner follows
  every link of the message within the same second.
"""

import re

# Lower-cased substrings of user agents that only machines send.
AUTOMATED_AGENTS = (
    # Mail security gateways and link scanners
    "barracuda", "mimecast", "proofpoint", "ppops-", "safelinks", "safe links", "microsoft defender",
    "atp-safelinks", "google-safety", "symantec", "messagelabs", "forcepoint",
    "trendmicro", "trend micro", "sophos", "fireeye", "ironport", "cisco-", "fortinet", "fortiguard",
    "zscaler", "paloalto", "checkpoint", "avanan", "hornetsecurity", "spamtitan",
    # Link previews and office apps fetching a link before the browser opens it
    "bingpreview", "ms-office", "microsoft office existence discovery", "skypeuripreview",
    "facebookexternalhit", "slackbot", "linkedinbot", "twitterbot", "whatsapp", "telegrambot", "discordbot",
    # Headless browsers and HTTP libraries
    "headlesschrome", "phantomjs", "python-requests", "python-urllib", "aiohttp", "httpx", "curl/", "wget/",
    "go-http-client", "okhttp", "java/", "apache-httpclient", "libwww-perl", "node-fetch", "axios/",
)
# "…bot/1.0", "crawler", "spider" as words: not the "bot" inside a phone model name ("CUBOT").
_ROBOT_WORD = re.compile(r"(?:^|[^a-z])bot(?:[^a-z]|$)|[a-z]bot/|crawler|spider")
# Apple Mail Privacy Protection's proxy: "Mozilla/5.0" and nothing after it.
_APPLE_PROXY = re.compile(r"^mozilla/5\.0$")

APPLE_PRIVACY = "apple_privacy_proxy"
SCANNER = "automated_agent"
NO_AGENT = "no_user_agent"
HEAD = "head_request"
TOO_SOON = "too_soon_after_send"
BURST = "many_links_in_one_second"


def automated_agent(user_agent: str | None) -> str | None:
    """Why this user agent is a machine's, or None if it may be a person's mail client or browser."""
    agent = " ".join((user_agent or "").split()).lower()
    if not agent:
        return NO_AGENT
    if _APPLE_PROXY.match(agent):
        return APPLE_PRIVACY
    if any(token in agent for token in AUTOMATED_AGENTS) or _ROBOT_WORD.search(agent):
        return SCANNER
    return None


def machine_reason(*, user_agent: str | None, seconds_since_send: float | None, threshold_seconds: float,
                   method: str = "GET", other_links_same_second: int = 0) -> str | None:
    """Why an open or click looks machine-generated, or None if it looks human.

    ``user_agent`` None means the source does not tell (some ESPs' events carry
    none): then only the timing rules apply. ``other_links_same_second`` is the
    number of *other* links of the same message clicked within a second of this one.
    """
    if method.upper() == "HEAD":
        return HEAD
    if user_agent is not None:
        reason = automated_agent(user_agent)
        if reason:
            return reason
    if seconds_since_send is not None and seconds_since_send < threshold_seconds:
        return TOO_SOON
    if other_links_same_second > 0:
        return BURST
    return None
