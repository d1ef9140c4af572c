from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ChannelState',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('channel', fields.CharField(max_length=32)),
                ('key', fields.CharField(max_length=200)),
                ('value', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'channel_state', 'app': 'models', 'unique_together': (('channel', 'key'),), 'pk_attr': 'id', 'table_description': "Where an adapter is in its platform's stream, kept across restarts."},
            bases=['Model'],
        ),
    ]
