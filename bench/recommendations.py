"""Recommendations (engine/recommendations.py): the cost per email with 100,000 orders counted.

A shop of 2,000 products in 50 categories and 100,000 orders of 1-4 products
(popular products and same-category baskets more likely) is counted into
``ProductAffinity`` and ``ProductSales`` in bulk, as ``record_order`` would
have left them (its own cost per order is measured on the last 2,000 orders,
through ``record_order`` itself, each in its own transaction: two upserts and a commit). The catalog is in memory (a host's answers
cost what its own database costs; Saleor's are a handful of indexed queries).

Then, for 2,000 emails whose order holds 1-3 products, ``recommend(seeds,
limit=3)`` is timed, next to its limit measured in the same run: the one
indexed SELECT of the same pair rows (``GROUP BY other_id`` for the seeds,
over the pair index), issued raw with the cursor.
"""

import random
import time
from datetime import datetime, timezone

from django.db import connection, transaction

from bench.common import RESULTS, Dist, fmt_int, say, vacuum_analyze

PRODUCTS, CATEGORIES, ORDERS, EMAILS = 2_000, 50, 100_000, 2_000
COUNTED_LIVE = 2_000
AT = datetime(2026, 6, 1, tzinfo=timezone.utc)


def _catalog_class():
    from saleor_flows.catalog import Catalog

    class BenchCatalog(Catalog):
        def products(self, product_ids, *, channel, language=""):
            return {pid: {"product_id": pid, "product_name": f"Product {pid}", "price": "19.90", "currency": "EUR",
                          "product_url": f"https://shop.example.com/products/{pid}/", "thumbnail": "",
                          "in_stock": int(pid[1:]) % 17 != 0} for pid in product_ids}

        def similar(self, product_ids, *, channel, limit):
            category = int(product_ids[0][1:]) % CATEGORIES
            return [f"p{n}" for n in range(category, PRODUCTS, CATEGORIES) if f"p{n}" not in product_ids][:limit]

    return BenchCatalog


def _orders(rng):
    weights = [1 / (rank + 1) for rank in range(PRODUCTS)]
    for _ in range(ORDERS):
        first = rng.choices(range(PRODUCTS), weights)[0]
        basket = {first}
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            if rng.random() < 0.6:  # same category
                basket.add(rng.randrange(first % CATEGORIES, PRODUCTS, CATEGORIES))
            else:
                basket.add(rng.choices(range(PRODUCTS), weights)[0])
        yield sorted(f"p{n}" for n in basket)


def run(**_):
    from saleor_flows import catalog
    from saleor_flows.engine import recommendations
    from saleor_flows.models import Event, ProductAffinity, ProductSales

    rng = random.Random(13)
    say(f"recommendations: {fmt_int(ORDERS)} orders of {fmt_int(PRODUCTS)} products counted in bulk "
        f"(the last {fmt_int(COUNTED_LIVE)} through record_order), then {fmt_int(EMAILS)} emails")
    orders = list(_orders(rng))
    pairs, sales = {}, {}
    for basket in orders[:-COUNTED_LIVE]:
        for a in basket:
            sales[a] = sales.get(a, 0) + 1
            for b in basket:
                if a != b:
                    pairs[(a, b)] = pairs.get((a, b), 0) + 1
    ProductAffinity.objects.bulk_create([ProductAffinity(product_id=a, other_id=b, orders=n)
                                         for (a, b), n in pairs.items()], batch_size=10_000)
    ProductSales.objects.bulk_create([ProductSales(channel="eu", product_id=p, orders=n, last_ordered_at=AT)
                                      for p, n in sales.items()], batch_size=10_000)
    started = time.perf_counter()
    for number, basket in enumerate(orders[-COUNTED_LIVE:]):
        event = Event(name="order_created", channel="eu", occurred_at=AT,
                      payload={"lines": [{"product_id": p} for p in basket]})
        with transaction.atomic():  # in the engine it is part of the event's transaction
            recommendations.record_order(event)
    per_order = (time.perf_counter() - started) / COUNTED_LIVE
    vacuum_analyze("saleor_flows_productaffinity", "saleor_flows_productsales")
    say(f"  {fmt_int(ProductAffinity.objects.count())} pair rows, {fmt_int(ProductSales.objects.count())} products")

    catalog.register_catalog(_catalog_class()())
    try:
        seeds = [orders[rng.randrange(ORDERS)][:3] for _ in range(EMAILS)]
        support = 2
        table = ProductAffinity._meta.db_table
        sql = (f"SELECT other_id, SUM(orders) AS together FROM {table} WHERE product_id = ANY(%s) "
               f"GROUP BY other_id HAVING SUM(orders) >= %s ORDER BY together DESC, other_id LIMIT 9")
        raw, engine, reasons = [], [], {}
        with connection.cursor() as cursor:
            for seed in seeds:  # warm both paths' caches the same way
                cursor.execute(sql, [seed, support])
                cursor.fetchall()
            for seed in seeds:
                t0 = time.perf_counter()
                cursor.execute(sql, [seed, support])
                cursor.fetchall()
                raw.append(time.perf_counter() - t0)
        for seed in seeds:
            t0 = time.perf_counter()
            chosen = recommendations.recommend(seed, channel="eu", limit=3)
            engine.append(time.perf_counter() - t0)
            for item in chosen:
                reasons[item["reason"]] = reasons.get(item["reason"], 0) + 1
    finally:
        catalog.register_catalog(None)
    say(f"  reasons of the {fmt_int(sum(reasons.values()))} products chosen: "
        + ", ".join(f"{reason} {fmt_int(n)}" for reason, n in sorted(reasons.items())))
    raw_dist, engine_dist = Dist(raw), Dist(engine)
    RESULTS.add("recommendations: recommend(limit=3) per email, 100k orders", engine_dist.describe(),
                f"limit, same run: one indexed SELECT of the same pair rows {raw_dist.describe()}")
    RESULTS.add("recommendations: record_order per order (counting)", f"{per_order * 1e3:.2f} ms")
