"""The thread model: contacts and their identities, tickets, messages, and the tables that
make the gateway durable (outbox, scheduled actions, audit).

Every table is created and upgraded by tortoise-orm's own migrations
(`centralita migrate`); see gateway/migrations/.
"""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

TICKET_STATUSES = ("open", "pending", "resolved", "closed")


class Contact(Model):
    """A person, with one or more identities on the channels."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, default="")
    locale = fields.CharField(max_length=10, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    identities: fields.ReverseRelation[Identity]
    tickets: fields.ReverseRelation[Ticket]

    class Meta:
        table = "contact"


class Identity(Model):
    """An address of a contact on one channel: email, Telegram chat id, Slack user id."""

    id = fields.IntField(primary_key=True)
    contact: fields.ForeignKeyRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="identities", on_delete=fields.CASCADE
    )
    channel = fields.CharField(max_length=32)
    address = fields.CharField(max_length=320)
    name = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "identity"
        unique_together = (("channel", "address"),)
        indexes = (("contact_id", "channel"),)  # where a ticket's customer is reached


class Counter(Model):
    """Named counters (the human ticket number)."""

    name = fields.CharField(max_length=32, primary_key=True)
    value = fields.BigIntField(default=0)

    class Meta:
        table = "counter"


class Ticket(Model):
    """The thread: one customer request from first message to closure."""

    id = fields.IntField(primary_key=True)
    number = fields.IntField(unique=True)
    contact: fields.ForeignKeyRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="tickets", on_delete=fields.RESTRICT
    )
    channel = fields.CharField(max_length=32)
    mailbox = fields.CharField(max_length=100, default="")
    conversation = fields.CharField(max_length=200, null=True)
    subject = fields.CharField(max_length=300, default="")
    status = fields.CharField(max_length=10, default="open", db_index=True)
    priority = fields.CharField(max_length=10, default="normal")
    tags = fields.JSONField(default=list)
    assignee = fields.CharField(max_length=200, null=True)
    locale = fields.CharField(max_length=10, default="es")
    parent: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="followups", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    first_response_due = fields.DatetimeField(null=True)
    resolution_due = fields.DatetimeField(null=True)
    first_response_at = fields.DatetimeField(null=True)
    resolved_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    last_customer_at = fields.DatetimeField(null=True)
    reopened = fields.IntField(default=0)
    satisfaction = fields.SmallIntField(null=True)
    console_thread = fields.CharField(max_length=100, null=True)

    messages: fields.ReverseRelation[Message]

    class Meta:
        table = "ticket"
        indexes = (("contact_id", "status"), ("channel", "conversation"))


class Message(Model):
    """One message on a ticket: in or out, customer, agent or bot, public or a note."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="messages", on_delete=fields.CASCADE
    )
    direction = fields.CharField(max_length=3)  # in | out
    author_kind = fields.CharField(max_length=10)  # customer | agent | bot
    author_address = fields.CharField(max_length=320, default="")
    author_name = fields.CharField(max_length=200, default="")
    visibility = fields.CharField(max_length=10, default="public")  # public | internal
    channel = fields.CharField(max_length=32)
    external_id = fields.CharField(max_length=500, null=True)
    kind = fields.CharField(max_length=32, default="message")
    subject = fields.CharField(max_length=300, default="")
    text = fields.TextField(default="")
    html = fields.TextField(null=True)
    automated = fields.BooleanField(default=False)
    raw_source = fields.BinaryField(null=True)
    created_at = fields.DatetimeField()

    attachments: fields.ReverseRelation[Attachment]

    class Meta:
        table = "message"
        unique_together = (("channel", "external_id"),)
        indexes = (("ticket_id",),)  # a ticket's thread (answers thread under it)


class Attachment(Model):
    """A file on a message: on disk, in the database, or only recorded (too big)."""

    id = fields.IntField(primary_key=True)
    message: fields.ForeignKeyRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="attachments", on_delete=fields.CASCADE
    )
    filename = fields.CharField(max_length=255)
    content_type = fields.CharField(max_length=127)
    size = fields.BigIntField()
    sha256 = fields.CharField(max_length=64, default="")
    storage = fields.CharField(max_length=10)  # disk | db | skipped
    path = fields.CharField(max_length=500, null=True)
    data = fields.BinaryField(null=True)
    inline = fields.BooleanField(default=False)

    class Meta:
        table = "attachment"
        indexes = (("message_id",),)


class Template(Model):
    """An admin-edited version of an automatic text (the newest version is current)."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=50)
    locale = fields.CharField(max_length=10)
    channel = fields.CharField(max_length=32, default="")
    version = fields.IntField()
    subject = fields.TextField(default="")
    body = fields.TextField()
    created_by = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "template"
        unique_together = (("key", "locale", "channel", "version"),)


class OutboxItem(Model):
    """A message waiting to be delivered, delivered, or given up on."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="outbox", null=True, on_delete=fields.SET_NULL
    )
    message: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="deliveries", null=True, on_delete=fields.SET_NULL
    )
    contact: fields.ForeignKeyNullableRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="outbox", null=True, on_delete=fields.SET_NULL
    )
    channel = fields.CharField(max_length=32)
    audience = fields.CharField(max_length=10, default="customer")  # customer | agents
    recipient = fields.CharField(max_length=320)
    kind = fields.CharField(max_length=32)
    subject = fields.CharField(max_length=300, default="")
    text = fields.TextField()
    automatic = fields.BooleanField(default=False)
    payload = fields.JSONField(default=dict)
    status = fields.CharField(max_length=10, default="pending")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    lease_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    platform_id = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox"
        indexes = (("status", "next_attempt_at"), ("contact_id", "kind", "created_at"),
                   ("ticket_id",))


class ScheduledAction(Model):
    """Due work tied to a ticket: a progress update, a survey, an auto-close."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="scheduled", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=32)
    due_at = fields.DatetimeField()
    status = fields.CharField(max_length=10, default="pending")
    payload = fields.JSONField(default=dict)
    attempts = fields.IntField(default=0)
    lease_until = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    done_at = fields.DatetimeField(null=True)

    class Meta:
        table = "scheduled_action"
        indexes = (("status", "due_at"), ("ticket_id",))  # what is to come for a ticket


class AuditEvent(Model):
    """Who did what, when: every status change, delivery outcome and failure."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="audit", null=True, on_delete=fields.SET_NULL
    )
    actor = fields.CharField(max_length=200)
    action = fields.CharField(max_length=50)
    detail = fields.JSONField(default=dict)
    created_at = fields.DatetimeField()

    class Meta:
        table = "audit_event"
        indexes = (("ticket_id",),)


class ChannelState(Model):
    """Where an adapter is in its platform's stream, kept across restarts.

    Example: the email channel keeps, per mailbox and folder, the IMAP UIDVALIDITY and the
    last UID whose message was committed (key "soporte/INBOX", value {"uidvalidity": 7,
    "last_uid": 1234}).
    """

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=32)
    key = fields.CharField(max_length=200)
    value = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField()

    class Meta:
        table = "channel_state"
        unique_together = (("channel", "key"),)


class AdminUser(Model):
    """Someone who may edit templates and see the dashboard (`centralita admin create`)."""

    id = fields.IntField(primary_key=True)
    username = fields.CharField(max_length=100, unique=True)
    password_hash = fields.CharField(max_length=300)
    created_at = fields.DatetimeField()
    # Carried in every session cookie; raising it (sign-out, new password) ends them all.
    session_version = fields.IntField(default=1, db_default=1)

    class Meta:
        table = "admin_user"
