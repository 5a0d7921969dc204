"""What a saleor-flows hook adds to a Saleor request: median and p99 per call.

Runs inside a Saleor environment (Saleor installed, DATABASE_URL pointing at
a populated shop), not in `make bench`:

    source <saleor venv>/bin/activate && pip install -e <saleor-flows>
    python bench/saleor_hook.py [--calls 300]

It calls the plugin's real hooks on real orders, users and checkouts of the
shop, the way Saleor's manager does after a mutation: one INSERT of a
reference event and an enqueue on commit. (Saleor's payload function, whose
cost is printed for comparison, runs later in the worker.) Each call runs in a
transaction that is rolled back, so the shop's data is untouched.
"""

import argparse
import os
import statistics
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saleor.settings")
    import django

    django.setup()
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext
    from saleor.account.models import User
    from saleor.checkout.models import Checkout
    from saleor.order.models import Order

    from saleor_flows.engine import dispatch
    from saleor_flows.saleor_plugin.plugin import FlowsPlugin

    plugin = FlowsPlugin(configuration=[], active=True)
    samples = {
        "order_created": list(Order.objects.order_by("?")[: args.calls]),
        "customer_updated": list(User.objects.order_by("?")[: args.calls]),
        "checkout_updated": list(Checkout.objects.order_by("?")[: args.calls]),
    }

    class Rollback(Exception):
        pass

    print(f"saleor-flows hook cost inside Saleor ({sys.version.split()[0]}, {args.calls} calls per hook)")
    with dispatch.forced("celery"):  # the real path: enqueue on commit (rolled back here, so nothing is sent)
        for hook, objects in samples.items():
            if not objects:
                print(f"  {hook:18} no objects in this shop: skipped")
                continue
            total, recording, inserts = [], [], []
            for instance in (objects * (args.calls // len(objects) + 1))[: args.calls]:
                try:
                    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
                        started = time.perf_counter()
                        getattr(plugin, hook)(instance, previous_value=None, webhooks=None)
                        total.append((time.perf_counter() - started) * 1000)
                        inserts.append(sum(q["sql"].lstrip().upper().startswith("INSERT") for q in queries))
                        raise Rollback
                except Rollback:
                    pass
            from saleor_flows.saleor_plugin import payloads

            for instance in objects[:50]:  # deferred to the worker: Saleor's own payload function
                started = time.perf_counter()
                payloads.build(hook, instance)
                recording.append((time.perf_counter() - started) * 1000)
            total.sort()
            p99 = total[int(len(total) * 0.99) - 1]
            print(f"  {hook:18} median {statistics.median(total):6.2f} ms  p99 {p99:6.2f} ms  "
                  f"(payload built later in the worker: median {statistics.median(recording):6.2f} ms)  "
                  f"INSERTs per call: {max(inserts)}")


if __name__ == "__main__":
    main()
