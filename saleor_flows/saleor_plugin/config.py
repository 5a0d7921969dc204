"""The plugin's configuration (edited in Saleor's plugin settings) as engine settings.

Workers have no plugin instance at hand, so the engine asks this source,
which reads the stored configuration (cached briefly) from Saleor's database.
"""

import time

PLUGIN_ID = "saleor.flows"
_cache: dict = {"at": 0.0, "value": {}}
CACHE_SECONDS = 30


def as_engine_settings(config: dict, site_name: str = "") -> dict:
    """Plugin configuration fields → ``SALEOR_FLOWS`` keys (only the ones that are set)."""
    sender = (config.get("sender_address") or "").strip()
    name = (config.get("sender_name") or "").strip()
    values = {
        "FROM_EMAIL": f"{name} <{sender}>" if sender and name else sender,
        "REPLY_TO": (config.get("reply_to") or "").strip(),
        "PUBLIC_URL": (config.get("public_url") or "").strip().rstrip("/"),
        "CONSENT_METADATA_KEY": (config.get("consent_metadata_key") or "").strip(),
        "CHECKOUT_URL_TEMPLATE": (config.get("checkout_url_template") or "").strip(),
    }
    idle = str(config.get("abandoned_checkout_idle_minutes") or "").strip()
    if idle.isdigit() and int(idle) > 0:
        values["ABANDONED_CHECKOUT_IDLE_MINUTES"] = int(idle)
    if config.get("tracking") not in (None, ""):
        values["TRACKING"] = str(config["tracking"]).strip().lower() not in ("false", "0", "no", "off", "")
    if config.get("smtp_host"):
        values["SMTP"] = {"host": config["smtp_host"], "port": int(config.get("smtp_port") or 587),
                          "username": config.get("smtp_user") or "", "password": config.get("smtp_password") or "",
                          "use_tls": bool(config.get("smtp_use_tls", True))}
    if site_name or values["PUBLIC_URL"]:
        values["SHOP"] = {"name": site_name or "Our shop", "url": values["PUBLIC_URL"], "logo_url": "",
                          "currency": "", "address": "", "support_email": values["REPLY_TO"] or sender}
    return {key: value for key, value in values.items() if value not in (None, "")}


def stored_settings() -> dict:
    """Read from Saleor's PluginConfiguration and Site (cached for CACHE_SECONDS)."""
    if time.monotonic() - _cache["at"] < CACHE_SECONDS:
        return _cache["value"]
    value = {}
    try:
        from django.contrib.sites.models import Site
        from saleor.plugins.models import PluginConfiguration

        stored = PluginConfiguration.objects.filter(identifier=PLUGIN_ID, active=True).first()
        if stored is not None:
            config = {item["name"]: item.get("value") for item in stored.configuration or []}
            value = as_engine_settings(config, site_name=Site.objects.get_current().name)
    except Exception:  # no Saleor tables (yet): the plain settings apply
        value = {}
    _cache.update(at=time.monotonic(), value=value)
    return value
