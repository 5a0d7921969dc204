from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('saleor_flows', '0012_message_basis'),
    ]

    operations = [
        migrations.CreateModel(
            name='ProductAffinity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('product_id', models.CharField(max_length=100)),
                ('other_id', models.CharField(max_length=100)),
                ('orders', models.PositiveIntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('product_id', 'other_id'), name='flows_affinity_pair')],
            },
        ),
        migrations.CreateModel(
            name='ProductSales',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('channel', models.CharField(blank=True, max_length=100)),
                ('product_id', models.CharField(max_length=100)),
                ('orders', models.PositiveIntegerField(default=0)),
                ('last_ordered_at', models.DateTimeField()),
            ],
            options={
                'indexes': [models.Index(fields=['channel', '-orders'], name='flows_sales_best')],
                'constraints': [models.UniqueConstraint(fields=('channel', 'product_id'), name='flows_sales_product')],
            },
        ),
    ]
