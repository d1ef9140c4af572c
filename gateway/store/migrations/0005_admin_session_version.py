from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0004_ticket_lookups')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AdminUser',
            name='session_version',
            field=fields.IntField(default=1, db_default=1),
        ),
    ]
