from django.db import migrations, models


class Migration(migrations.Migration):
    """App mode: an uninstalled App (or a refused token) holds all sending until it is installed again."""

    dependencies = [
        ('saleor_flows', '0011_retention'),
    ]

    operations = [
        migrations.AddField(
            model_name='saleorappinstallation',
            name='removed_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='saleorappinstallation',
            name='removed_reason',
            field=models.CharField(blank=True, default='', max_length=200),
        ),
    ]
