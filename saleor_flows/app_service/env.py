"""The App service's configuration: environment variables in, Django settings out (12-factor).

Every variable the service reads is listed in :data:`VARIABLES`, the one list
the settings module, ``saleor-flows-app check``, the README table and the
tests of the compose file all go by. :func:`load` turns an environment into
settings or raises :class:`ConfigError` with one line fit to print: a
container that cannot start says why in its log, not in a traceback.

Flows' own settings (``saleor_flows/conf.py``) are ``FLOWS_<NAME>`` variables:
text as it is for text settings, JSON for the others (numbers, lists, dicts,
``true``/``false``). A ``FLOWS_`` name that is no setting is refused, so a typo
never passes silently.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit


class ConfigError(ValueError):
    """A missing or malformed variable; the message is one line naming it."""


@dataclass(frozen=True)
class Variable:
    name: str
    required: bool
    meaning: str


VARIABLES = [
    Variable("SECRET_KEY", True, "Django's secret key (50 random characters); the App token is encrypted with a key "
                                 "derived from it. SECRET_KEY_FALLBACKS (comma-separated) keeps old keys readable."),
    Variable("SECRET_KEY_FALLBACKS", False, "Previous secret keys, comma-separated, after a rotation."),
    Variable("SALEOR_API_URL", True, "The GraphQL URL of the one Saleor this App serves, e.g. "
                                     "https://shop.saleor.cloud/graphql/. Installs from any other Saleor are refused."),
    Variable("APP_URL", True, "The public URL of this service (what Saleor and browsers reach), e.g. "
                              "https://flows.shop.example. Links in emails and the manifest use it."),
    Variable("DATABASE_URL", True, "PostgreSQL: postgres://user:password@host:5432/name."),
    Variable("REDIS_URL", True, "Redis for the Celery broker and the rate-limit cache: redis://host:6379/0."),
    Variable("CELERY_BROKER_URL", False, "A broker other than REDIS_URL for Celery (default: REDIS_URL)."),
    Variable("ALLOWED_HOSTS", False, "Host names the web server answers, comma-separated (default: APP_URL's host)."),
    Variable("DEFAULT_FROM_EMAIL", False, "The sender of every email unless FLOWS_FROM_EMAIL or FLOWS_SENDERS say "
                                          "otherwise, e.g. \"My Shop <hello@shop.example>\"."),
    Variable("EMAIL_URL", False, "SMTP in one URL: smtp://user:password@host:587 (STARTTLS; add ?tls=false for a "
                                 "plain connection) or smtps://user:password@host:465 (implicit TLS)."),
    Variable("EMAIL_BACKEND", False, "A Django mail backend instead of EMAIL_URL, e.g. "
                                     "anymail.backends.postmark.EmailBackend (with ANYMAIL_* variables)."),
    Variable("EMAIL_HOST", False, "With EMAIL_BACKEND's SMTP backend: the server (EMAIL_PORT, EMAIL_HOST_USER, "
                                  "EMAIL_HOST_PASSWORD, EMAIL_USE_TLS, EMAIL_USE_SSL as in Django)."),
    Variable("EMAIL_PORT", False, "SMTP port (default 25)."),
    Variable("EMAIL_HOST_USER", False, "SMTP user name."),
    Variable("EMAIL_HOST_PASSWORD", False, "SMTP password."),
    Variable("EMAIL_USE_TLS", False, "true: STARTTLS."),
    Variable("EMAIL_USE_SSL", False, "true: implicit TLS."),
    Variable("EMAIL_TIMEOUT", False, "Seconds before a silent SMTP server counts as failed (default 30)."),
    Variable("ANYMAIL_*", False, "django-anymail settings without the prefix, e.g. ANYMAIL_POSTMARK_SERVER_TOKEN, "
                                 "ANYMAIL_WEBHOOK_SECRET."),
    Variable("FLOWS_*", False, "Any Flows setting (saleor_flows/conf.py), e.g. FLOWS_SHOP='{\"name\": \"My Shop\", "
                               "\"url\": \"https://shop.example\"}', FLOWS_CONSENT_POLICY=opt_in."),
    Variable("SWEEP_INTERVAL_SECONDS", False, "How often beat runs the sweep that sends due steps (default 10)."),
    Variable("BEAT_SCHEDULE_FILE", False, "Where beat keeps its schedule state (default: in the temp directory)."),
    Variable("PROXY_HOPS", False, "How many proxies (load balancer, ingress) stand in front of the web server: the "
                                  "shopper's address is read that many entries from the right of X-Forwarded-For "
                                  "(default 0: the header is ignored)."),
    Variable("PORT", False, "The web server's port (default 8000)."),
    Variable("WEB_CONCURRENCY", False, "Web server worker processes (default 2)."),
    Variable("LOG_LEVEL", False, "DEBUG, INFO (default), WARNING or ERROR; logs go to stdout."),
]
NAMES = {variable.name for variable in VARIABLES}
REQUIRED = [variable.name for variable in VARIABLES if variable.required]
FLOWS_PREFIX, ANYMAIL_PREFIX = "FLOWS_", "ANYMAIL_"
MIN_SECRET_KEY_LENGTH = 32
EXAMPLE_SECRET_PREFIX = "change-me"  # .env.example's placeholder, which a deployment must not keep
DEFAULT_SWEEP_SECONDS = 10.0


def known(name: str) -> bool:
    """Whether the service reads ``name`` (the compose file must set nothing else)."""
    if name.startswith(FLOWS_PREFIX):
        return _flows_key(name) is not None
    return name in NAMES or name.startswith(ANYMAIL_PREFIX)


def missing(environ) -> list[str]:
    """Required variables that are unset or empty (REDIS_URL also counts as set by CELERY_BROKER_URL)."""
    absent = [name for name in REQUIRED if not environ.get(name, "").strip()]
    if "REDIS_URL" in absent and environ.get("CELERY_BROKER_URL", "").strip():
        absent.remove("REDIS_URL")
    return absent


def load(environ) -> dict:
    """Django settings from ``environ``, or ConfigError."""
    absent = missing(environ)
    if absent:
        raise ConfigError(f"missing environment variable{'s' if len(absent) > 1 else ''}: {', '.join(absent)} "
                          "(run `saleor-flows-app check` for the list)")
    get = _reader(environ)
    secret = get("SECRET_KEY")
    if len(secret) < MIN_SECRET_KEY_LENGTH:
        raise ConfigError(f"SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} random characters")
    if secret.startswith(EXAMPLE_SECRET_PREFIX):
        raise ConfigError("SECRET_KEY is still the one from .env.example: put 50 random characters there")
    saleor_api_url = _http_url("SALEOR_API_URL", get("SALEOR_API_URL"))
    app_url = _http_url("APP_URL", get("APP_URL")).rstrip("/")
    redis_url = get("REDIS_URL") or get("CELERY_BROKER_URL")
    allowed_hosts = _list(get("ALLOWED_HOSTS")) or [urlsplit(app_url).hostname]
    values = {
        "SECRET_KEY": secret,
        "SECRET_KEY_FALLBACKS": _list(get("SECRET_KEY_FALLBACKS")),
        "ALLOWED_HOSTS": allowed_hosts,
        "DATABASES": {"default": database_config(get("DATABASE_URL"), conn_max_age=60)},
        "CELERY_BROKER_URL": get("CELERY_BROKER_URL") or redis_url,
        "CACHES": {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                               "LOCATION": redis_url if redis_url.startswith(("redis://", "rediss://")) else ""}},
        "DEFAULT_FROM_EMAIL": get("DEFAULT_FROM_EMAIL") or "webmaster@localhost",
        "SALEOR_API_URL": saleor_api_url,
        "APP_URL": app_url,
        "SWEEP_INTERVAL_SECONDS": _number("SWEEP_INTERVAL_SECONDS", get("SWEEP_INTERVAL_SECONDS"),
                                          DEFAULT_SWEEP_SECONDS),
        "BEAT_SCHEDULE_FILE": get("BEAT_SCHEDULE_FILE") or str(
            Path(tempfile.gettempdir()) / "saleor-flows-celerybeat-schedule"),
        "PORT": int(_number("PORT", get("PORT"), 8000)),
        "PROXY_HOPS": _count("PROXY_HOPS", get("PROXY_HOPS")),
        "WEB_CONCURRENCY": int(_number("WEB_CONCURRENCY", get("WEB_CONCURRENCY"), 2)),
        "LOG_LEVEL": _choice("LOG_LEVEL", (get("LOG_LEVEL") or "INFO").upper(),
                             ("DEBUG", "INFO", "WARNING", "ERROR")),
    }
    if not values["CACHES"]["default"]["LOCATION"]:  # a broker that is not Redis: rate limits per process
        values["CACHES"] = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    values["MAIL"] = email_settings(environ)
    values["SALEOR_FLOWS"] = flows_settings(environ, saleor_api_url=saleor_api_url, app_url=app_url)
    return values


# --- pieces ---------------------------------------------------------------------------


def database_config(url: str, *, conn_max_age=None, default_name="saleor_flows") -> dict:
    """Django's DATABASES entry for a ``postgres://`` URL (the demo's too)."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        raise ConfigError(f"DATABASE_URL: only postgres:// URLs are supported, got {parsed.scheme or url!r}")
    options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parsed.path.lstrip("/")) or default_name,
        "USER": unquote(parsed.username or "postgres"),
        "PASSWORD": unquote(parsed.password or ""),
        "HOST": parsed.hostname or "127.0.0.1",
        "PORT": str(parsed.port or 5432),
        "CONN_MAX_AGE": conn_max_age,
        "OPTIONS": options,  # e.g. ?sslmode=require
    }


def email_settings(environ) -> dict:
    """EMAIL_* settings from EMAIL_URL or EMAIL_BACKEND and its variables; ANYMAIL from ANYMAIL_* variables."""
    get = _reader(environ)
    values = {"EMAIL_TIMEOUT": _number("EMAIL_TIMEOUT", get("EMAIL_TIMEOUT"), 30)}
    anymail = {name[len(ANYMAIL_PREFIX):]: value for name, value in environ.items()
               if name.startswith(ANYMAIL_PREFIX) and value}
    if anymail:
        values["ANYMAIL"] = anymail
    if get("EMAIL_URL") and get("EMAIL_BACKEND"):
        raise ConfigError("set EMAIL_URL or EMAIL_BACKEND, not both")
    if get("EMAIL_URL"):
        values.update(_smtp_url(get("EMAIL_URL")))
        return values
    values["EMAIL_BACKEND"] = get("EMAIL_BACKEND") or "django.core.mail.backends.console.EmailBackend"
    if get("EMAIL_HOST"):
        values["EMAIL_HOST"] = get("EMAIL_HOST")
    values["EMAIL_PORT"] = int(_number("EMAIL_PORT", get("EMAIL_PORT"), 25))
    values["EMAIL_HOST_USER"] = get("EMAIL_HOST_USER")
    values["EMAIL_HOST_PASSWORD"] = get("EMAIL_HOST_PASSWORD")
    values["EMAIL_USE_TLS"] = _bool("EMAIL_USE_TLS", get("EMAIL_USE_TLS"), False)
    values["EMAIL_USE_SSL"] = _bool("EMAIL_USE_SSL", get("EMAIL_USE_SSL"), False)
    return values


def _smtp_url(url: str) -> dict:
    parsed = urlsplit(url)
    if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
        raise ConfigError("EMAIL_URL: expected smtp://user:password@host:port or smtps://…")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    implicit = parsed.scheme == "smtps"
    return {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": parsed.hostname,
        "EMAIL_PORT": parsed.port or (465 if implicit else 587),
        "EMAIL_HOST_USER": unquote(parsed.username or ""),
        "EMAIL_HOST_PASSWORD": unquote(parsed.password or ""),
        "EMAIL_USE_SSL": implicit,
        "EMAIL_USE_TLS": not implicit and _bool("EMAIL_URL tls", query.get("tls", ""), True),
    }


def flows_settings(environ, *, saleor_api_url: str, app_url: str) -> dict:
    """SALEOR_FLOWS: what App mode implies (one Saleor, its keys, our public URL, Celery), then FLOWS_* variables."""
    from ..conf import DEFAULTS

    origin = "{0.scheme}://{0.netloc}".format(urlsplit(saleor_api_url))
    values = {
        "TASK_MODE": "celery",
        "PUBLIC_URL": app_url,
        "APP_SALEOR_API_URL": saleor_api_url,
        "API_TOKEN_ISSUER": saleor_api_url,
        "API_JWKS_URL": f"{origin}/.well-known/jwks.json",
        "MESSAGE_ID_DOMAIN": urlsplit(app_url).hostname,
    }
    for name, text in environ.items():
        if not name.startswith(FLOWS_PREFIX) or not text.strip():  # empty: unset (compose's ${X:-})
            continue
        key = _flows_key(name)
        if key is None:
            raise ConfigError(f"{name}: no such setting (see saleor_flows/conf.py for the FLOWS_ names)")
        values[key] = _flows_value(name, text, DEFAULTS[key])
    return values


def _flows_key(name: str) -> str | None:
    from ..conf import DEFAULTS

    key = name[len(FLOWS_PREFIX):]
    return key if key in DEFAULTS else None


def _flows_value(name: str, text: str, default):
    """Text for text settings (and a None-default one not written as JSON), JSON for everything else."""
    if isinstance(default, str) or (default is None and not text.lstrip().startswith(("{", "["))):
        return text
    if isinstance(default, bool):
        return _bool(name, text, default)
    try:
        value = json.loads(text)
    except ValueError:
        raise ConfigError(f"{name}: not valid JSON: {text[:60]!r}") from None
    expected = (int, float) if isinstance(default, (int, float)) else type(default)
    if default is not None and not isinstance(value, expected) and value is not None:
        raise ConfigError(f"{name}: expected {_kind(default)}, got {_kind(value)}")
    return value


def _kind(value) -> str:
    return {dict: "a JSON object", list: "a JSON list", str: "a string"}.get(type(value), "a number")


def _reader(environ):
    def get(name: str) -> str:
        if name not in NAMES:  # every variable read is in the documented list
            raise KeyError(f"{name} is not in app_service.env.VARIABLES")
        return environ.get(name, "").strip()

    return get


def _http_url(name: str, value: str) -> str:
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"{name}: expected an http(s):// URL, got {value[:80]!r}")
    return value


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _number(name: str, value: str, default):
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}: expected a number, got {value[:40]!r}") from None
    if number <= 0:
        raise ConfigError(f"{name}: must be more than 0, got {value}")
    return number


def _count(name: str, value: str) -> int:
    if not value:
        return 0
    if not value.isdigit():
        raise ConfigError(f"{name}: expected a whole number, got {value[:40]!r}")
    return int(value)


def _bool(name: str, value: str, default: bool) -> bool:
    if not value:
        return default
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected true or false, got {value[:40]!r}")


def _choice(name: str, value: str, choices) -> str:
    if value not in choices:
        raise ConfigError(f"{name}: expected one of {', '.join(choices)}, got {value[:40]!r}")
    return value
