"""Render and hand off emails (target: at least 1,000 emails/s per worker process, in-memory backend).

The prebuilt abandoned-checkout journey is published (MJML compiled at publish
time) and 2,000 contacts each abandon a checkout of 1-3 lines. Its cart email
(``email_reminder``: a line table with thumbnails, money formatting, a button,
the footer with a signed unsubscribe link) is then produced for every contact,
in one process, three ways:

1. ``render_email()`` alone (context built beforehand): the template engine;
2. ``delivery.prepare()`` + ``delivery.hand_off()`` to Django's locmem backend:
   context, unsubscribe signature, render, ``EmailMultiAlternatives``, backend;
3. the engine path: claimed ``email_reminder`` executions run through
   ``runner.run_claimed()`` (``_send_chunk``, window by window: locks,
   exit/goal check, consent, render, ``sending`` committed, hand-off over one
   connection, ``sent`` committed, trail, next wait scheduled).
"""

import cProfile
import io
import pstats
import random
import time
import uuid
from datetime import timedelta

from bench.common import RESULTS, CpuMeter, Dist, create_contacts, fmt_int, say, short_paths, truncate, vacuum_analyze

TARGET_PER_S = 1000
STEP = "email_reminder"
PRODUCTS = [("Merino Crew Sweater", ["S", "M", "L"], "89.00"), ("Canvas Field Jacket", ["M", "L", "XL"], "189.00"),
            ("Everyday Tote", ["Natural", "Black"], "45.00"), ("Wool Beanie", ["Grey", "Navy"], "29.00"),
            ("Trail Runner Socks", ["39-42", "43-46"], "14.50"), ("Leather Card Holder", ["Tan"], "39.00")]


def checkout_payload(rng, i):
    lines = []
    for name, variants, price in rng.sample(PRODUCTS, rng.choice([1, 2, 3])):
        variant = rng.choice(variants)
        lines.append({"product_name": name, "variant_name": variant, "full_name": f"{name} ({variant})",
                      "quantity": rng.choice([1, 1, 2]), "base_price": price, "currency": "USD",
                      "sku": f"SKU-{abs(hash(name)) % 10000:04d}", "variant_id": f"UHJvZHVjdFZhcmlhbnQ6{i}",
                      "thumbnail": f"https://cdn.example.com/thumbs/{name.lower().replace(' ', '-')}.png"})
    total = sum(float(line["base_price"]) * line["quantity"] for line in lines)
    token = uuid.UUID(int=rng.getrandbits(128), version=4)
    return {"id": f"Q2hlY2tvdXQ6{token}", "token": str(token), "currency": "USD", "language_code": "en",
            "checkout_url": f"https://shop.example.com/checkout/{token}", "total_gross_amount": f"{total:.2f}",
            "lines": lines}


def setup_journeys(n):
    """Publish the journey and put n subscribed contacts in it, each with its checkout_abandoned event.

    Set up in bulk (what the ingest benchmark measures is not measured again here): events,
    enrolments and the finished 1-hour waits are inserted directly.
    """
    from saleor_flows import clock
    from saleor_flows.journeys import load_journey
    from saleor_flows.models import Contact, Enrolment, Event, StepExecution
    from bench.common import publish

    definition = load_journey("abandoned_checkout")
    for key in ("name", "description", "version"):
        definition.pop(key, None)
    flow = publish(definition, "abandoned-checkout")
    create_contacts([f"shopper{i}@example.com" for i in range(n)])
    contacts = list(Contact.objects.order_by("id"))
    rng = random.Random(7)
    now = clock.now()
    events = Event.objects.bulk_create([
        Event(name="checkout_abandoned", occurred_at=now, received_at=now, email=c.email, contact=c,
              payload=checkout_payload(rng, i), dedupe_key=f"checkout_abandoned:{i}", status="processed",
              processed_at=now)
        for i, c in enumerate(contacts)], batch_size=1000)
    enrolments = Enrolment.objects.bulk_create([
        Enrolment(flow=flow, version=flow.live_version, contact=c, trigger_event=e, entered_at=now)
        for c, e in zip(contacts, events)], batch_size=1000)
    StepExecution.objects.bulk_create([
        StepExecution(enrolment=e, step_id="wait_1h", state="done", due_at=now + timedelta(hours=1),
                      finished_at=now + timedelta(hours=1)) for e in enrolments], batch_size=1000)
    vacuum_analyze()
    return flow


def send_executions(now, count, *, claimed=True, offset=0):
    """An email_reminder execution for each of ``count`` enrolments (after ``offset``), claimed, or pending
    and due a second before ``now``; set-based: setup. Returns their ids."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO saleor_flows_stepexecution (enrolment_id, step_id, occurrence, state, due_at, waiting_for,"
            " attempts, claimed_at, finished_at, result)"
            " SELECT id, %s, 1, %s, %s, '', 0, %s, NULL, '{}'::jsonb FROM saleor_flows_enrolment"
            " WHERE id IN (SELECT id FROM saleor_flows_enrolment ORDER BY id OFFSET %s LIMIT %s) RETURNING id",
            [STEP, "claimed" if claimed else "pending", now if claimed else now - timedelta(seconds=1),
             now if claimed else None, offset, count])
        ids = sorted(row[0] for row in cursor.fetchall())
    vacuum_analyze()
    return ids


def run(n=2000, n_engine=800, n_profile=200):
    from django.core import mail

    from saleor_flows import clock
    from saleor_flows.channels import delivery
    from saleor_flows.channels.templating import render_email
    from saleor_flows.engine.definition import message_kind
    from saleor_flows.engine import dispatch
    from saleor_flows.engine.runner import run_claimed
    from saleor_flows.models import Enrolment, Message

    say(f"render: the abandoned-checkout cart email for {fmt_int(n)} contacts, one process, locmem backend")
    truncate()
    start = clock.now()
    clock.set_now(start)
    try:
        flow = setup_journeys(n)
        version = flow.live_version
        definition = version.definition
        step = definition["steps"][STEP]
        enrolments = list(Enrolment.objects.select_related("contact", "trigger_event").order_by("id"))
        contacts = [(e.contact, e.trigger_event.payload) for e in enrolments]

        # 1. the template engine alone
        contexts = [delivery.template_context(contact=c, flow=flow, event_payload=p, send_id=uuid.uuid4())
                    for c, p in contacts]
        times = []
        size = 0
        for context in contexts:
            t0 = time.perf_counter()
            rendered = render_email(step["compiled"], context, language="en")
            times.append(time.perf_counter() - t0)
            size += len(rendered.html) + len(rendered.text)
        render = Dist(times)
        render_rate = n / sum(times)
        say(f"  render_email() alone: {render_rate:,.0f} emails/s; per email {render.describe()}"
            f"; average HTML+text {size / n / 1024:.1f} KB")

        # 2. prepare + hand off to locmem
        mail.outbox = []
        prep_times, hand_times = [], []
        for contact, payload in contacts:
            t0 = time.perf_counter()
            outgoing = delivery.prepare(step, kind=message_kind(step, definition), flow=flow, contact=contact,
                                        event_payload=payload, send_id=uuid.uuid4())
            t1 = time.perf_counter()
            delivery.hand_off(outgoing)
            t2 = time.perf_counter()
            prep_times.append(t1 - t0)
            hand_times.append(t2 - t1)
        assert len(mail.outbox) == n, len(mail.outbox)
        total = sum(prep_times) + sum(hand_times)
        handoff_rate = n / total
        say(f"  prepare() + hand_off() to locmem: {handoff_rate:,.0f} emails/s "
            f"(prepare median {Dist(prep_times).median * 1e3:.2f} ms, hand_off median {Dist(hand_times).median * 1e3:.2f} ms)")
        mail.outbox = []

        # 3. the engine: claimed send steps through run_claimed
        clock.set_now(start + timedelta(hours=1, seconds=1))
        ids = send_executions(clock.now(), n_engine + n_profile)
        profile_ids, timed_ids = ids[:n_profile], ids[n_profile:]
        with dispatch.forced("inline"), CpuMeter() as meter:
            run_claimed(timed_ids)
        engine_s = meter.wall
        engine_rate = len(timed_ids) / engine_s
        say(f"  engine path, run_claimed() over {fmt_int(len(timed_ids))} claimed send steps: {engine_rate:,.0f} emails/s "
            f"({engine_s / len(timed_ids) * 1e3:.2f} ms per email)")
        say(f"    {meter.per(len(timed_ids))}; if never waiting: {len(timed_ids) / (meter.cpu + meter.pg):,.0f} emails/s")
        q, text = profile_engine(profile_ids)
        say(f"  engine path, per send: {q['per_send']:.1f} queries "
            f"({', '.join(f'{k} {v:.1f}' for k, v in q['kinds'].items())}), "
            f"{q['db_ms']:.2f} ms in the database driver of {q['wall_ms']:.2f} ms")
        say(f"  cProfile of {fmt_int(len(profile_ids) - len(profile_ids) // 2)} engine sends:")
        say("    " + "\n    ".join(line for line in text.strip().splitlines() if line.strip()))
        sent = Message.objects.filter(status="sent").count()
        if sent != len(ids) or len(mail.outbox) != len(ids):
            say(f"    (UNEXPECTED: {sent} messages sent, {len(mail.outbox)} in the outbox, expected {len(ids)})")
        mail.outbox = []
    finally:
        clock.reset()

    RESULTS.add("render: render_email() alone (cart email)", f"{render_rate:,.0f} emails/s")
    RESULTS.add("render: prepare + hand off to locmem", f"{handoff_rate:,.0f} emails/s per process",
                f"at least {TARGET_PER_S:,} emails/s per worker process", handoff_rate >= TARGET_PER_S)
    RESULTS.add("render: engine path (run_claimed, locmem)", f"{engine_rate:,.0f} emails/s per process",
                f"at least {TARGET_PER_S:,} emails/s per worker process", engine_rate >= TARGET_PER_S)
    return {"render": render_rate, "handoff": handoff_rate, "engine": engine_rate}


def profile_engine(ids):
    """Queries per send (first half) and a cProfile (second half) of run_claimed over send steps."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from saleor_flows.engine import dispatch
    from saleor_flows.engine.runner import run_claimed

    half = len(ids) // 2
    with dispatch.forced("inline"):
        connection.queries_log.clear()  # a full log (9,000 entries) would capture nothing
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            run_claimed(ids[:half])
            wall = time.perf_counter() - t0
        profiler = cProfile.Profile()
        profiler.enable()
        run_claimed(ids[half:])
        profiler.disable()
    kinds = {}
    for query in captured.captured_queries:
        verb = query["sql"].split(None, 1)[0].upper()
        verb = "SAVEPOINT/RELEASE" if verb in ("SAVEPOINT", "RELEASE", "ROLLBACK") else verb
        kinds[verb] = kinds.get(verb, 0) + 1
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(r"saleor_flows|django/core/(mail|signing)|jinja2/environment|psycopg/cursor", 20)
    stats.sort_stats("tottime").print_stats(12)
    text = short_paths(out.getvalue())
    return {"per_send": len(captured.captured_queries) / half,
            "kinds": {k: v / half for k, v in sorted(kinds.items(), key=lambda kv: -kv[1])},
            "db_ms": sum(float(q["time"]) for q in captured.captured_queries) / half * 1e3,
            "wall_ms": wall / half * 1e3}, text


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
