"""Data lifecycle: old rows are pruned in small batches, and what reports, attribution and rules need stays.

Every table the engine appends to would otherwise grow forever. ``prune()``
(the nightly ``saleor_flows.prune`` beat task, or ``manage.py flows_prune``)
deletes, per table, rows older than its ``RETENTION_*`` setting, walking the
primary key in windows of ``RETENTION_BATCH_SIZE`` ids, one short transaction
per window (``lock_timeout`` 5 s): no long lock, no table scan held open.
The first young id is found by a binary search on the primary key, so no
extra index on the time columns is needed (ids grow with time; a late row
that is out of order is simply pruned by a later run).

What must survive, and how (docs/retention.md has the full list):

* **Reports**: the rollup (``FlowStat``) is folded first (``analytics.fold_deltas``);
  deleting rows writes no deltas (the triggers count inserts and updates only),
  so a flow report gives the same numbers before and after. ``Attribution``
  rows are never pruned. Versions with a holdout group keep their
  enrolments and conversions (the holdout report reads them).
* **Attribution**: messages and message events younger than the attribution
  windows are never pruned, whatever the settings say.
* **Conversions**: an enrolment is pruned only after its conversion window.
* **Dedupe**: a pruned processed event leaves 16 bytes of the SHA-256 of its dedupe
  key (``PrunedEventKey``) for ``RETENTION_DEDUPE_DAYS``; processing a
  re-delivered copy dead-letters it as a duplicate instead of enrolling again.
* **Re-entry**: a pruned enrolment leaves one ``PastEntry`` per (flow, contact)
  with the latest entry time, which "once" and "once per period" consult.
* Pending events, running journeys, waiting idle timers, open stock alerts, consent changes and
  suppressions are never pruned.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import connection, transaction

from .. import clock
from ..conf import flows_setting
from ..db import any_of
from ..models import PrunedEventKey
from .analytics import fold_deltas

T = "saleor_flows_"  # table prefix
LOCK_TIMEOUT = "5s"
# Enrolments take their executions, trail and conversions with them (about 15 rows each in a
# typical journey), messages their events: their windows are smaller so a transaction stays small.
WINDOW_DIVISOR = {"enrolment": 10, "message": 2, "event": 1}


def key_digest(dedupe_key: str) -> bytes:
    """What is kept of a pruned event's dedupe key: 128 bits of its SHA-256 (as the pruner computes it in SQL)."""
    return hashlib.sha256(dedupe_key.encode()).digest()[:16]


def pruned_duplicates(dedupe_keys: list[str]) -> set[str]:
    """Those of these keys that belong to events already processed and since pruned (re-deliveries)."""
    digests = {key_digest(key): key for key in dedupe_keys}
    if not digests:
        return set()
    return {digests[bytes(digest)] for digest in PrunedEventKey.objects.filter(
        any_of("digest", digests)).values_list("digest", flat=True)}


@dataclass
class PruneReport:
    dry_run: bool = False
    folded: int = 0  # stat deltas folded into the rollup (and so deleted) first
    deleted: dict = field(default_factory=dict)  # table -> rows deleted (or, dry run, that would be)
    transactions: int = 0
    largest_transaction: int = 0  # rows deleted by the biggest single transaction, all tables together
    kept: dict = field(default_factory=dict)  # compact rows written: past entries, dedupe digests

    def add(self, counts: dict, kept: dict):
        self.transactions += 1
        self.largest_transaction = max(self.largest_transaction, sum(counts.values()))
        for table, rows in counts.items():
            self.deleted[table] = self.deleted.get(table, 0) + rows
        for table, rows in kept.items():
            self.kept[table] = self.kept.get(table, 0) + rows


def _cutoff(now, setting: str, at_least_days: float = 0):
    days = flows_setting(setting)
    if days is None:
        return None
    return now - timedelta(days=max(float(days), at_least_days))


def _first_young_id(cursor, table: str, time_column: str, cutoff) -> int:
    """The smallest id whose row is not older than ``cutoff`` (ids grow with time): a binary search on the key."""
    cursor.execute(f"SELECT min(id), max(id) FROM {T}{table}")
    low, high = cursor.fetchone()
    if low is None:
        return 0
    high += 1  # "every row is old"
    while low < high:
        middle = (low + high) // 2
        cursor.execute(f"SELECT id, {time_column} FROM {T}{table} WHERE id >= %s ORDER BY id LIMIT 1", [middle])
        row_id, at = cursor.fetchone()
        if at < cutoff:
            low = row_id + 1
        else:
            high = middle
    return low


def _windows(table: str, time_column: str, cutoff, size: int):
    """(low, high) id windows of at most ``size`` ids over the old rows, skipping gaps left by earlier runs."""
    with connection.cursor() as cursor:
        boundary = _first_young_id(cursor, table, time_column, cutoff)
        cursor.execute(f"SELECT min(id) FROM {T}{table}")
        low = cursor.fetchone()[0]
        while low is not None and low < boundary:
            high = min(low + size - 1, boundary - 1)
            yield low, high
            cursor.execute(f"SELECT min(id) FROM {T}{table} WHERE id > %s", [high])
            low = cursor.fetchone()[0]


def _in_batches(report: PruneReport, table: str, time_column: str, cutoff, work):
    """Run ``work(cursor, low, high) -> (deleted, kept)`` once per window, each in its own short transaction."""
    if cutoff is None:
        return
    size = max(1, flows_setting("RETENTION_BATCH_SIZE") // WINDOW_DIVISOR.get(table, 1))
    report.deleted.setdefault(table, 0)
    for low, high in _windows(table, time_column, cutoff, size):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            deleted, kept = work(cursor, low, high)
            if report.dry_run:
                transaction.set_rollback(True)
        report.add(deleted, kept)


def _simple(table: str, time_column: str, cutoff, condition: str = "TRUE"):
    """Work for a table nothing references: one DELETE per window."""
    def work(cursor, low, high):
        cursor.execute(f"DELETE FROM {T}{table} t WHERE id BETWEEN %s AND %s AND {time_column} < %s AND {condition}",
                       [low, high, cutoff])
        return {table: cursor.rowcount}, {}
    return work


def _ids(cursor, sql: str, params: list, lock: str = "") -> list[int]:
    """Ids to delete, locked (rows another transaction holds are left for a later run)."""
    cursor.execute(sql + f" FOR UPDATE {lock} SKIP LOCKED", params)
    return [row[0] for row in cursor.fetchall()]


def _enrolments(cutoff, conversion_cutoff):
    """Finished enrolments past their retention and conversion window, with everything hanging off them."""
    def work(cursor, low, high):
        ids = _ids(cursor, f"""
            SELECT e.id FROM {T}enrolment e JOIN {T}flowversion v ON v.id = e.version_id
             WHERE e.id BETWEEN %s AND %s AND e.status <> 'active' AND e.finished_at < %s AND e.entered_at < %s
               AND NOT CASE WHEN jsonb_typeof(v.definition -> 'holdout_percent') = 'number'
                            THEN (v.definition ->> 'holdout_percent')::numeric > 0 ELSE false END""",
                   [low, high, cutoff, conversion_cutoff], lock="OF e")
        if not ids:
            return {}, {}
        cursor.execute(f"""
            INSERT INTO {T}pastentry (flow_id, contact_id, last_entered_at)
            SELECT flow_id, contact_id, max(entered_at) FROM {T}enrolment WHERE id = ANY(%s) GROUP BY 1, 2
            ON CONFLICT (flow_id, contact_id) DO UPDATE
               SET last_entered_at = greatest({T}pastentry.last_entered_at, EXCLUDED.last_entered_at)""", [ids])
        kept = {"pastentry": cursor.rowcount}
        deleted = {}
        cursor.execute(f"UPDATE {T}message SET execution_id = NULL WHERE execution_id IN "
                       f"(SELECT id FROM {T}stepexecution WHERE enrolment_id = ANY(%s))", [ids])
        for table in ["stepexecution", "trailentry", "conversion"]:
            cursor.execute(f"DELETE FROM {T}{table} WHERE enrolment_id = ANY(%s)", [ids])
            deleted[table] = cursor.rowcount
        cursor.execute(f"DELETE FROM {T}enrolment WHERE id = ANY(%s)", [ids])
        deleted["enrolment"] = cursor.rowcount
        return deleted, kept
    return work


def _messages(cutoff):
    def work(cursor, low, high):
        ids = _ids(cursor, f"SELECT id FROM {T}message WHERE id BETWEEN %s AND %s AND created_at < %s "
                           "AND status <> 'sending'", [low, high, cutoff])
        if not ids:
            return {}, {}
        cursor.execute(f"UPDATE {T}attribution SET message_id = NULL WHERE message_id = ANY(%s)", [ids])
        cursor.execute(f"DELETE FROM {T}messageevent WHERE message_id = ANY(%s)", [ids])
        events = cursor.rowcount
        cursor.execute(f"DELETE FROM {T}message WHERE id = ANY(%s)", [ids])
        return {"message": cursor.rowcount, "messageevent": events}, {}
    return work


def _events(processed_cutoff, dead_cutoff, dedupe_cutoff):
    """Processed and dead-lettered events no kept enrolment started; processed ones leave their key's digest."""
    far_past = clock.now() - timedelta(days=365 * 1000)

    def work(cursor, low, high):
        ids = _ids(cursor, f"""
            SELECT id FROM {T}event e
             WHERE id BETWEEN %s AND %s
               AND status IN ('processed', 'dead') AND coalesce(processed_at, received_at) < CASE status
                   WHEN 'processed' THEN %s::timestamptz ELSE %s::timestamptz END
               AND NOT EXISTS (SELECT 1 FROM {T}enrolment en WHERE en.trigger_event_id = e.id)""",
                   [low, high, processed_cutoff or far_past, dead_cutoff or far_past])
        if not ids:
            return {}, {}
        cursor.execute(f"""
            INSERT INTO {T}prunedeventkey (digest, received_at)
            SELECT substring(sha256(convert_to(dedupe_key, 'UTF8')) FROM 1 FOR 16), received_at FROM {T}event
             WHERE id = ANY(%s) AND status = 'processed' AND dedupe_key NOT LIKE 'auto:%%'
               AND (%s::timestamptz IS NULL OR received_at >= %s::timestamptz)
            ON CONFLICT (digest) DO NOTHING""", [ids, dedupe_cutoff, dedupe_cutoff])
        kept = {"prunedeventkey": cursor.rowcount}
        cursor.execute(f"UPDATE {T}attribution SET event_id = NULL WHERE event_id = ANY(%s)", [ids])
        cursor.execute(f"DELETE FROM {T}event WHERE id = ANY(%s)", [ids])
        return {"event": cursor.rowcount}, kept
    return work


def prune(*, dry_run: bool = False, now=None) -> PruneReport:
    """Delete what the retention settings let go, table by table, in small transactions.

    ``dry_run`` does the same work batch by batch and rolls every batch back
    (exact counts, nothing deleted; events whose enrolments would go first are
    only counted by a real run). The rollup is folded first, not in a dry run.
    """
    now = now or clock.now()
    report = PruneReport(dry_run=dry_run)
    if connection.vendor != "postgresql":  # PostgreSQL statements; the SQLite demo keeps everything
        return report
    if not dry_run:
        report.folded = fold_deltas()
    # Clicks and opens that can still earn an order its credit are kept, whatever the settings say.
    attribution_days = max(flows_setting("ATTRIBUTION_WINDOW_DAYS"),
                           (flows_setting("ATTRIBUTION_OPEN_WINDOW_HOURS") or 0) / 24) + 1
    conversion_cutoff = now - timedelta(days=flows_setting("CONVERSION_WINDOW_DAYS") + 1)

    _in_batches(report, "simulation", "created_at", _cutoff(now, "RETENTION_SIMULATION_DAYS"),
                _simple("simulation", "created_at", _cutoff(now, "RETENTION_SIMULATION_DAYS"),
                        "status IN ('done', 'failed')"))
    trail_cutoff = _cutoff(now, "RETENTION_TRAIL_DAYS")
    _in_batches(report, "trailentry", "at", trail_cutoff, _simple("trailentry", "at", trail_cutoff, (
        f"(enrolment_id IS NULL OR NOT EXISTS (SELECT 1 FROM {T}enrolment en "
        "WHERE en.id = t.enrolment_id AND en.status = 'active'))")))
    enrolment_cutoff = _cutoff(now, "RETENTION_ENROLMENT_DAYS")
    _in_batches(report, "enrolment", "entered_at", enrolment_cutoff, _enrolments(enrolment_cutoff, conversion_cutoff))
    event_cutoff = _cutoff(now, "RETENTION_MESSAGE_EVENT_DAYS", attribution_days)
    _in_batches(report, "messageevent", "received_at", event_cutoff,
                _simple("messageevent", "received_at", event_cutoff))
    message_cutoff = _cutoff(now, "RETENTION_MESSAGE_DAYS", attribution_days)
    _in_batches(report, "message", "created_at", message_cutoff, _messages(message_cutoff))
    processed, dead = _cutoff(now, "RETENTION_EVENT_DAYS"), _cutoff(now, "RETENTION_DEAD_EVENT_DAYS")
    dedupe = _cutoff(now, "RETENTION_DEDUPE_DAYS")
    latest = max((c for c in (processed, dead) if c is not None), default=None)
    _in_batches(report, "event", "received_at", latest, _events(processed, dead, dedupe))
    _in_batches(report, "prunedeventkey", "received_at", dedupe, _simple("prunedeventkey", "received_at", dedupe))
    # Derived-event state that is spent: a checkout timer that fired or was cancelled (one row per
    # checkout that ever had lines), a stock alert already sent. A late copy of the activity that armed
    # a timer is a duplicate event, so nothing re-arms it; a new activity arms a fresh one as before.
    # Waiting timers and open alerts are never pruned.
    _in_batches(report, "idletimer", "last_activity_at", processed,
                _simple("idletimer", "last_activity_at", processed, "state IN ('fired', 'cancelled')"))
    _in_batches(report, "stockalert", "created_at", processed,
                _simple("stockalert", "created_at", processed, "notified_at IS NOT NULL"))
    return report
