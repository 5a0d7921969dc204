"""The due queue's backfill (see 0015_due_queue): every pending execution into the queue, in batches.

A migration of its own, not atomic, after the one that creates the table and its triggers: those
are committed before the first row is copied (rows changing meanwhile keep the queue themselves),
each batch commits on its own, and a backfill interrupted half-way (a deploy killed, a timeout)
is simply run again by the next ``migrate``: ``ON CONFLICT DO NOTHING`` keeps the rows already
copied. Each batch locks its pending rows FOR SHARE, so a row that leaves pending while it is
copied is either waited for (and then not copied) or copied and then removed by its own trigger.
PostgreSQL only: the demo's SQLite claims on the execution rows.
"""

from django.db import migrations, transaction

BACKFILL_BATCH = 10_000

BACKFILL_SQL = """
WITH batch AS (
    SELECT id, due_at FROM saleor_flows_stepexecution
    WHERE id > %s AND state = 'pending' ORDER BY id LIMIT %s FOR SHARE
), copied AS (
    INSERT INTO saleor_flows_dueexecution (execution_id, due_at) SELECT id, due_at FROM batch
    ON CONFLICT (execution_id) DO NOTHING
)
SELECT max(id) FROM batch
"""


def backfill(apps, schema_editor):
    backfill_queue(schema_editor.connection)


def backfill_queue(connection, batch=BACKFILL_BATCH) -> None:
    """Every pending execution into the queue, batch by batch (see the module docstring).

    Also used by bench/claim.py, whose set-based fill bypasses the triggers.
    """
    if connection.vendor != "postgresql":
        return
    last = 0
    while last is not None:
        with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
            cursor.execute(BACKFILL_SQL, [last, batch])
            last = cursor.fetchone()[0]


class Migration(migrations.Migration):
    atomic = False  # each batch commits on its own (see the module docstring)

    dependencies = [
        ('saleor_flows', '0015_due_queue'),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
