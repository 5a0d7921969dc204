"""Django settings for the benchmarks: a dedicated PostgreSQL database, locmem mail, Redis db 14.

``BENCH_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/saleor_flows_bench``)
and ``BENCH_REDIS_URL`` (default ``redis://127.0.0.1:6379/14``) point elsewhere.
The database is created if it is missing (:func:`ensure_database`, called by
``python -m bench`` before Django starts) and migrated at the start of a run.
"""

import os
from urllib.parse import unquote, urlparse

_db = urlparse(os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saleor_flows_bench"))

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "saleor_flows"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/") or "saleor_flows_bench",
        "USER": unquote(_db.username or "postgres"),
        "PASSWORD": unquote(_db.password or ""),
        "HOST": _db.hostname or "127.0.0.1",
        "PORT": str(_db.port or 5432),
        # Persistent connections, as a host runs them (Saleor: CONN_MAX_AGE=600); the Celery
        # worker would otherwise reconnect after every task.
        "CONN_MAX_AGE": None,
        # Tells the worker processes' backends apart in pg_stat_activity (bench/worker.py sets it for them).
        "OPTIONS": {"application_name": os.environ.get("BENCH_APPLICATION_NAME", "saleor-flows-bench")},
    }
}

# The in-memory backend (django.core.mail.outbox); the latency benchmark uses a subclass that
# also notes when each message arrived.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "Bench Shop <shop@example.com>"

CELERY_BROKER_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
CELERY_TASK_DEFAULT_QUEUE = "saleor-flows-bench"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

SALEOR_FLOWS = {
    # As in production; the in-process benchmarks force "inline" around what they drive.
    "TASK_MODE": "celery",
    "FROM_EMAIL": "Bench Shop <shop@example.com>",
    "MESSAGE_ID_DOMAIN": "bench.example.com",
    "SMS_BACKEND": "saleor_flows.channels.sms.locmem.SmsBackend",
    "SHOP": {"name": "Bench Shop", "url": "https://shop.example.com", "logo_url": "https://shop.example.com/logo.png",
             "currency": "USD", "address": "1 Bench Street, Springfield", "support_email": "help@example.com"},
}

# Set by bench/drain.py for the worker processes it starts: the SMTP server they send to, and the
# opt-in queues of docs/operations.md (JSON), as a shop would configure them.
if os.environ.get("BENCH_SMTP_PORT"):
    SALEOR_FLOWS["SMTP"] = {"host": "127.0.0.1", "port": int(os.environ["BENCH_SMTP_PORT"]), "timeout": 30}
if os.environ.get("BENCH_TASK_QUEUES"):
    import json

    SALEOR_FLOWS["TASK_QUEUES"] = json.loads(os.environ["BENCH_TASK_QUEUES"])

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {"celery": {"level": "WARNING"}, "kombu": {"level": "WARNING"}},
}


def ensure_database():
    """Create the benchmark database if it does not exist."""
    from saleor_flows.db import create_database_if_missing

    create_database_if_missing(DATABASES["default"])
