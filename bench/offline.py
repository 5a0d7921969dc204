"""Work that runs off the request path: a dry-run simulation and the nightly predictive refit (no docs/design.md target).

Simulation: 5,000 subscribed contacts and 30 days of stored, processed events
(each contact: 1-3 abandoned checkouts, some site visits and orders; about
25,000 events, inserted in bulk), replayed through the prebuilt abandoned-checkout
journey as a draft (three emails over three days, exit and goal on an order
since the checkout; ``engine/simulation.py``, inline, one process). Reported: events
replayed per second.

Predictive: 20,000 customers with order histories drawn from a BG/NBD
process; ``predictive.refresh()`` fits BG/NBD and Gamma-Gamma (on its
seeded sample of 5,000) and writes the four fields of every customer.
"""

import random
import time
from datetime import timedelta
from decimal import Decimal

from bench.common import RESULTS, CpuMeter, fmt_int, say, truncate

def _stored_events(n_contacts, days, rng):
    from saleor_flows import clock
    from saleor_flows.models import Contact, Event

    now = clock.now()
    Contact.objects.bulk_create([Contact(email=f"sim{i}@example.com", email_consent="subscribed",
                                         created_at=now, updated_at=now) for i in range(n_contacts)],
                                batch_size=5000)
    contacts = list(Contact.objects.values_list("pk", "email"))
    events, orders = [], {}
    for pk, email in contacts:
        for _ in range(rng.randint(1, 3)):
            at = now - timedelta(seconds=rng.uniform(0, days * 86400))
            events.append(Event(name="checkout_abandoned", payload={"lines": [{"product_name": "Tote", "quantity": 1}]},
                                occurred_at=at, contact_id=pk, email=email))
            if rng.random() < 0.5:
                events.append(Event(name="site_visit", payload={}, occurred_at=at + timedelta(hours=rng.uniform(0, 72)),
                                    contact_id=pk, email=email))
            if rng.random() < 0.3:
                when = at + timedelta(hours=rng.uniform(0, 96))
                events.append(Event(name="order_created", payload={"total_gross_amount": "50.00", "currency": "USD"},
                                    occurred_at=when, contact_id=pk, email=email))
                orders.setdefault(pk, []).append(when)
    for number, event in enumerate(events):
        event.received_at, event.processed_at, event.status = event.occurred_at, event.occurred_at, "processed"
        event.dedupe_key = f"bench-sim:{number}"
    Event.objects.bulk_create(events, batch_size=5000)
    for pk, times in orders.items():
        Contact.objects.filter(pk=pk).update(order_count=len(times), total_spent=Decimal(50) * len(times),
                                             first_order_at=min(times), last_order_at=max(times))
    return len(events)


def bench_simulation(n_contacts=5000, days=30):
    from saleor_flows.engine import dispatch
    from saleor_flows.engine.definition import create_flow
    from saleor_flows.engine.simulation import start_simulation
    from saleor_flows.journeys import load_journey

    rng = random.Random(5)
    stored = _stored_events(n_contacts, days, rng)
    flow = create_flow("bench-sim", load_journey("abandoned_checkout"))
    with dispatch.forced("inline"), CpuMeter() as meter:
        simulation = start_simulation(flow, days=days)
    result = simulation.result
    say(f"simulation: {fmt_int(stored)} events over {days} days, {fmt_int(result['entered']['count'])} entered, "
        f"messages {result['messages']}, status {simulation.status}")
    RESULTS.add("simulation: stored events replayed through a draft (one process)",
                f"{result['events_scanned'] / meter.wall:,.0f} events/s ({fmt_int(result['events_scanned'])} "
                f"in {meter.wall:,.1f} s; CPU {meter.cpu:,.1f} s here, {meter.pg:,.1f} s PostgreSQL)")


def bench_predictive(n=20_000):
    from saleor_flows import clock
    from saleor_flows.engine.predictive import refresh
    from saleor_flows.models import Contact

    rng = random.Random(11)
    now = clock.now()
    contacts = []
    for i in range(n):
        rate, dropout, age = rng.gammavariate(0.8, 1 / 40), rng.betavariate(0.7, 2.5), rng.uniform(30, 700)
        times, t = [0.0], 0.0
        while True:
            t += rng.expovariate(rate)
            if t > age:
                break
            times.append(t)
            if rng.random() < dropout:
                break
        first = now - timedelta(days=age)
        contacts.append(Contact(email=f"buyer{i}@example.com", created_at=first, updated_at=now,
                                order_count=len(times), total_spent=Decimal(40 * len(times)),
                                first_order_at=first, last_order_at=first + timedelta(days=times[-1])))
    Contact.objects.bulk_create(contacts, batch_size=5000)
    with CpuMeter() as meter:
        report = refresh(now=now)
    say(f"predictive: BG/NBD {report['bgnbd']}")
    RESULTS.add(f"predictive: nightly refit and update of {fmt_int(n)} customers",
                f"{meter.wall:,.1f} s (CPU {meter.cpu:,.1f} s here, {meter.pg:,.1f} s PostgreSQL)")


def run():
    t0 = time.perf_counter()
    truncate()  # (a run stopped half-way leaves rows behind)
    bench_simulation()
    truncate()
    bench_predictive()
    say(f"(offline: {time.perf_counter() - t0:,.0f} s)")
