"""The production path: our tasks on Saleor's Celery app, under its writer-DB guard.

In a shop the engine runs in Celery mode: a hook's INSERT wakes
``saleor_flows.process_pending`` on commit, Saleor's payload is built in that
task, and the sweep is a beat task. Saleor's tasks run under
``RestrictWriterDBTask``, which in Saleor's test settings raises on any query
to the writer that is not inside ``allow_writer()``. Saleor's test settings
run tasks eagerly, as Saleor does without a broker: then a hook wakes nothing
(nothing may run in the shopper's request) and the next sweep, a beat task,
processes the events. So this is the real task path, in-process.
"""

from datetime import timedelta

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from saleor.core.tasks import RestrictWriterDBTask  # noqa: E402

from saleor_flows import clock, tasks  # noqa: E402
from saleor_flows.engine import dispatch  # noqa: E402
from saleor_flows.models import Event  # noqa: E402

from .saleor_graphql import create_checkout, register  # noqa: E402


@pytest.fixture
def celery_mode(flows, settings, django_capture_on_commit_callbacks):
    """The engine hands work to Celery (on commit), as in a shop; ``run()`` runs a beat task like the scheduler."""
    assert settings.CELERY_TASK_ALWAYS_EAGER
    assert isinstance(tasks.sweep, RestrictWriterDBTask), type(tasks.sweep).__mro__
    assert settings.CELERY_RESTRICT_WRITER_METHOD == "saleor.core.db.connection.restrict_writer"

    class Beat:
        @staticmethod
        def run(task, *, after: timedelta):
            clock.advance(after)
            with django_capture_on_commit_callbacks(execute=True):  # run_executions is enqueued on commit
                task.delay()

    with dispatch.forced("celery"):
        yield Beat()


def test_signup_through_the_celery_task(api_client, channel_USD, flows, journey, celery_mode):
    welcome = journey("welcome")

    register(api_client, "celery.signup@example.com", channel=channel_USD.slug)

    event = Event.objects.get(name="customer_created")
    assert event.status == Event.Status.PENDING and not flows.emails_to("celery.signup@example.com")  # not in the request
    celery_mode.run(tasks.sweep, after=timedelta(seconds=10))  # the next tick
    event.refresh_from_db()
    assert event.status == Event.Status.PROCESSED, event.error
    assert [m.subject for m in flows.emails_to("celery.signup@example.com")] == [
        welcome["steps"]["email_welcome"]["subject"]]


def test_abandoned_checkout_through_the_celery_tasks(api_client, channel_USD, shop_variant, flows, journey,
                                                     celery_mode):
    steps = journey("abandoned_checkout")["steps"]
    flows.contact("celery.cart@example.com", email_consent="subscribed")

    create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email="celery.cart@example.com")
    assert Event.objects.get(name="checkout_created").status == Event.Status.PENDING  # not in the shopper's request
    celery_mode.run(tasks.sweep, after=timedelta(seconds=10))
    created = Event.objects.get(name="checkout_created")
    assert created.status == Event.Status.PROCESSED, created.error  # payload built in the task, by Saleor
    assert created.payload["lines"][0]["product_name"] == "Linen Summer Shirt"

    celery_mode.run(tasks.sweep, after=timedelta(minutes=61))  # the timer fires, its event is processed; 1 h wait
    assert Event.objects.get(name="checkout_abandoned").status == Event.Status.PROCESSED
    celery_mode.run(tasks.sweep, after=timedelta(hours=1))
    celery_mode.run(tasks.sweep, after=timedelta(minutes=1))

    assert [m.subject for m in flows.emails_to("celery.cart@example.com")] == [steps["email_reminder"]["subject"]]
    assert "Linen Summer Shirt" in flows.emails_to("celery.cart@example.com")[0].alternatives[0][0]
