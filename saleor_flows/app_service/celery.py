"""The App service's Celery app: the worker runs Flows' tasks, beat runs its periodic ones.

Configured from Django settings (``CELERY_*``, see settings.py). Beat runs
``saleor_flows.tasks.BEAT_SCHEDULE`` and the App edge's (the hourly check
that Saleor still knows the App token), with the sweep every
``SWEEP_INTERVAL_SECONDS``: a delayed step is sent within one interval of
its due time. Run exactly one beat per deployment.
"""

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor_flows.app_service.settings")
django.setup()

from django.conf import settings  # noqa: E402

from saleor_flows import tasks  # noqa: E402  (registers the shared tasks on this app)
from saleor_flows.saleor_app import tasks as app_tasks  # noqa: E402  (and the App edge's)

app = Celery("saleor_flows_app")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = {
    **tasks.BEAT_SCHEDULE,
    **app_tasks.BEAT_SCHEDULE,
    "saleor-flows-sweep": {**tasks.BEAT_SCHEDULE["saleor-flows-sweep"], "schedule": settings.SWEEP_INTERVAL_SECONDS},
}
