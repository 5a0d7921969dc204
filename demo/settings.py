"""Django settings for the demo.

By default everything runs in this process on a SQLite file that the demo
recreates each run, with the engine in "inline" task mode: nothing to install
or start. Give ``DATABASE_URL=postgres://user:pass@host:5432/name`` to use
PostgreSQL, and ``CELERY_BROKER_URL=redis://host:6379/0`` to hand the work to
a real Celery worker (started by the demo in a thread, so it shares the
simulated clock).
"""

import os
import tempfile
from pathlib import Path

from saleor_flows.app_service.env import database_config

DEMO_DIR = Path(__file__).resolve().parent
# Recreated on every run, so it lives outside the source tree (DEMO_SQLITE moves it).
SQLITE_PATH = Path(os.environ.get("DEMO_SQLITE") or Path(tempfile.gettempdir()) / "saleor-flows-demo.sqlite3")

SECRET_KEY = "demo-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "saleor_flows"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _database(url: str) -> dict:
    if not url:
        # Throwaway data: skip fsyncs. The timeout matters only when a Celery worker thread shares the file.
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(SQLITE_PATH),
                "OPTIONS": {"timeout": 30, "init_command": "PRAGMA synchronous=OFF; PRAGMA journal_mode=WAL"}}
    # The Celery worker closes non-persistent connections after every task; keep them.
    return database_config(url, conn_max_age=None, default_name="saleor_flows_demo")


DATABASES = {"default": _database(os.environ.get("DATABASE_URL", ""))}

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
CELERY_TASK_DEFAULT_QUEUE = "saleor-flows-demo"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# Every email is written to the outbox folder (set by ``--outbox``) as .eml and .html.
EMAIL_BACKEND = "demo.outbox.EmailBackend"
DEMO_OUTBOX_DIR = "demo-outbox"
DEFAULT_FROM_EMAIL = "Northwind Outfitters <hello@northwind-outfitters.example.com>"

SALEOR_FLOWS = {
    "TASK_MODE": "celery" if CELERY_BROKER_URL else "inline",
    "FROM_EMAIL": "Northwind Outfitters <hello@northwind-outfitters.example.com>",
    "REPLY_TO": "help@northwind-outfitters.example.com",
    "MESSAGE_ID_DOMAIN": "northwind-outfitters.example.com",
    "SMS_BACKEND": "saleor_flows.channels.sms.console.SmsBackend",
    # No logo on purpose: the email header then shows the shop's name.
    "SHOP": {
        "name": "Northwind Outfitters",
        "url": "https://northwind-outfitters.example.com",
        "logo_url": "",
        "currency": "USD",
        "address": "214 Harbor Street, Portland, ME 04101, USA",
        "support_email": "help@northwind-outfitters.example.com",
    },
}
