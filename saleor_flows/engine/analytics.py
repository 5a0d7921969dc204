"""Flow analytics: the rollup, the flow report, experiments (A/B splits) and holdout groups.

How the counts are kept
-----------------------
A report over a flow with a million sends must answer in well under a
second, so it never scans messages. Instead:

1. **Deltas, appended by triggers.** PostgreSQL triggers (migration
   ``0009_analytics``) append one ``StatDelta`` row for every countable
   change: a message sent, delivered, opened, clicked…; an enrolment entered
   or finished (with its exit reason); a step reached or finished (with its
   skip reason or branch); an order attributed. Triggers see every writer
   (the engine, a tracking webhook, a bulk import) and only *insert*, so
   parallel sends never queue behind one hot counter row as
   ``UPDATE stat SET n = n + 1`` would make them.
2. **A fold, periodically.** ``fold_deltas`` (the ``saleor_flows.rollup``
   beat task, or ``manage.py flows_rollup``) deletes a batch of deltas and
   adds them, grouped, into ``FlowStat`` — daily counts per (flow, version,
   step, branch, metric, reason, currency) — in one statement per batch.
   ``DELETE … RETURNING`` hands each delta to exactly one fold; an advisory
   lock keeps two folds from deadlocking on the same rollup rows.
3. **Exact reads.** A report reads ``FlowStat`` plus the deltas not folded
   yet, in one SQL statement (one snapshot: a fold committing meanwhile can
   neither hide nor double a delta). Its cost grows with days × steps ×
   metrics and with the short tail since the last fold, not with sends.

Each delta carries its dimensions, looked up by the trigger once per row
change (a few primary-key lookups inside the database): the version number
and the branch, i.e. the latest random split its enrolment went through
before that step ("<split>:<variant>"), or "holdout". So folding is a plain
GROUP BY and the unfolded tail costs a report almost nothing.

Statistics are in ``stats.py``; the meaning of every metric in docs/analytics.md.
"""

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

from django.db import NotSupportedError, connection, transaction

from .. import clock
from ..conf import flows_setting
from ..models import Enrolment, Flow, FlowVersion, SplitWinner
from . import stats
from .definition import version_definition
from .report import graph_order

ROLLUP_LOCK = 0x5F10_0A11  # pg advisory lock id for folds
MESSAGE_METRICS = ["sent", "delivered", "opened", "machine_opened", "clicked", "bounced", "complained",
                   "unsubscribed", "failed"]
ENROLMENT_METRICS = ["entered", "completed", "exited", "converted"]
HOLDOUT = "holdout"
AUTO_WINNER_DEFAULTS = {"metric": "click_rate", "min_per_variant": 500, "probability": 0.9}
RATE_METRICS = {"click_rate": ("clicked", "sent"), "open_rate": ("opened", "sent"),
                "conversion_rate": ("converted", "recipients")}


KEY = "version_number, step_id, branch, day, metric, reason, currency"
DELTA_COLUMNS = "flow_id, version_number, step_id, branch, metric, reason, currency, amount, at"

FOLD_SQL = f"""
WITH d AS (DELETE FROM saleor_flows_statdelta WHERE id BETWEEN %s AND %s RETURNING {DELTA_COLUMNS})
INSERT INTO saleor_flows_flowstat (flow_id, {KEY}, count, amount)
SELECT flow_id, version_number, step_id, branch, (at AT TIME ZONE 'UTC')::date AS day, metric, reason, currency,
       count(*), sum(amount)
  FROM d
 GROUP BY flow_id, {KEY}
ON CONFLICT ON CONSTRAINT flows_stat_key DO UPDATE
   SET count = saleor_flows_flowstat.count + EXCLUDED.count,
       amount = saleor_flows_flowstat.amount + EXCLUDED.amount
"""

REPORT_SQL = f"""
SELECT {KEY}, sum(count)::bigint, sum(amount) FROM (
    SELECT {KEY}, count, amount FROM saleor_flows_flowstat WHERE flow_id = %(flow)s
    UNION ALL
    SELECT version_number, step_id, branch, (at AT TIME ZONE 'UTC')::date, metric, reason, currency, 1, amount
      FROM saleor_flows_statdelta WHERE flow_id = %(flow)s
) t
WHERE (%(version)s::int IS NULL OR version_number = %(version)s::int)
  AND (%(since)s::date IS NULL OR day >= %(since)s::date)
  AND (%(until)s::date IS NULL OR day <= %(until)s::date)
GROUP BY {KEY}
"""


# --- the rollup ------------------------------------------------------------------

def fold_deltas(batch_size: int | None = None) -> int:
    """Move pending deltas into FlowStat, a batch per transaction. Returns how many were folded.

    Returns 0 at once when another fold holds the lock: it is doing the same work.
    """
    batch_size = batch_size or flows_setting("ROLLUP_BATCH_SIZE")
    folded = 0
    while True:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ROLLUP_LOCK])
            if not cursor.fetchone()[0]:
                return folded
            cursor.execute("SELECT min(id), max(id) FROM saleor_flows_statdelta")
            low, high = cursor.fetchone()
            if low is None:
                return folded
            upper = min(high, low + batch_size - 1)
            cursor.execute("SELECT count(*) FROM saleor_flows_statdelta WHERE id BETWEEN %s AND %s", [low, upper])
            folded += cursor.fetchone()[0]
            cursor.execute(FOLD_SQL, [low, upper])
        if upper >= high:
            return folded


def end_expired_holdouts(now=None) -> int:
    """Held-out enrolments end when their conversion window has passed (nothing else would end them)."""
    now = now or clock.now()
    cutoff = now - timedelta(days=flows_setting("CONVERSION_WINDOW_DAYS"))
    return Enrolment.objects.filter(holdout=True, status=Enrolment.Status.ACTIVE, entered_at__lt=cutoff).update(
        status=Enrolment.Status.COMPLETED, exit_reason="holdout_window_ended", finished_at=now)


def rollup() -> dict:
    """The periodic task: fold deltas, end held-out enrolments, let experiments pick winners."""
    ended = end_expired_holdouts()
    if connection.vendor != "postgresql":  # no triggers, no rollup (the SQLite demo)
        return {"folded": 0, "holdouts_ended": ended, "winners": []}
    folded = fold_deltas()
    return {"folded": folded, "holdouts_ended": ended, "winners": decide_winners()}


def rebuild() -> int:
    """Recount everything from the tables (after restoring a backup, or for data from before 0007).

    After pruning (engine/retention.py) the tables hold only the retained period: a rebuild
    would then count only that, and the reports would lose what was pruned.

    One snapshot for the deletion and the replay: changes committed meanwhile
    keep their deltas and are not in the replay, so nothing counts twice.
    """
    own_transaction = not connection.in_atomic_block  # (inside a caller's transaction, its snapshot rules)
    with transaction.atomic(), connection.cursor() as cursor:
        if own_transaction:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])
        cursor.execute("DELETE FROM saleor_flows_flowstat")
        cursor.execute("DELETE FROM saleor_flows_statdelta")
        cursor.execute(_REBUILD_DIMENSIONS_SQL)
        cursor.execute(_REPLAY_SQL)
    return fold_deltas()


# Rebuilding replays the triggers over the existing rows: their logic in set form. The branch of
# every execution (the latest random split of its enrolment before it) is found with one window
# function over all executions instead of one lookup per row.
_REBUILD_DIMENSIONS_SQL = """
CREATE TEMP TABLE flows_rebuild_dims ON COMMIT DROP AS
SELECT x.id, x.enrolment_id, x.step_id, x.state, x.result, x.claimed_at, x.finished_at, en.flow_id,
       v.number AS version_number, coalesce(s.step_id || ':' || (s.result ->> 'variant'), '') AS branch
  FROM (SELECT x.*, max(x.id) FILTER (WHERE x.result ->> 'variant' IS NOT NULL) OVER (
               PARTITION BY x.enrolment_id ORDER BY x.id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS split_id
          FROM saleor_flows_stepexecution x) x
  JOIN saleor_flows_enrolment en ON en.id = x.enrolment_id
  JOIN saleor_flows_flowversion v ON v.id = en.version_id
  LEFT JOIN saleor_flows_stepexecution s ON s.id = x.split_id;
CREATE INDEX ON flows_rebuild_dims (id);
ANALYZE flows_rebuild_dims;
"""

_REPLAY_SQL = f"""
INSERT INTO saleor_flows_statdelta ({DELTA_COLUMNS})
SELECT en.flow_id, v.number, '', CASE WHEN en.holdout THEN 'holdout' ELSE '' END, 'entered', '', '', 0, en.entered_at
  FROM saleor_flows_enrolment en JOIN saleor_flows_flowversion v ON v.id = en.version_id
UNION ALL
SELECT en.flow_id, v.number, '', CASE WHEN en.holdout THEN 'holdout' ELSE coalesce(last.branch, '') END,
       en.status, CASE WHEN en.status = 'exited' THEN en.exit_reason ELSE '' END, '', 0, coalesce(en.finished_at, now())
  FROM saleor_flows_enrolment en JOIN saleor_flows_flowversion v ON v.id = en.version_id
  LEFT JOIN (SELECT DISTINCT ON (enrolment_id) enrolment_id, step_id || ':' || (result ->> 'variant') AS branch
               FROM saleor_flows_stepexecution WHERE result ->> 'variant' IS NOT NULL
              ORDER BY enrolment_id, id DESC) last ON last.enrolment_id = en.id
 WHERE en.status <> 'active'
UNION ALL
SELECT x.flow_id, x.version_number, x.step_id, x.branch, t.metric, t.reason, '', 0, t.at
  FROM flows_rebuild_dims x
 CROSS JOIN LATERAL (VALUES
       ('reached', '', coalesce(x.claimed_at, x.finished_at, now())),
       ('step_' || x.state, left(coalesce(CASE WHEN x.state = 'skipped' THEN x.result ->> 'reason'
                                  ELSE coalesce(x.result ->> 'variant', x.result ->> 'branch') END, ''), 255),
        CASE WHEN x.state IN ('done', 'sent', 'skipped', 'failed', 'ambiguous')
             THEN coalesce(x.finished_at, now()) END)) AS t(metric, reason, at)
 WHERE t.at IS NOT NULL
UNION ALL
SELECT m.flow_id, coalesce(x.version_number, 0), m.step_id, coalesce(x.branch, ''), t.metric,
       CASE WHEN t.metric = 'sent' AND m.kind = 'marketing' THEN coalesce(nullif(m.basis, ''), 'unknown') ELSE '' END,
       '', 0, t.at
  FROM saleor_flows_message m LEFT JOIN flows_rebuild_dims x ON x.id = m.execution_id
 CROSS JOIN LATERAL (VALUES
       ('sent', CASE WHEN m.status = 'sent' THEN coalesce(m.sent_at, m.created_at) END),
       ('delivered', m.delivered_at), ('opened', m.opened_at), ('machine_opened', m.machine_opened_at),
       ('clicked', m.clicked_at), ('bounced', m.bounced_at), ('complained', m.complained_at),
       ('unsubscribed', m.unsubscribed_at), ('failed', m.failed_at)) AS t(metric, at)
 WHERE NOT m.is_test AND m.flow_id IS NOT NULL AND t.at IS NOT NULL
UNION ALL
SELECT a.flow_id, coalesce(x.version_number, 0), a.step_id, coalesce(x.branch, ''), 'order', '', a.currency, a.amount,
       a.ordered_at
  FROM saleor_flows_attribution a LEFT JOIN saleor_flows_message m ON m.id = a.message_id
  LEFT JOIN flows_rebuild_dims x ON x.id = m.execution_id
"""


# --- reading ---------------------------------------------------------------------

def _rows(flow: Flow, version=None, since=None, until=None) -> list[tuple]:
    if connection.vendor != "postgresql":
        raise NotSupportedError("flow reports are counted by PostgreSQL triggers: they need PostgreSQL")
    with connection.cursor() as cursor:
        cursor.execute(REPORT_SQL, {"flow": flow.pk, "version": version, "since": since, "until": until})
        return cursor.fetchall()


def _money(amounts: dict) -> dict:
    return {currency: str(amount.quantize(Decimal("0.01"))) for currency, amount in sorted(amounts.items())}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _message_rates(counts: dict) -> dict:
    sent = counts.get("sent", 0)
    return {
        "delivery_rate": _rate(counts.get("delivered", 0), sent),
        "open_rate": _rate(counts.get("opened", 0), sent),
        "click_rate": _rate(counts.get("clicked", 0), sent),
        "click_to_open_rate": _rate(counts.get("clicked", 0), counts.get("opened", 0)),
        "unsubscribe_rate": _rate(counts.get("unsubscribed", 0), sent),
        "bounce_rate": _rate(counts.get("bounced", 0), sent),
        "complaint_rate": _rate(counts.get("complained", 0), sent),
    }


def _bucket():
    return {"counts": defaultdict(int), "revenue": defaultdict(Decimal)}


def flow_report(flow: Flow, *, version: int | None = None, since: date | None = None,
                until: date | None = None) -> dict:
    """Everything a flow did, from the rollup: totals, per step (funnel), per branch, per day.

    ``version`` narrows to one version number; ``since``/``until`` to days
    (UTC, inclusive) on which things happened. Test sends are never counted;
    held-out contacts are counted apart under ``holdout``. See docs/analytics.md.
    """
    totals, holdout = _bucket(), _bucket()
    exits, skips, sent_by_basis = defaultdict(int), defaultdict(int), defaultdict(int)
    steps = defaultdict(lambda: {"reached": 0, "states": defaultdict(int), "skip_reasons": defaultdict(int),
                                 "branches": defaultdict(int), "messages": defaultdict(int),
                                 "orders": 0, "revenue": defaultdict(Decimal)})
    branches = defaultdict(_bucket)
    days = defaultdict(_bucket)
    definition = _definition(flow, version)
    step_defs = definition.get("steps") or {}
    random_splits = {step_id for step_id, step in step_defs.items() if step.get("type") == "random_split"}

    for version_number, step_id, branch, day, metric, reason, currency, count, amount in _rows(
            flow, version, since, until):
        if branch == HOLDOUT:
            target = [holdout]
        else:
            target = [totals] + ([] if metric.startswith("step_") or metric == "reached" else [days[day]])
            if branch:
                target.append(branches[branch])
        if metric == "order":
            for bucket in target:
                bucket["counts"]["orders"] += count
                bucket["revenue"][currency] += amount
            if step_id:
                steps[step_id]["orders"] += count
                steps[step_id]["revenue"][currency] += amount
            continue
        if metric.startswith("step_") or metric == "reached":
            step = steps[step_id]
            if metric == "reached":
                step["reached"] += count
                continue
            state = metric[len("step_"):]
            step["states"][state] += count
            if state == "skipped":
                step["skip_reasons"][reason or "unknown"] += count
                skips[reason or "unknown"] += count
            elif reason:
                step["branches"][reason] += count
                if state == "done" and step_id in random_splits:
                    branches[f"{step_id}:{reason}"]["counts"]["recipients"] += count
            continue
        for bucket in target:
            bucket["counts"][metric] += count
        if metric == "exited" and branch != HOLDOUT:
            exits[reason or "unknown"] += count
        if metric == "sent" and reason:  # marketing: the consent rule it went out under (0012)
            sent_by_basis[reason] += count
        if metric in MESSAGE_METRICS and step_id:
            steps[step_id]["messages"][metric] += count

    order = graph_order(definition) if step_defs else []
    order += sorted(step_id for step_id in steps if step_id not in step_defs)

    def totals_of(bucket):
        counts = bucket["counts"]
        out = {metric: counts.get(metric, 0) for metric in ENROLMENT_METRICS + MESSAGE_METRICS + ["orders"]}
        out["active"] = max(out["entered"] - out["completed"] - out["exited"] - out["converted"], 0)
        out["revenue"] = _money(bucket["revenue"])
        out["rates"] = {**_message_rates(counts), "conversion_rate": _rate(out["converted"], out["entered"])}
        return out

    result_totals = totals_of(totals)
    result_totals["held_out"] = holdout["counts"].get("entered", 0)
    return {
        "flow": {"id": flow.pk, "slug": flow.slug, "name": flow.name, "status": flow.status},
        "version": version, "since": since, "until": until,
        "totals": result_totals,
        "holdout": {metric: holdout["counts"].get(metric, 0) for metric in ENROLMENT_METRICS + ["orders"]}
        | {"revenue": _money(holdout["revenue"])},
        "exits": dict(exits),
        "skips": dict(skips),
        "sent_by_basis": dict(sent_by_basis),
        "revenue": result_totals["revenue"],
        "steps": [_step_out(step_id, step_defs.get(step_id) or {}, steps[step_id]) for step_id in order],
        "branches": {label: _branch_out(bucket) for label, bucket in sorted(branches.items())},
        "days": [{"day": day, **{k: v for k, v in bucket["counts"].items()}, "revenue": _money(bucket["revenue"])}
                 for day, bucket in sorted(days.items())],
    }


def _definition(flow: Flow, version: int | None) -> dict:
    if version is not None:
        row = FlowVersion.objects.filter(flow=flow, number=version).values_list("id", flat=True).first()
        return version_definition(row) if row else {}
    if flow.live_version_id:
        return version_definition(flow.live_version_id)
    return flow.definition or {}


def _step_out(step_id: str, step_def: dict, step: dict) -> dict:
    return {
        "id": step_id, "type": step_def.get("type", "unknown"), "reached": step["reached"],
        "states": dict(step["states"]), "skip_reasons": dict(step["skip_reasons"]),
        "branches": dict(step["branches"]), "messages": dict(step["messages"]),
        "rates": _message_rates(step["messages"]), "orders": step["orders"], "revenue": _money(step["revenue"]),
    }


def _branch_out(bucket) -> dict:
    counts = bucket["counts"]
    out = {metric: counts.get(metric, 0) for metric in ["recipients"] + MESSAGE_METRICS + ["converted", "orders"]}
    out["revenue"] = _money(bucket["revenue"])
    out["rates"] = {**_message_rates(counts), "conversion_rate": _rate(out["converted"], out["recipients"])}
    return out


# --- experiments -----------------------------------------------------------------

def auto_winner_rule(step: dict) -> dict | None:
    """The split's automatic-winner rule with defaults filled in, or None when it has none."""
    rule = step.get("auto_winner")
    if not rule:
        return None
    return {**AUTO_WINNER_DEFAULTS, **(rule if isinstance(rule, dict) else {})}


def split_report(flow: Flow, step_id: str, *, version: int | None = None) -> dict:
    """Each variant of a random split: counts, rates, and the posterior probability that it is best.

    Probabilities are given for click, open and conversion rate (see
    ``stats.prob_best``); ``winner`` is the variant chosen automatically, if any.
    """
    definition = _definition(flow, version)
    step = (definition.get("steps") or {}).get(step_id)
    if not step or step.get("type") != "random_split":
        raise ValueError(f"{step_id!r} is not a random split of flow {flow.slug!r}")
    report = flow_report(flow, version=version)
    variants = []
    for variant in step["variants"]:
        data = report["branches"].get(f"{step_id}:{variant['name']}") or _branch_out(_bucket())
        variants.append({"name": variant["name"], "weight": variant["weight"], **data})
    for metric, (part, whole) in RATE_METRICS.items():
        probabilities = stats.prob_best([(v[part], v[whole]) for v in variants])
        for variant, probability in zip(variants, probabilities):
            variant.setdefault("probability_best", {})[metric] = probability
    version_id = _version_id(flow, version)
    winner = SplitWinner.objects.filter(version_id=version_id, step_id=step_id).first() if version_id else None
    return {
        "flow": flow.slug, "step_id": step_id, "version": version, "auto_winner": auto_winner_rule(step),
        "variants": variants,
        "winner": {"variant": winner.variant, "metric": winner.metric, "probability": winner.probability,
                   "decided_at": winner.decided_at} if winner else None,
    }


def _version_id(flow: Flow, version: int | None) -> int | None:
    if version is None:
        return flow.live_version_id
    return FlowVersion.objects.filter(flow=flow, number=version).values_list("id", flat=True).first()


def choose_winner(report: dict) -> tuple[str, float] | None:
    """(variant, probability) when the split's rule is met: enough recipients in every variant, a clear best."""
    rule = report["auto_winner"]
    if not rule or report["winner"]:
        return None
    variants = report["variants"]
    if any(v["recipients"] < rule["min_per_variant"] for v in variants):
        return None
    best = max(variants, key=lambda v: v["probability_best"][rule["metric"]])
    probability = best["probability_best"][rule["metric"]]
    return (best["name"], probability) if probability >= rule["probability"] else None


def decide_winners() -> list[dict]:
    """Record a winner for every live split whose rule is met (run by the rollup task)."""
    decided = []
    for flow in Flow.objects.filter(status=Flow.Status.LIVE, live_version__isnull=False):
        definition = version_definition(flow.live_version_id)
        for step_id, step in (definition.get("steps") or {}).items():
            if step.get("type") != "random_split" or not auto_winner_rule(step):
                continue
            if SplitWinner.objects.filter(version_id=flow.live_version_id, step_id=step_id).exists():
                continue
            report = split_report(flow, step_id, version=None)
            choice = choose_winner(report)
            if choice:
                SplitWinner.objects.get_or_create(
                    version_id=flow.live_version_id, step_id=step_id,
                    defaults={"variant": choice[0], "probability": choice[1], "metric": report["auto_winner"]["metric"],
                              "decided_at": clock.now()})
                decided.append({"flow": flow.slug, "step_id": step_id, "variant": choice[0],
                                "probability": choice[1]})
    return decided


def split_winner(version_id: int, step_id: str) -> str | None:
    """The variant every new contact takes at this split, once an experiment has decided."""
    return SplitWinner.objects.filter(version_id=version_id, step_id=step_id).values_list(
        "variant", flat=True).first()


# --- holdout -----------------------------------------------------------------------

HOLDOUT_SQL = """
SELECT e.holdout, count(*), count(*) FILTER (WHERE e.status = 'converted' OR c.enrolment_id IS NOT NULL)
  FROM saleor_flows_enrolment e
  LEFT JOIN (SELECT DISTINCT enrolment_id FROM saleor_flows_conversion) c ON c.enrolment_id = e.id
 WHERE e.flow_id = %s AND e.version_id = ANY(%s)
 GROUP BY e.holdout
"""

HOLDOUT_REVENUE_SQL = """
SELECT e.holdout, r.currency, sum(r.total), sum(r.total * r.total)
  FROM saleor_flows_enrolment e
  JOIN (SELECT enrolment_id, currency, sum(amount) AS total FROM saleor_flows_conversion
         GROUP BY enrolment_id, currency) r ON r.enrolment_id = e.id
 WHERE e.flow_id = %s AND e.version_id = ANY(%s)
 GROUP BY e.holdout, r.currency
"""


def holdout_report(flow: Flow) -> dict:
    """Conversion and revenue per entrant, treated against held out, with lifts and 95 % intervals.

    Only versions that had a holdout count (otherwise the groups were not
    drawn from the same entrants). A contact converted when the flow's goal
    was reached or they ordered within ``CONVERSION_WINDOW_DAYS`` of entering.
    Conversion lift: Newcombe's hybrid score interval; revenue per entrant:
    Welch's normal approximation, per currency; the relative lifts divide by
    the holdout's value (their intervals likewise, ignoring its own noise).
    """
    versions = {pk: (definition.get("holdout_percent") or 0) for pk, definition in
                FlowVersion.objects.filter(flow=flow).values_list("id", "definition")}
    version_ids = [pk for pk, percent in versions.items() if percent]
    groups = {True: {"entrants": 0, "converted": 0}, False: {"entrants": 0, "converted": 0}}
    revenue = defaultdict(lambda: {True: (0.0, 0.0), False: (0.0, 0.0)})
    with connection.cursor() as cursor:
        cursor.execute(HOLDOUT_SQL, [flow.pk, version_ids])
        for held, entrants, converted in cursor.fetchall():
            groups[held] = {"entrants": entrants, "converted": converted}
        cursor.execute(HOLDOUT_REVENUE_SQL, [flow.pk, version_ids])
        for held, currency, total, sumsq in cursor.fetchall():
            revenue[currency][held] = (float(total), float(sumsq))
    treated, held_out = groups[False], groups[True]

    def group_out(group, held):
        n = group["entrants"]
        return {"entrants": n, "converted": group["converted"], "conversion_rate": _rate(group["converted"], n),
                "revenue": {c: {"total": round(r[held][0], 2), "per_entrant": _rate(r[held][0], n)}
                            for c, r in sorted(revenue.items())}}

    conversion = stats.proportion_difference(treated["converted"], treated["entrants"],
                                             held_out["converted"], held_out["entrants"])
    revenue_lift = {}
    for currency, sums in sorted(revenue.items()):
        lift = stats.mean_difference(treated["entrants"], *sums[False], held_out["entrants"], *sums[True])
        base = _rate(sums[True][0], held_out["entrants"])
        revenue_lift[currency] = _with_relative(lift, base)
    live = versions.get(flow.live_version_id, 0)
    return {
        "flow": flow.slug, "holdout_percent": live, "versions": sorted(version_ids),
        "treated": group_out(treated, False), "holdout": group_out(held_out, True),
        "conversion_lift": _with_relative(conversion, _rate(held_out["converted"], held_out["entrants"])),
        "revenue_lift": revenue_lift,
        "method": "conversion: Newcombe hybrid score interval; revenue per entrant: Welch normal approximation; 95 %",
    }


def _with_relative(lift: dict, base: float | None) -> dict:
    out = {"absolute": lift["difference"], "low": lift["low"], "high": lift["high"]}
    if base:
        out |= {"relative": lift["difference"] / base, "relative_low": lift["low"] / base,
                "relative_high": lift["high"] / base}
    else:
        out |= {"relative": None, "relative_low": None, "relative_high": None}
    return out
