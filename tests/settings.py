"""Settings for the test suite: real PostgreSQL (DATABASE_URL), real Redis for Celery tests."""

import os
from urllib.parse import urlparse

_db = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saleor_flows"))

SECRET_KEY = "tests-only-secret"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "saleor_flows"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _db.path.lstrip("/") or "saleor_flows",
        "USER": _db.username or "postgres",
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname or "127.0.0.1",
        "PORT": str(_db.port or 5432),
        "TEST": {"NAME": os.environ.get("FLOWS_TEST_DB") or None},
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The live server (tests/dashboard) wraps the app in a static-files handler, which needs a STATIC_URL.
STATIC_URL = "/static/"
ROOT_URLCONF = "tests.urls"
EMAIL_BACKEND = os.environ.get("FLOWS_TEST_EMAIL_BACKEND", "django.core.mail.backends.locmem.EmailBackend")
DEFAULT_FROM_EMAIL = "Test Shop <shop@example.com>"

CELERY_BROKER_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15")

SALEOR_FLOWS = {
    "TASK_MODE": "inline",
    "SMS_BACKEND": "saleor_flows.channels.sms.locmem.SmsBackend",
    # Off for tests about other things; tests/test_gate.py turns them on (the shipped defaults).
    "FREQUENCY_CAP_HOURS": {},
    "QUIET_HOURS": {},
    "SHOP": {"name": "Test Shop", "url": "https://shop.example.com", "logo_url": "", "currency": "USD",
             "address": "1 Test Street", "support_email": "help@example.com"},
}
