"""Benchmark (not a test): a cart mutation in a real Saleor with the Flows plugin active vs inactive.

Run explicitly, inside a Saleor environment, with the suite's harness (its
fixtures build the shop):

    pytest -c tests/saleor/pytest-saleor.ini --rootdir tests/saleor tests/saleor/bench_cart.py -s

It is not named ``test_*.py``, so the suite never collects it. A guest
checkout with an email and one line; ``checkoutLinesUpdate`` changes the
quantity, through Saleor's GraphQL API, its plugin manager and our hooks
(checkout_updated: the event INSERT and the idle timer), with the on-commit
wake-up on a real Redis broker (``BENCH_REDIS_URL``, default db 14). Rounds of
8 calls alternate: plugin inactive, plugin active. Printed: the median and
p99 of each and their ratio (target ≤ 1.05), for three brokers:

* Redis, no worker running: the wake-up guard stays taken, as while a task waits in the queue;
* Redis, the guard cleared before each call: every call also enqueues a task (the worst case);
* no broker (Celery eager, Saleor without CELERY_BROKER_URL): the event waits for the sweep.
"""

import os
import statistics
import time
from unittest import mock

import pytest

from .saleor_env import NOT_INSTALLED, require_saleor

require_saleor()
pytest.importorskip("saleor", reason=NOT_INSTALLED)

from .saleor_graphql import create_checkout, gid  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "30"))
PER_ROUND = 8

LINES_UPDATE = """
mutation($id: ID!, $lines: [CheckoutLineUpdateInput!]!) {
  checkoutLinesUpdate(id: $id, lines: $lines) { checkout { id quantity } errors { field code message } }
}"""


def _p99(values):
    ordered = sorted(values)
    return ordered[max(0, round(0.99 * len(ordered) + 0.5) - 1)]


def test_bench_cart_mutation_plugin_on_vs_off(api_client, channel_USD, shop_variant, flows, flows_plugin):
    from django.db import transaction
    from saleor.plugins.models import PluginConfiguration

    from saleor_flows import tasks
    from saleor_flows.engine import dispatch
    from saleor_flows.models import Event

    checkout = create_checkout(api_client, channel=channel_USD.slug, variant=shop_variant, email="jane@example.com")
    app = tasks.process_pending.app
    saved = app.conf.broker_url, app.conf.task_always_eager
    quantity = [1]

    def call():
        quantity[0] = 3 - quantity[0]
        # The test's transaction never commits: Django keeps the on-commit callbacks the client already ran
        # (Saleor's ApiClient runs them after each request) and the next request would see them as its own.
        # A real request starts with none.
        transaction.get_connection().run_on_commit.clear()
        started = time.perf_counter()
        response = api_client.post_graphql(LINES_UPDATE, {"id": checkout["id"], "lines": [
            {"variantId": gid(shop_variant), "quantity": quantity[0]}]})
        elapsed = time.perf_counter() - started
        assert response.status_code == 200 and not response.json()["data"]["checkoutLinesUpdate"]["errors"]
        return elapsed

    def use_broker(url, eager):
        """Point Saleor's Celery app at ``url`` (its pooled connections dropped), eager or not."""
        # Saleor's app reads Django settings under the CELERY namespace.
        app.conf["CELERY_BROKER_URL"], app.conf["CELERY_TASK_ALWAYS_EAGER"] = url, eager
        app.conf.broker_url, app.conf.task_always_eager = url, eager
        from kombu import pools

        pools.reset()
        app._pool = None
        app.amqp._producer_pool = None

    def set_active(active):
        PluginConfiguration.objects.filter(identifier="saleor.flows", channel=None).update(active=active)

    published = []
    original_publish = tasks.publish

    def counting_publish(task, *args, **kwargs):
        ok = original_publish(task, *args, **kwargs)
        published.append(ok)
        return ok

    def measure(label, before_call=lambda: None):
        times = {False: [], True: []}
        events_before = Event.objects.count()
        published.clear()
        for _ in range(ROUNDS):
            for active in (False, True):
                set_active(active)
                call()  # the first call after a switch pays for loading the configuration
                for _ in range(PER_ROUND):
                    before_call()
                    times[active].append(call())
        set_active(True)
        off, on = statistics.median(times[False]), statistics.median(times[True])
        print(f"  {label:58} inactive median {off * 1e3:6.1f} ms p99 {_p99(times[False]) * 1e3:6.1f} ms | "
              f"active median {on * 1e3:6.1f} ms p99 {_p99(times[True]) * 1e3:6.1f} ms | "
              f"ratio {on / off:.3f} (+{(on - off) * 1e3:.2f} ms) | events recorded "
              f"{Event.objects.count() - events_before}, tasks enqueued {sum(published)}"
              f"{f' (refused {published.count(False)})' if False in published else ''}")

    print(f"\ncheckoutLinesUpdate in Saleor, {ROUNDS} interleaved rounds of {PER_ROUND} calls "
          f"(load {os.getloadavg()[0]:.2f}):")
    try:
        use_broker(os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"), False)
        with dispatch.forced("celery"), mock.patch.object(tasks, "publish", counting_publish):
            app.control.purge()
            measure("Redis broker, no worker (guard taken)")
            measure("Redis broker, guard cleared before each call (enqueues)",
                    lambda: tasks.WAKE_GUARD.clear(app))
            app.control.purge()
            use_broker(saved[0], True)
            measure("no broker (Celery eager): events left to the sweep")
            assert Event.objects.filter(status="pending").exists()  # nothing processed in the request
    finally:
        tasks.WAKE_GUARD.clear(app)
        use_broker(*saved)
