"""The flow report at 1,000,000 sends (target: under 200 ms).

One flow (hello email → random split A/B → mail_a | mail_b → wait → follow-up
email → last email; 10 % holdout) is filled straight in SQL with
``INSERT … SELECT generate_series`` — 250,000 treated enrolments with their
1,500,000 step executions and 1,000,000 sent messages over 60 days, plus
25,000 held-out enrolments, engagement timestamps (97 % delivered, 30 %
opened, 10 % machine-opened, 5 % or 7 % clicked by variant, bounces,
unsubscribes, complaints), a MessageEvent row per open and click, 10,000
attributed orders and 20,000 conversions. They are bulk-loaded
with foreign-key checks and the analytics triggers off (``session_replication_role
= replica``), as a data import would be.

Then ``flows_rollup --rebuild`` counts them into the rollup (timed: the
one-off cost of a history this size; in production the triggers append
deltas as things happen and the beat task folds a minute's worth at a time), and
``flow_report`` is timed (median of several runs) on the folded rollup and
again with a tail of 10,000 changes not folded yet (a busy minute).
``split_report`` and ``holdout_report`` are timed for context.
"""

import time

from bench.common import RESULTS, Dist, create_contacts, fmt_int, mjml, publish, say, vacuum_analyze

TARGET_MS = 200
ENROLMENTS = 250_000  # four emails each: 1,000,000 sends
HELD_OUT = 25_000
DAYS = 60
RUNS = 9


def email(subject: str, next=None) -> dict:
    return {"type": "send_email", "subject": subject, "mjml": mjml("Hello {{ contact.first_name }}"), "next": next}


def definition() -> dict:
    return {
        "trigger": {"event": "signed_up"}, "holdout_percent": 10, "start": "hello",
        "goal": {"history": "event", "event": "order_created", "since": "entered"},
        "steps": {
            "hello": email("Hello", next="ab"),
            "ab": {"type": "random_split", "auto_winner": True,
                   "variants": [{"name": "A", "weight": 1, "next": "mail_a"}, {"name": "B", "weight": 1, "next": "mail_b"}]},
            "mail_a": email("Subject A", next="wait"), "mail_b": email("Subject B", next="wait"),
            "wait": {"type": "wait", "duration": {"days": 2}, "next": "follow_up"},
            "follow_up": email("Follow-up", next="last"), "last": email("Last"),
        },
    }


FILL_SQL = [
    ("events", """
INSERT INTO saleor_flows_event (name, occurred_at, received_at, email, user_id, channel, payload, dedupe_key, status,
                                error, contact_id, processed_at)
SELECT 'signed_up', %(base)s + (g %% %(days)s) * interval '1 day' + (g %% 600) * interval '1 minute',
       %(base)s + (g %% %(days)s) * interval '1 day', '', '', '', '{}', 'bench-report-' || g, 'processed', '',
       %(contact0)s + g %% %(contacts)s, %(base)s + (g %% %(days)s) * interval '1 day'
  FROM generate_series(1, %(enrolments)s + %(held)s) g"""),
    ("enrolments", """
INSERT INTO saleor_flows_enrolment (flow_id, version_id, contact_id, trigger_event_id, status, exit_reason, holdout,
                                    entered_at, finished_at)
SELECT %(flow)s, %(version)s, e.contact_id, e.id,
       CASE WHEN n > %(enrolments)s THEN 'completed' WHEN n %% 25 = 0 THEN 'converted' ELSE 'completed' END,
       CASE WHEN n > %(enrolments)s THEN 'holdout_window_ended' WHEN n %% 25 = 0 THEN 'goal_reached' ELSE 'completed' END,
       n > %(enrolments)s, e.occurred_at, e.occurred_at + interval '3 days'
  FROM (SELECT id, contact_id, occurred_at, row_number() OVER (ORDER BY id) AS n
          FROM saleor_flows_event WHERE dedupe_key LIKE 'bench-report-%%') e"""),
    ("step executions", """
INSERT INTO saleor_flows_stepexecution (enrolment_id, step_id, occurrence, state, due_at, waiting_for, attempts,
                                        claimed_at, finished_at, result)
SELECT en.id, s.step_id, 1, s.state, en.entered_at + s.offset_, '', 1, en.entered_at + s.offset_,
       en.entered_at + s.offset_,
       CASE WHEN s.step_id = 'ab' THEN jsonb_build_object('variant', CASE WHEN en.id %% 2 = 0 THEN 'A' ELSE 'B' END)
            ELSE '{}'::jsonb END
  FROM saleor_flows_enrolment en
 CROSS JOIN (VALUES ('hello', 'sent', interval '0'), ('ab', 'done', interval '1 second'),
                    ('variant', 'sent', interval '2 seconds'), ('wait', 'done', interval '2 days'),
                    ('follow_up', 'sent', interval '2 days 1 second'), ('last', 'sent', interval '2 days 2 seconds'))
       AS s0(step, state, offset_)
 CROSS JOIN LATERAL (SELECT CASE WHEN s0.step = 'variant' THEN CASE WHEN en.id %% 2 = 0 THEN 'mail_a' ELSE 'mail_b' END
                                 ELSE s0.step END AS step_id, s0.state, s0.offset_) s
 WHERE en.flow_id = %(flow)s AND NOT en.holdout
 ORDER BY en.id, s.offset_"""),
    ("messages", """
INSERT INTO saleor_flows_message (send_id, execution_id, contact_id, flow_id, step_id, channel, kind, is_test, "to",
                                  subject, message_id, status, error, provider_message_id, segments, created_at,
                                  sent_at, delivered_at, opened_at, machine_opened_at, clicked_at, bounced_at,
                                  complained_at, unsubscribed_at, failed_at, basis, high_intent)
SELECT gen_random_uuid(), x.id, en.contact_id, %(flow)s, x.step_id, 'email', 'marketing', false, 'bench@example.com',
       'Subject', '', 'sent', '', '', 0, x.finished_at, x.finished_at,
       CASE WHEN x.id %% 100 < 97 THEN x.finished_at + interval '1 minute' END,
       CASE WHEN x.id %% 100 < 30 THEN x.finished_at + interval '2 hours' END,
       CASE WHEN x.id %% 100 BETWEEN 30 AND 39 THEN x.finished_at + interval '2 minutes' END,
       CASE WHEN x.id %% 100 < CASE WHEN x.step_id = 'mail_b' THEN 7 ELSE 5 END
            THEN x.finished_at + interval '3 hours' END,
       CASE WHEN x.id %% 100 >= 97 AND x.id %% 100 < 99 THEN x.finished_at + interval '1 minute' END,
       CASE WHEN x.id %% 10000 < 5 THEN x.finished_at + interval '1 day' END,
       CASE WHEN x.id %% 1000 < 3 THEN x.finished_at + interval '4 hours' END,
       CASE WHEN x.id %% 100 = 99 THEN x.finished_at + interval '1 minute' END, 'consent', false
  FROM saleor_flows_stepexecution x JOIN saleor_flows_enrolment en ON en.id = x.enrolment_id
 WHERE en.flow_id = %(flow)s AND x.state = 'sent'
 ORDER BY x.id"""),
    ("message events", """
INSERT INTO saleor_flows_messageevent (message_id, provider, event_id, type, machine, url, occurred_at, received_at,
                                       detail)
SELECT m.id, 'pixel', m.id || ':' || t.type, t.type, t.machine, '', t.at, t.at, '{}'
  FROM saleor_flows_message m
 CROSS JOIN LATERAL (VALUES ('opened', false, m.opened_at), ('opened', true, m.machine_opened_at),
                            ('clicked', false, m.clicked_at)) AS t(type, machine, at)
 WHERE m.flow_id = %(flow)s AND t.at IS NOT NULL
ON CONFLICT DO NOTHING"""),
    ("attributions", """
INSERT INTO saleor_flows_attribution (order_key, event_id, contact_id, flow_id, message_id, step_id, touch,
                                      touched_at, amount, currency, ordered_at)
SELECT 'bench-order-' || m.id, NULL, m.contact_id, m.flow_id, m.id, m.step_id, 'click', m.clicked_at,
       20 + m.id %% 80, CASE WHEN m.id %% 3 = 0 THEN 'USD' ELSE 'EUR' END, m.clicked_at + interval '1 hour'
  FROM saleor_flows_message m WHERE m.flow_id = %(flow)s AND m.clicked_at IS NOT NULL
 ORDER BY m.id LIMIT 10000"""),
    ("conversions", """
INSERT INTO saleor_flows_conversion (enrolment_id, order_key, amount, currency, ordered_at)
SELECT en.id, 'bench-conv-' || en.id, 20 + en.id %% 80, 'EUR', en.entered_at + interval '1 day'
  FROM saleor_flows_enrolment en WHERE en.flow_id = %(flow)s AND en.id %% CASE WHEN en.holdout THEN 16 ELSE 13 END = 0
"""),
]


def fill(flow, enrolments, held_out):
    from django.db import connection, transaction

    from saleor_flows.models import Contact

    contact_ids = list(Contact.objects.order_by("id").values_list("id", flat=True))
    params = {"flow": flow.pk, "version": flow.live_version_id, "enrolments": enrolments, "held": held_out,
              "days": DAYS, "base": flow.created_at.replace(hour=8, minute=0, second=0, microsecond=0),
              "contact0": contact_ids[0], "contacts": len(contact_ids)}
    for name, sql in FILL_SQL:
        t0 = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            # A bulk load: no foreign-key checks and no analytics triggers (the rollup is rebuilt after).
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute(sql, params)
            rows = cursor.rowcount
        vacuum_analyze()  # what autovacuum does to a table that grew this much
        say(f"  filled {name}: {fmt_int(rows)} rows in {time.perf_counter() - t0:,.1f} s")


def count_deltas():
    from saleor_flows.models import StatDelta

    return StatDelta.objects.count()


def timed(func, runs=RUNS):
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = func()
        values.append(time.perf_counter() - t0)
    return Dist(values), result


def run(enrolments=ENROLMENTS, held_out=HELD_OUT):
    from django.db import connection, transaction

    from saleor_flows.engine.analytics import flow_report, fold_deltas, holdout_report, rebuild, split_report
    from saleor_flows.models import FlowStat, Message

    say(f"report: flow_report over a flow with {fmt_int(enrolments * 4)} sends, median of {RUNS} runs")
    create_contacts([f"report{i}@example.com" for i in range(10_000)])
    flow = publish(definition(), "bench-report")
    fill(flow, enrolments, held_out)
    t0 = time.perf_counter()
    folded = rebuild()
    fold_s = time.perf_counter() - t0
    vacuum_analyze()
    say(f"  rollup: rebuilt from the tables (flows_rollup --rebuild): {fmt_int(folded)} deltas into"
        f" {fmt_int(FlowStat.objects.count())} rollup rows in {fold_s:,.1f} s")

    dist, report = timed(lambda: flow_report(flow))
    totals = report["totals"]
    assert totals["sent"] == enrolments * 4, totals["sent"]
    say(f"  flow_report (folded): {dist.describe()}")
    say(f"    sent {fmt_int(totals['sent'])}, delivered {fmt_int(totals['delivered'])}, opened {fmt_int(totals['opened'])}"
        f" (+{fmt_int(totals['machine_opened'])} machine), clicked {fmt_int(totals['clicked'])},"
        f" orders {fmt_int(totals['orders'])}, revenue {totals['revenue']}; {len(report['days'])} days,"
        f" {len(report['steps'])} steps")
    size = f"{enrolments * 4 / 1e6:g}M sends"
    RESULTS.add(f"flow report at {size} (rollup folded)", f"median {dist.median * 1e3:.1f} ms",
                f"under {TARGET_MS} ms", dist.median * 1e3 < TARGET_MS)

    # A busy minute not folded yet: 10,000 clicks arrive after the last fold (through the triggers).
    late = min(10_000, enrolments)
    t0 = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE saleor_flows_message SET clicked_at = sent_at + interval '5 hours' "
                       "WHERE id IN (SELECT id FROM saleor_flows_message WHERE flow_id = %s AND clicked_at IS NULL "
                       "ORDER BY id LIMIT %s)", [flow.pk, late])
    update_s = time.perf_counter() - t0
    tail = count_deltas()
    say(f"  {fmt_int(late)} clicks recorded with one UPDATE through the message trigger: {update_s:,.2f} s"
        f" ({update_s / late * 1e6:,.0f} µs per message including the UPDATE itself)")
    dist, tailed = timed(lambda: flow_report(flow))
    assert tailed["totals"]["clicked"] == totals["clicked"] + late
    say(f"  flow_report with {fmt_int(tail)} changes not folded yet: {dist.describe()}")
    RESULTS.add(f"flow report at {size} + {fmt_int(tail)} unfolded changes", f"median {dist.median * 1e3:.1f} ms",
                f"under {TARGET_MS} ms", dist.median * 1e3 < TARGET_MS)
    t0 = time.perf_counter()
    fold_deltas()
    say(f"  folding those {fmt_int(tail)} deltas: {(time.perf_counter() - t0) * 1e3:,.0f} ms")

    dist, split = timed(lambda: split_report(flow, "ab"), runs=5)
    a, b = split["variants"]
    say(f"  split_report: {dist.describe()}; click rate A {a['rates']['click_rate']:.4f} B {b['rates']['click_rate']:.4f},"
        f" P(B best) {b['probability_best']['click_rate']:.4f}")
    RESULTS.add(f"split report at {size}", f"median {dist.median * 1e3:.1f} ms")
    dist, holdout = timed(lambda: holdout_report(flow), runs=5)
    lift = holdout["conversion_lift"]
    say(f"  holdout_report ({fmt_int(holdout['treated']['entrants'])} treated, {fmt_int(holdout['holdout']['entrants'])}"
        f" held out): {dist.describe()}; conversion lift {lift['absolute']:+.4f} [{lift['low']:+.4f}, {lift['high']:+.4f}]")
    RESULTS.add(f"holdout report over {fmt_int(enrolments + held_out)} enrolments", f"median {dist.median * 1e3:.1f} ms")
    say(f"  (messages in the table: {fmt_int(Message.objects.count())})")
