"""Each marketing message records the consent rule that let it out (``basis``) and whether it went
out under the high-intent cap (``high_intent``); the message trigger counts ``sent`` by basis.

The trigger is 0009's with one change: the ``sent`` delta's ``reason`` is the basis (``unknown``
for a marketing message without one, "" for other kinds), so the flow report can say how many
sends relied on soft opt-in or opt-out (engine/analytics.py).
"""

import importlib

from django.db import migrations, models

analytics_0009 = importlib.import_module("saleor_flows.migrations.0009_analytics")


def message_trigger(sent_reason: str) -> str:
    """0009's message trigger function, the ``sent`` delta's reason given as SQL."""
    first = "\n    ".join(analytics_0009._first(m, m + "_at") for m in analytics_0009.MESSAGE_METRICS)
    return f"""
CREATE OR REPLACE FUNCTION saleor_flows_message_delta() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    metrics text[] := '{{}}';
    ats timestamptz[] := '{{}}';
    dims record;
BEGIN
    IF NEW.is_test OR NEW.flow_id IS NULL THEN RETURN NULL; END IF;
    IF NEW.status = 'sent' AND (TG_OP = 'INSERT' OR OLD.status <> 'sent') THEN
        metrics := metrics || 'sent'::text; ats := ats || coalesce(NEW.sent_at, now());
    END IF;
    {first}
    IF cardinality(metrics) = 0 THEN RETURN NULL; END IF;
    dims := saleor_flows_dimensions_of(NEW.execution_id);
    INSERT INTO saleor_flows_statdelta (flow_id, version_number, step_id, branch, metric, reason, currency, amount, at)
    SELECT NEW.flow_id, dims.version_number, NEW.step_id, dims.branch, u.metric,
           CASE WHEN u.metric = 'sent' THEN {sent_reason} ELSE '' END, '', 0, u.at
      FROM unnest(metrics, ats) AS u(metric, at);
    RETURN NULL;
END $$;
"""


SENT_BY_BASIS = message_trigger(
    "CASE WHEN NEW.kind = 'marketing' THEN coalesce(nullif(NEW.basis, ''), 'unknown') ELSE '' END")
SENT_WITHOUT_REASON = message_trigger("''")

# Reminders of the last week (older ones are outside any cap), by their step's "frequency_cap", else
# their flow's, in any published version: the high-intent cap counts them right after the upgrade.
BACKFILL_HIGH_INTENT = """
UPDATE saleor_flows_message m SET high_intent = true
 WHERE m.kind = 'marketing' AND m.created_at > now() - interval '7 days' AND EXISTS (
       SELECT 1 FROM saleor_flows_flowversion v WHERE v.flow_id = m.flow_id
          AND coalesce(v.definition -> 'steps' -> m.step_id ->> 'frequency_cap',
                       v.definition ->> 'frequency_cap') = 'high_intent')
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # the triggers exist on PostgreSQL only (0009)
        schema_editor.execute(SENT_BY_BASIS)
        schema_editor.execute(BACKFILL_HIGH_INTENT)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(SENT_WITHOUT_REASON)


class Migration(migrations.Migration):

    dependencies = [
        ('saleor_flows', '0011_retention'),
    ]

    operations = [
        migrations.AddField(
            model_name='message',
            name='basis',
            field=models.CharField(blank=True, default='', max_length=16),
        ),
        migrations.AddField(
            model_name='message',
            name='high_intent',
            field=models.BooleanField(default=False),
        ),
        migrations.RunPython(forwards, backwards),
    ]
