"""The WSGI application the web server (gunicorn) serves."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_flows.app_service.settings")
application = get_wsgi_application()

# The web process enqueues too (each recorded event, a signup): our Celery app, with the configured broker,
# must be the current one here, or the tasks would go to Celery's default app (amqp://localhost).
from .celery import app as celery_app  # noqa: E402,F401
