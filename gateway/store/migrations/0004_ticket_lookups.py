from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0003_admin_user')]

    initial = False

    operations = [
        ops.AddIndex(
            model_name='Attachment',
            index=Index(fields=['message_id']),
        ),
        ops.AddIndex(
            model_name='AuditEvent',
            index=Index(fields=['ticket_id']),
        ),
        ops.AddIndex(
            model_name='Identity',
            index=Index(fields=['contact_id', 'channel']),
        ),
        ops.AddIndex(
            model_name='Message',
            index=Index(fields=['ticket_id']),
        ),
        ops.AddIndex(
            model_name='OutboxItem',
            index=Index(fields=['ticket_id']),
        ),
        ops.AddIndex(
            model_name='ScheduledAction',
            index=Index(fields=['ticket_id']),
        ),
    ]
