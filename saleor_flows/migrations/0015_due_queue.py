"""The sweep's queue (``DueExecution``): one narrow row per pending execution, kept by triggers.

Why a queue table: claiming on the execution rows themselves rewrote each wide row
(``state`` sits in the predicates of three partial indexes, so the update is never HOT)
and inserted new entries into every index of the table; the claim grew with the backlog
(docs/performance.md, *Session 5: the claim on a narrow due queue*). The sweep now moves
a claimed row's ``due_at`` on by the lease in this 16-byte table instead.

Why triggers: every path that makes an execution pending, moves its ``due_at`` or
ends it (scheduling, retries, holds, pauses, event waits, cancellation, the lease
repair, deletes) keeps the queue without knowing about it.

* INSERT: one statement-level trigger over the inserted rows (the engine inserts
  steps in batches).
* UPDATE OF state, due_at: a row trigger whose WHEN clause (checked without calling
  PL/pgSQL) lets only the changes that matter through: into or out of pending, or a
  pending row's new due time.
* DELETE of a pending row: its queue row goes too.

``leased`` marks the rows a sweep has leased (``sweep.claim_due``); a new due time clears it.
Its partial index holds only the leases, so the sweep counts the running ones cheaply.

Autovacuum visits the queue after every 10,000 dead rows, not 20 % of it: the claim reads
the front of the ``due_at`` index, where the claimed rows' dead versions are.

The analytics trigger (0009) also gets a WHEN clause on UPDATE, so the state changes it
does not count (``pending -> claimed -> sending``) no longer call PL/pgSQL per row; its
function is unchanged.

The backfill is safe on a large table: the triggers exist (and are committed) before
it starts, so rows changing meanwhile keep the queue themselves; it runs in batches of
``BACKFILL_BATCH`` in their own transactions, each locking its pending rows FOR SHARE, so a
row that leaves pending while it is copied is either waited for (and then not copied) or
copied and then removed by its own trigger; ``ON CONFLICT DO NOTHING`` keeps the row a
trigger wrote. PostgreSQL only: the demo's SQLite claims on the execution rows.
"""

from django.db import migrations, models, transaction  # noqa: F401

FINISHED = "('done', 'sent', 'skipped', 'failed', 'ambiguous')"

TRIGGERS_SQL = f"""
-- Every claim leaves ~2 dead versions per row here (the lease, then the take's delete) at the front of the
-- due_at index, where the next claim starts reading: vacuum this narrow table after every ~10,000 of them,
-- whatever its size (by default it waits for a fifth of the table: 200,000 at a backlog of 1,000,000).
ALTER TABLE saleor_flows_dueexecution SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000);

CREATE FUNCTION saleor_flows_due_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO saleor_flows_dueexecution (execution_id, due_at)
    SELECT id, due_at FROM inserted_rows WHERE state = 'pending';
    RETURN NULL;
END $$;
CREATE TRIGGER saleor_flows_due_inserted AFTER INSERT ON saleor_flows_stepexecution
    REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION saleor_flows_due_inserted();

CREATE FUNCTION saleor_flows_due_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.state = 'pending' THEN
        INSERT INTO saleor_flows_dueexecution (execution_id, due_at) VALUES (NEW.id, NEW.due_at)
        ON CONFLICT (execution_id) DO UPDATE SET due_at = EXCLUDED.due_at, leased = false;  -- a new due time voids a lease
    ELSE
        DELETE FROM saleor_flows_dueexecution WHERE execution_id = OLD.id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER saleor_flows_due_updated AFTER UPDATE OF state, due_at ON saleor_flows_stepexecution
    FOR EACH ROW WHEN ((OLD.state = 'pending') <> (NEW.state = 'pending')
                       OR (NEW.state = 'pending' AND OLD.due_at IS DISTINCT FROM NEW.due_at))
    EXECUTE FUNCTION saleor_flows_due_changed();
CREATE TRIGGER saleor_flows_due_deleted AFTER DELETE ON saleor_flows_stepexecution
    FOR EACH ROW WHEN (OLD.state = 'pending') EXECUTE FUNCTION saleor_flows_due_changed();

DROP TRIGGER saleor_flows_execution_delta ON saleor_flows_stepexecution;
CREATE TRIGGER saleor_flows_execution_delta AFTER INSERT ON saleor_flows_stepexecution
    FOR EACH ROW EXECUTE FUNCTION saleor_flows_execution_delta();
CREATE TRIGGER saleor_flows_execution_finished AFTER UPDATE OF state ON saleor_flows_stepexecution
    FOR EACH ROW WHEN (NEW.state IN {FINISHED} AND OLD.state NOT IN {FINISHED})
    EXECUTE FUNCTION saleor_flows_execution_delta();
"""

DROP_TRIGGERS_SQL = """
DROP TRIGGER IF EXISTS saleor_flows_due_inserted ON saleor_flows_stepexecution;
DROP TRIGGER IF EXISTS saleor_flows_due_updated ON saleor_flows_stepexecution;
DROP TRIGGER IF EXISTS saleor_flows_due_deleted ON saleor_flows_stepexecution;
DROP FUNCTION IF EXISTS saleor_flows_due_inserted();
DROP FUNCTION IF EXISTS saleor_flows_due_changed();
DROP TRIGGER IF EXISTS saleor_flows_execution_finished ON saleor_flows_stepexecution;
DROP TRIGGER IF EXISTS saleor_flows_execution_delta ON saleor_flows_stepexecution;
CREATE TRIGGER saleor_flows_execution_delta AFTER INSERT OR UPDATE OF state ON saleor_flows_stepexecution
    FOR EACH ROW EXECUTE FUNCTION saleor_flows_execution_delta();
"""

def create_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute(TRIGGERS_SQL)


def drop_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute(DROP_TRIGGERS_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ('saleor_flows', '0014_app_removed'),
    ]

    operations = [
        migrations.CreateModel(
            name='DueExecution',
            fields=[
                ('execution_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('due_at', models.DateTimeField()),
                ('leased', models.BooleanField(db_default=False, default=False)),
            ],
            options={
                'indexes': [models.Index(fields=['due_at'], name='flows_due_at'),
                            models.Index(condition=models.Q(('leased', True)), fields=['due_at'],
                                         name='flows_due_leased')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
