"""Public HTTP endpoints (unsubscribe, open pixel, click redirect), served under the plugin's URL."""

from ..conf import flows_setting

PLUGIN_PATH = "/plugins/global/saleor.flows/"


def public_url(subpath: str) -> str:
    """The absolute URL of one of our endpoints, as links in emails must be."""
    base = (flows_setting("PUBLIC_URL") or flows_setting("SHOP").get("url") or "").rstrip("/")
    return f"{base}{PLUGIN_PATH}{subpath}"
