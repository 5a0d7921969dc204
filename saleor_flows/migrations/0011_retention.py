import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('saleor_flows', '0010_dashboard_app'),
    ]

    operations = [
        migrations.CreateModel(
            name='PrunedEventKey',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('digest', models.BinaryField(max_length=16, unique=True)),
                ('received_at', models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name='PastEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('last_entered_at', models.DateTimeField()),
                ('contact', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='saleor_flows.contact')),
                ('flow', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='saleor_flows.flow')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('flow', 'contact'), name='flows_past_entry_once')],
            },
        ),
    ]
