"""Retention (target: the tables stay flat for a steady shop): months of a shop's traffic, pruned and not.

The shape of the data comes from the real engine: the prebuilt welcome series
is run to completion for a few contacts (``record_event``, processing, the
sweep), and one journey's rows are taken as the template: its trigger event,
its 6 step executions, its trail, its 3 messages. A steady shop is then
simulated day by day at SQL speed, with the analytics triggers on: each
contact goes through one such journey a month (3 emails, each delivered and
opened: 2 message events) and sends 5 storefront events (product views with a
typical payload). Clicks, orders and new contacts are left out (contacts are
the shop's customers: never pruned).

Run twice in the same process on the same days: a **baseline** that only folds
the rollup (what a shop had before pruning), and **pruned**, where
``retention.prune()`` runs once a simulated week with the default settings
(nightly in production; weekly here keeps the run short, so the plateau is at
most a week's rows higher). ``VACUUM`` (not FULL, no ANALYZE) runs after each fold or
prune, as autovacuum would, so deleted rows' space is reused. After each
simulated month: ``pg_total_relation_size`` of the tables the engine appends to.
"""

import json
import time
from datetime import datetime, timedelta, timezone

from bench.common import RESULTS, create_contacts, fmt_int, publish, say, vacuum_analyze, welcome_journey

TABLES = ["event", "enrolment", "stepexecution", "trailentry", "message", "messageevent", "statdelta", "flowstat",
          "pastentry", "prunedeventkey"]
VIEWS_PER_MONTH = 5
VIEW_PAYLOAD = {"product_id": "UHJvZHVjdDoxMjM=", "variant_id": "UHJvZHVjdFZhcmlhbnQ6NDU2",
                "product_name": "Organic cotton crew-neck T-shirt", "price": "24.90", "currency": "EUR",
                "product_url": "https://shop.example.com/products/organic-cotton-crew-neck-t-shirt/",
                "image_url": "https://shop.example.com/media/thumbnails/products/tshirt_thumbnail_256.webp",
                "session": "8f14e45fceea167a5a36dedd4bea2543"}
START = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)

DAY_SQL = """
WITH c AS (SELECT ct.id AS cid, ct.email FROM unnest(%(contacts)s::bigint[]) AS u(id)
             JOIN saleor_flows_contact ct ON ct.id = u.id),
ev AS (
  INSERT INTO saleor_flows_event (name, occurred_at, received_at, email, user_id, channel, payload, dedupe_key, status,
                                  error, contact_id, processed_at)
  SELECT %(trigger_name)s, %(at)s, %(at)s, c.email, '', '', %(trigger_payload)s::jsonb,
         'bench:' || %(tag)s || ':' || c.cid, 'processed', '', c.cid, %(at)s FROM c
  RETURNING id, contact_id),
en AS (
  INSERT INTO saleor_flows_enrolment (flow_id, version_id, contact_id, trigger_event_id, status, exit_reason, holdout,
                                      entered_at, finished_at)
  SELECT %(flow)s, %(version)s, contact_id, id, 'completed', '', false, %(at)s, %(finished)s FROM ev
  RETURNING id, contact_id),
ex AS (
  INSERT INTO saleor_flows_stepexecution (enrolment_id, step_id, occurrence, state, due_at, waiting_for, attempts,
                                          claimed_at, finished_at, result)
  SELECT en.id, t.step_id, 1, t.state, %(at)s + t.after, '', 1, %(at)s + t.after, %(at)s + t.after, t.result
    FROM en CROSS JOIN jsonb_to_recordset(%(steps)s::jsonb) AS t(step_id text, state text, result jsonb, after interval)
  RETURNING id, enrolment_id, step_id, finished_at),
tr AS (
  INSERT INTO saleor_flows_trailentry (contact_id, enrolment_id, step_id, kind, detail, at)
  SELECT en.contact_id, en.id, t.step_id, t.kind, t.detail, %(at)s + t.after
    FROM en CROSS JOIN jsonb_to_recordset(%(trail)s::jsonb) AS t(step_id text, kind text, detail jsonb, after interval)),
msg AS (
  INSERT INTO saleor_flows_message (send_id, execution_id, contact_id, flow_id, step_id, channel, kind, is_test, "to",
                                    subject, message_id, status, error, provider_message_id, segments, created_at,
                                    sent_at, delivered_at, opened_at, basis, high_intent)
  SELECT gen_random_uuid(), ex.id, en.contact_id, %(flow)s, ex.step_id, 'email', 'marketing', false, c.email, t.subject,
         '<' || gen_random_uuid() || '@saleor-flows.local>', 'sent', '', '', 0, ex.finished_at, ex.finished_at,
         ex.finished_at, ex.finished_at, 'consent', false
    FROM ex JOIN en ON en.id = ex.enrolment_id JOIN c ON c.cid = en.contact_id
    JOIN jsonb_to_recordset(%(sends)s::jsonb) AS t(step_id text, subject text) ON t.step_id = ex.step_id
  RETURNING id, created_at),
me AS (
  INSERT INTO saleor_flows_messageevent (message_id, provider, event_id, type, machine, url, occurred_at, received_at,
                                         detail)
  SELECT msg.id, 'sendgrid', 'bench-' || msg.id || '-' || k.type, k.type, false, '', msg.created_at, msg.created_at,
         k.detail
    FROM msg CROSS JOIN jsonb_to_recordset(%(message_events)s::jsonb) AS k(type text, detail jsonb))
INSERT INTO saleor_flows_event (name, occurred_at, received_at, email, user_id, channel, payload, dedupe_key, status,
                                error, contact_id, processed_at)
SELECT 'product_viewed', %(at)s, %(at)s, c.email, '', 'default-channel', %(view_payload)s::jsonb,
       'sha256:' || encode(sha256(convert_to(%(tag)s || ':view:' || c.cid || ':' || g, 'UTF8')), 'hex'),
       'processed', '', c.cid, %(at)s
  FROM c CROSS JOIN generate_series(1, %(views)s) AS g
"""


def template():
    """One real journey of the welcome series, as rows relative to its entry time."""
    from django.core import mail

    from bench.ingest import process_parallel, record_events
    from bench.storage import sweep_parallel
    from saleor_flows import clock
    from saleor_flows.models import Enrolment, Message, TrailEntry

    flow = publish(welcome_journey(), "welcome")
    create_contacts([f"t{i}@example.com" for i in range(4)])
    clock.set_now(START - timedelta(days=30))
    try:
        ids, _, _ = record_events(0, 4, prefix="t", timed=False)
        process_parallel(ids, workers=1)
        clock.set_now(clock.now() + timedelta(days=3, minutes=1))
        sweep_parallel(clock.now(), workers=1)
        clock.set_now(clock.now() + timedelta(days=7, minutes=1))
        sweep_parallel(clock.now(), workers=1)
    finally:
        clock.reset()
        mail.outbox = []
    enrolment = Enrolment.objects.filter(status="completed").select_related("trigger_event").first()
    entered = enrolment.entered_at

    def after(at):
        return f"{(at - entered).total_seconds()} seconds"

    steps = [{"step_id": x.step_id, "state": x.state, "result": x.result, "after": after(x.finished_at)}
             for x in enrolment.executions.order_by("id")]
    trail = [{"step_id": t.step_id, "kind": t.kind, "detail": t.detail, "after": after(t.at)}
             for t in TrailEntry.objects.filter(enrolment=enrolment)]
    sends = [{"step_id": m.step_id, "subject": m.subject} for m in Message.objects.filter(execution__enrolment=enrolment)]
    return {
        "flow": flow.pk, "version": flow.live_version_id, "trigger_name": enrolment.trigger_event.name,
        "trigger_payload": json.dumps(enrolment.trigger_event.payload),
        "finished_after": enrolment.finished_at - entered,
        "steps": json.dumps(steps), "trail": json.dumps(trail), "sends": json.dumps(sends),
        "message_events": json.dumps([{"type": "delivered", "detail": {"response": "250 2.0.0 OK queued"}},
                                      {"type": "opened", "detail": {"user_agent": "Mozilla/5.0 (iPhone; CPU iPhone "
                                                                    "OS 17_4 like Mac OS X) AppleWebKit/605.1.15"}}]),
        "view_payload": json.dumps(VIEW_PAYLOAD), "views": VIEWS_PER_MONTH,
        "journey": {"steps": len(steps), "trail": len(trail), "messages": len(sends)},
    }


def empty_tables():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE " + ", ".join(f"saleor_flows_{t}" for t in TABLES + ["conversion", "attribution"]))
    vacuum_analyze(*(f"saleor_flows_{t}" for t in TABLES))


def vacuum():
    """Autovacuum's part: deleted rows' space becomes reusable (statistics: bench.common's autoanalyze thread)."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM saleor_flows_{table}")


def sizes() -> dict:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(f"pg_total_relation_size('saleor_flows_{t}')" for t in TABLES))
        return dict(zip(TABLES, cursor.fetchone()))


def simulate(shape, contact_ids, months, prune_rows):
    """Day by day for ``months`` months of 30 days; returns the table sizes after each month."""
    from django.db import connection

    from saleor_flows import clock
    from saleor_flows.engine.analytics import fold_deltas
    from saleor_flows.engine.retention import prune

    per_day = len(contact_ids) / 30
    monthly, prune_seconds, deleted = [], 0.0, 0
    params = {k: v for k, v in shape.items() if k not in ("journey", "finished_after")}
    try:
        for day in range(months * 30):
            at = START + timedelta(days=day)
            clock.set_now(at + timedelta(hours=12))
            todays = contact_ids[int(day % 30 * per_day):int((day % 30 + 1) * per_day)]
            with connection.cursor() as cursor:
                cursor.execute(DAY_SQL, {**params, "contacts": todays, "at": at, "tag": f"{day}",
                                         "finished": at + shape["finished_after"]})
            if day % 7 == 6:
                t0 = time.perf_counter()
                if prune_rows:
                    deleted += sum(prune().deleted.values())
                else:
                    fold_deltas()
                prune_seconds += time.perf_counter() - t0
                vacuum()
            if day % 30 == 29:
                monthly.append(sizes())
    finally:
        clock.reset()
    return monthly, prune_seconds, deleted


def run(contacts=1000, months=16):
    from saleor_flows.models import Contact

    say(f"retention: a steady shop of {fmt_int(contacts)} contacts for {months} months (one welcome journey and "
        f"{VIEWS_PER_MONTH} storefront events per contact a month), with and without pruning")
    empty_tables()
    shape = template()
    journey = shape["journey"]
    say(f"  template from the real engine: {journey['steps']} step executions, {journey['trail']} trail entries, "
        f"{journey['messages']} messages per journey; 2 message events per message")
    create_contacts([f"s{i}@example.com" for i in range(contacts)])
    contact_ids = list(Contact.objects.filter(email__startswith="s").order_by("id").values_list("id", flat=True))
    runs = {}
    for name, pruning in [("baseline", False), ("pruned", True)]:
        empty_tables()
        t0 = time.perf_counter()
        runs[name] = simulate(shape, contact_ids, months, pruning)
        say(f"  {name}: simulated in {time.perf_counter() - t0:,.0f} s ({'prune' if pruning else 'fold'} "
            f"{runs[name][1]:,.1f} s of it{f', {fmt_int(runs[name][2])} rows pruned' if pruning else ''})")
    baseline, pruned = runs["baseline"][0], runs["pruned"][0]

    def mb(value):
        return f"{value / 1024 / 1024:,.1f}"

    say(f"  total of the {len(TABLES)} tables, MB, after each month:")
    say(f"    {'month':>5} {'baseline':>9} {'pruned':>8}   pruned per table (MB): "
        + " ".join(f"{t[:10]:>10}" for t in TABLES))
    for month, (base, kept) in enumerate(zip(baseline, pruned), start=1):
        say(f"    {month:>5} {mb(sum(base.values())):>9} {mb(sum(kept.values())):>8}   {'':>22}"
            + " ".join(f"{mb(kept[t]):>10}" for t in TABLES))
    last, previous = sum(baseline[-1].values()), sum(baseline[-2].values())
    growth = (last - previous) / contacts
    standing = sum(pruned[-1].values()) / contacts
    # Flat: the last three months of the pruned run against each other.
    tail = [sum(m.values()) for m in pruned[-3:]]
    change = (max(tail) - min(tail)) / max(tail)
    say(f"  baseline: {growth:,.0f} bytes per contact per month, growing without end "
        f"({mb(last)} MB after {months} months)")
    say(f"  pruned: {standing:,.0f} bytes per contact standing after {months} months; the last 3 months within "
        f"{change:.1%} of each other (growth {(tail[-1] - tail[-2]) / contacts:,.0f} B per contact in the last month)")
    RESULTS.add("retention: bytes per contact per month (steady shop, no pruning)",
                f"{growth:,.0f} B per contact per month ({fmt_int(contacts)} contacts)")
    RESULTS.add("retention: tables flat under pruning",
                f"{standing:,.0f} B per contact standing, last 3 months within {change:.1%} "
                f"(baseline {mb(last)} MB vs pruned {mb(tail[-1])} MB after {months} months)",
                "retention keeps the tables flat for a steady shop", change < 0.05)
    return growth, standing, change


if __name__ == "__main__":  # pragma: no cover
    from bench.common import setup

    setup()
    run()
