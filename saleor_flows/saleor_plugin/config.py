"""The plugin's configuration (edited in Saleor's plugin settings) as engine settings.

Workers have no plugin instance at hand, so the engine asks this source,
which reads the stored configuration (cached briefly) from Saleor's database.
"""

import json
import logging
import time

logger = logging.getLogger(__name__)

PLUGIN_ID = "saleor.flows"
_cache: dict = {"at": 0.0, "value": {}}
CACHE_SECONDS = 30


def as_engine_settings(config: dict, site_name: str = "", shop_address: str = "") -> dict:
    """Plugin configuration fields → ``SALEOR_FLOWS`` keys (only the ones that are set)."""
    sender = (config.get("sender_address") or "").strip()
    name = (config.get("sender_name") or "").strip()
    values = {
        "FROM_EMAIL": f"{name} <{sender}>" if sender and name else sender,
        "REPLY_TO": (config.get("reply_to") or "").strip(),
        "PUBLIC_URL": (config.get("public_url") or "").strip().rstrip("/"),
        "CONSENT_METADATA_KEY": (config.get("consent_metadata_key") or "").strip(),
        "CHECKOUT_URL_TEMPLATE": (config.get("checkout_url_template") or "").strip(),
        "PRODUCT_URL_TEMPLATE": (config.get("product_url_template") or "").strip(),
        "BEST_SELLERS_URL": (config.get("best_sellers_url") or "").strip(),
        "NEW_ARRIVALS_URL": (config.get("new_arrivals_url") or "").strip(),
    }
    values.update({
        "PUBLIC_KEY": (config.get("public_key") or "").strip(),
        "SUBSCRIBE_ALLOWED_ORIGINS": _words(config.get("subscribe_allowed_origins")),
        "NEW_SUBSCRIBER_NOTIFY": _words(config.get("new_subscriber_notify")),
        "UNSUBSCRIBE_MAILTO": (config.get("unsubscribe_mailto") or "").strip(),
        "TOPICS": parse_topics(config.get("topics")),
        "DEFAULT_LANGUAGE": (config.get("default_language") or "").strip().lower(),
    })
    if config.get("double_opt_in") is not None:
        values["DOUBLE_OPT_IN"] = config["double_opt_in"] in (True, "true", "True", "1")
    origins = [o.strip().rstrip("/") for o in str(config.get("api_allowed_origins") or "").split(",") if o.strip()]
    if origins:
        values["API_ALLOWED_ORIGINS"] = origins
    idle = str(config.get("abandoned_checkout_idle_minutes") or "").strip()
    if idle.isdigit() and int(idle) > 0:
        values["ABANDONED_CHECKOUT_IDLE_MINUTES"] = int(idle)
    if config.get("tracking") not in (None, ""):
        values["TRACKING"] = str(config["tracking"]).strip().lower() not in ("false", "0", "no", "off", "")
    if config.get("smtp_host"):
        values["SMTP"] = {"host": config["smtp_host"], "port": int(config.get("smtp_port") or 587),
                          "username": config.get("smtp_user") or "", "password": config.get("smtp_password") or "",
                          "use_tls": bool(config.get("smtp_use_tls", True))}
    values.update(_sms_settings(config))
    values.update(_holding_settings(config))
    senders, _ = _senders(config.get("channel_senders"))
    if senders:
        values["SENDERS"] = senders
    if site_name or values["PUBLIC_URL"] or shop_address:
        values["SHOP"] = {"name": site_name or "Our shop", "url": values["PUBLIC_URL"], "logo_url": "",
                          "currency": "", "address": shop_address, "support_email": values["REPLY_TO"] or sender}
    return {key: value for key, value in values.items() if value not in (None, "", [])}


def _words(value) -> list[str]:
    return (value or "").replace(",", " ").split() if isinstance(value, str) else []


def parse_topics(value) -> list[dict]:
    """``newsletter | Newsletter | de: Neuigkeiten`` per line → TOPICS entries (malformed lines are skipped)."""
    topics = []
    for line in (value or "").splitlines() if isinstance(value, str) else []:
        parts = [part.strip() for part in line.split("|")]
        if not parts[0]:
            continue
        label = {"en": parts[1] if len(parts) > 1 and parts[1] else parts[0]}
        for extra in parts[2:]:
            language, _, text = extra.partition(":")
            if language.strip() and text.strip():
                label[language.strip().lower()] = text.strip()
        topics.append({"key": parts[0], "label": label})
    return topics


SMS_BACKENDS = {name: f"saleor_flows.channels.sms.{name}.SmsBackend"
                for name in ("console", "locmem", "twilio", "vonage", "aws")}


def _sms_settings(config: dict) -> dict:
    """The SMS fields: backend choice, provider credentials, senders per channel."""
    text = {name: str(config.get(name) or "").strip() for name in (
        "sms_backend", "sms_account", "sms_secret", "sms_signature_secret", "sms_region", "sms_configuration_set",
        "sms_sns_topic_arns", "sms_sender", "sms_senders", "phone_region")}
    values = {"SMS_FROM": text["sms_sender"], "PHONE_REGION": text["phone_region"].upper()}
    if text["sms_backend"]:
        # A name we do not know stays a clear error at send time rather than silently printing.
        values["SMS_BACKEND"] = SMS_BACKENDS.get(text["sms_backend"].lower(), text["sms_backend"])
    provider = {"account": text["sms_account"], "secret": text["sms_secret"],
                "signature_secret": text["sms_signature_secret"], "region": text["sms_region"],
                "configuration_set": text["sms_configuration_set"],
                "sns_topic_arns": [arn.strip() for arn in text["sms_sns_topic_arns"].split(",") if arn.strip()]}
    provider = {key: value for key, value in provider.items() if value}
    if provider:
        values["SMS_PROVIDER"] = provider
    senders = dict(pair.split("=", 1) for pair in text["sms_senders"].split(",") if "=" in pair)
    senders = {slug.strip(): sender.strip() for slug, sender in senders.items() if slug.strip() and sender.strip()}
    if senders:
        values["SMS_SENDERS"] = senders
    return values


def stored_settings() -> dict:
    """Read from Saleor's PluginConfiguration and Site (cached for CACHE_SECONDS)."""
    # A clock that went backwards (a test freezing time, say) never makes a stale copy fresh.
    if 0 <= time.monotonic() - _cache["at"] < CACHE_SECONDS:
        return _cache["value"]
    value = {}
    try:
        from django.contrib.sites.models import Site
        from saleor.plugins.models import PluginConfiguration

        stored = PluginConfiguration.objects.filter(identifier=PLUGIN_ID, active=True).first()
        if stored is not None:
            config = {item["name"]: item.get("value") for item in stored.configuration or []}
            site = Site.objects.get_current()
            value = as_engine_settings(config, site_name=site.name, shop_address=company_address(site))
    except Exception:  # no Saleor tables (yet): the plain settings apply
        value = {}
    _cache.update(at=time.monotonic(), value=value)
    return value


def company_address(site) -> str:
    """The shop's postal address from Saleor's site settings (Configuration → Site settings → Company
    information), on one line: the law (CAN-SPAM) asks for it in every marketing email."""
    from saleor.site.models import SiteSettings

    # Read fresh (the Site object is cached by Django for the process, with whatever settings it had then).
    site_settings = SiteSettings.objects.filter(site=site).select_related("company_address").first()
    address = site_settings.company_address if site_settings else None
    if address is None:
        return ""
    country = getattr(address.country, "name", "") or str(address.country or "")
    parts = [address.company_name, address.street_address_1, address.street_address_2,
             " ".join(part for part in (address.postal_code, address.city) if part), address.country_area, country]
    return ", ".join(part.strip() for part in parts if part and part.strip())


OFF = {"", "off", "none", "0"}
SENDER_KEYS = {"from_email", "reply_to", "sms_from"}


def _window(value) -> tuple[str | None, str]:
    """A quiet-hours field → (window or None for none, error)."""
    from ..engine.gate import parse_window

    text = str(value or "").strip()
    if text.lower() in OFF:
        return None, ""
    try:
        parse_window(text)
    except Exception as exc:
        return None, str(exc).removeprefix("saleor-flows: ")
    return text, ""


def _cap(value) -> tuple[int | None, str]:
    text = str(value or "").strip()
    if text.lower() in OFF:
        return None, ""
    if not text.isdigit():
        return None, f"a whole number of hours (0 for no limit), got {text!r}"
    return int(text), ""


def _senders(value) -> tuple[dict, str]:
    """The channel → sender JSON field → (SENDERS, error)."""
    text = str(value or "").strip()
    if not text:
        return {}, ""
    try:
        senders = json.loads(text)
    except ValueError as exc:
        return {}, f"not valid JSON: {exc}"
    if not isinstance(senders, dict) or not all(
            isinstance(entry, dict) and set(entry) <= SENDER_KEYS and all(isinstance(v, str) for v in entry.values())
            for entry in senders.values()):
        return {}, ('expected {"channel-slug": {"from_email": …, "reply_to": …, "sms_from": …}} '
                    f"(keys: {', '.join(sorted(SENDER_KEYS))})")
    return senders, ""


def _holding_settings(config: dict) -> dict:
    """Quiet hours and frequency caps, when the configuration has them (invalid values are logged and left out)."""
    values = {}
    fields = {"QUIET_HOURS": (_window, {"sms": "quiet_hours", "email": "email_quiet_hours"}),
              "FREQUENCY_CAP_HOURS": (_cap, {"email": "email_cap_hours", "sms": "sms_cap_hours"})}
    for setting, (parse, by_channel) in fields.items():
        if not any(name in config for name in by_channel.values()):
            continue
        parsed = {}
        for channel, name in by_channel.items():
            value, error = parse(config.get(name))
            if error:
                logger.error("saleor-flows: plugin setting %s ignored: %s", name, error)
            parsed[channel] = value
        values[setting] = parsed
    return values


def configuration_errors(config: dict) -> dict:
    """Field name → what is wrong with it, for the plugin's settings form."""
    errors = {}
    for name in ("quiet_hours", "email_quiet_hours"):
        errors[name] = _window(config.get(name))[1]
    for name in ("email_cap_hours", "sms_cap_hours"):
        errors[name] = _cap(config.get(name))[1]
    errors["channel_senders"] = _senders(config.get("channel_senders"))[1]
    return {name: error for name, error in errors.items() if error}
