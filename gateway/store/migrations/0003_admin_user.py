from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0002_channel_state')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AdminUser',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('username', fields.CharField(unique=True, max_length=100)),
                ('password_hash', fields.CharField(max_length=300)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'admin_user', 'app': 'models', 'pk_attr': 'id', 'table_description': 'Someone who may edit templates and see the dashboard (`centralita admin create`).'},
            bases=['Model'],
        ),
    ]
