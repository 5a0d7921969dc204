"""Drop ``flows_execution_due`` (pending executions by due time).

The sweep claims from the narrow due queue since 0015 and no PostgreSQL query reads pending
executions by due time any more, so the index only added a write to every execution inserted
and to every change into or out of ``pending``. The demo's SQLite, which still claims on the
execution rows, scans its few thousand rows instead.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('saleor_flows', '0016_due_queue_backfill'),
    ]

    operations = [
        migrations.RemoveIndex(model_name='stepexecution', name='flows_execution_due'),
    ]
