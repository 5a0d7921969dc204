"""The Celery app the tests run a real worker with (a host has its own; our tasks are shared_tasks)."""

from celery import Celery

app = Celery("saleor_flows_tests")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(task_default_queue="saleor-flows-tests", broker_connection_retry_on_startup=True,
                worker_hijack_root_logger=False)
import saleor_flows.tasks  # noqa: E402,F401  (registers the shared tasks on this app)
