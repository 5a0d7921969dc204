"""Django settings of the App service, all from environment variables (see env.py for the list).

Refuses to load without the required variables, with one line on stderr
(SystemExit, no traceback): ``saleor-flows-app check`` lists what is missing.
"""

import os

from .env import ConfigError, load

try:
    _values = load(os.environ)
except ConfigError as exc:
    raise SystemExit(f"saleor-flows-app: {exc}") from None

SECRET_KEY = _values["SECRET_KEY"]
SECRET_KEY_FALLBACKS = _values["SECRET_KEY_FALLBACKS"]
DEBUG = False
ALLOWED_HOSTS = _values["ALLOWED_HOSTS"]
USE_TZ = True
TIME_ZONE = "UTC"
# saleor_flows.saleor_app: the App edge (Saleor's signed webhooks, the App token's uses, the sending hold).
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "saleor_flows", "saleor_flows.saleor_app"]
MIDDLEWARE = ["saleor_flows.app_service.middleware.AllowedHost",
              "saleor_flows.app_service.middleware.ForwardedClientAddress",
              "django.middleware.security.SecurityMiddleware"]
PROXY_HOPS = _values["PROXY_HOPS"]
ROOT_URLCONF = "saleor_flows.app_service.urls"
WSGI_APPLICATION = "saleor_flows.app_service.wsgi.application"
DATABASES = _values["DATABASES"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
CACHES = _values["CACHES"]
STATIC_URL = "/static/"  # nothing is collected: the Dashboard bundle is served by saleor_flows itself

# Mail (EMAIL_URL, or EMAIL_BACKEND with EMAIL_* / ANYMAIL_* variables).
DEFAULT_FROM_EMAIL = _values["DEFAULT_FROM_EMAIL"]
globals().update(_values["MAIL"])  # EMAIL_BACKEND, EMAIL_HOST, … and ANYMAIL when set

# Celery: the broker is Redis; tasks are acknowledged late (saleor_flows/tasks.py), so a worker
# lost mid-task hands its task back.
CELERY_BROKER_URL = _values["CELERY_BROKER_URL"]
CELERY_TASK_DEFAULT_QUEUE = "saleor-flows"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = _values["BEAT_SCHEDULE_FILE"]
SWEEP_INTERVAL_SECONDS = _values["SWEEP_INTERVAL_SECONDS"]

# The one Saleor this deployment serves, and where it is reached.
SALEOR_API_URL = _values["SALEOR_API_URL"]
APP_URL = _values["APP_URL"]
SALEOR_FLOWS = _values["SALEOR_FLOWS"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"}},
    "root": {"handlers": ["stdout"], "level": _values["LOG_LEVEL"]},
}
