"""Rendering automatic texts, telling the agents' console, and the audit log: the pieces
the pipeline, the outbox and the scheduler all use.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.core.adapter import shows_subject
from gateway.core.messages import Outbound
from gateway.services import Services
from gateway.store import bulk
from gateway.store.models import AuditEvent, Contact, Identity, Message, OutboxItem, Ticket

log = logging.getLogger("centralita.notices")


def audit_row(ticket: Ticket | None, actor: str, action: str, detail: dict[str, Any],
              now: datetime) -> dict[str, Any]:
    """One audit entry as a row for `audit_many`."""
    return {"ticket_id": ticket.id if ticket is not None else None, "actor": actor,
            "action": action, "detail": detail, "created_at": now}


async def audit_many(rows: list[dict[str, Any]]) -> None:
    """Write audit entries built with `audit_row`, in one statement."""
    await bulk.insert_rows(AuditEvent, rows)


async def audit(ticket: Ticket | None, actor: str, action: str, detail: dict[str, Any],
                now: datetime) -> None:
    """Record who did what to a ticket."""
    await audit_many([audit_row(ticket, actor, action, detail, now)])


async def render(services: Services, ticket: Ticket | None, key: str, channel: str,
                 now: datetime, customer_name: str, *, locale: str | None = None,
                 subject: bool | None = None, **extra: Any) -> tuple[str, str]:
    """Render template `key` for `ticket` (None: a text about no ticket in particular,
    such as the /start greeting, in `locale`) on `channel`.

    A stored template that fails falls back to the shipped default; the failure is logged
    and audited so an admin sees it on the ticket. On a channel without subjects
    (Telegram, Slack: `gateway.adapter.shows_subject`), or with `subject=False`, the
    subject is "", not rendered.
    """
    locale = ticket.locale if ticket is not None else services.locale_for(locale)
    variables = services.template_context(ticket, customer_name=customer_name, now=now,
                                          channel=channel, locale=locale, **extra)
    rendered = await services.templates.render(key, locale=locale, channel=channel,
                                               context=variables, now=now,
                                               subject=shows_subject(channel)
                                               if subject is None else subject)
    if rendered.fell_back:
        log.warning("template %s/%s/%s failed, used the shipped default: %s",
                    key, locale, channel, rendered.error)
        await audit(ticket, "gateway", "template.failed", {
            "key": key, "locale": locale, "channel": channel,
            "error": rendered.error, "fallback": "shipped default"}, now)
    return rendered.subject, rendered.body


def outbox_row(ticket: Ticket | None, out: Outbound, now: datetime, *,
               contact_id: int | None = None, message_id: int | None = None,
               due: datetime | None = None) -> dict[str, Any]:
    """One outbox row for `out`, for `queue_many` (ticket None: e.g. a /start greeting);
    it may leave at `due` (default: now)."""
    return {"ticket_id": ticket.id if ticket else None, "message_id": message_id,
            "contact_id": contact_id, "channel": out.channel, "audience": out.audience,
            "recipient": out.recipient, "kind": out.kind, "subject": out.subject,
            "text": out.text, "automatic": out.automatic,
            "payload": {"reply_to": list(out.reply_to),
                        "ticket": ticket.number if ticket else None, **out.extra},
            "next_attempt_at": due or now, "created_at": now}


async def queue_many(rows: list[dict[str, Any]]) -> list[int]:
    """Write outbox rows built with `outbox_row` (in the caller's transaction); their ids."""
    return await bulk.insert_ids(OutboxItem, rows)


async def queue(ticket: Ticket | None, out: Outbound, now: datetime, *,
                contact: Contact | None = None, message: Message | None = None) -> int:
    """Write one outbox row for `out` (in the caller's transaction); its id."""
    row = outbox_row(ticket, out, now, contact_id=contact.id if contact else None,
                     message_id=message.id if message else None)
    return (await queue_many([row]))[0]


async def agents_notice(services: Services, ticket: Ticket, key: str, now: datetime, *,
                        customer_name: str, **extra: Any) -> Outbound:
    """The notice for the agents' console about `ticket` (template `key`), not yet queued.

    With no console configured (`[agents] console = ""`) it is logged here and must not
    be queued (see `has_console`).
    """
    agents = services.settings.agents
    console = agents.console or "agents"
    # Without a console the notice is a log line: its subject would go nowhere.
    subject, text = await render(services, ticket, key, console, now, customer_name,
                                 subject=None if agents.console else False, **extra)
    if not agents.console:
        log.info("agents: %s", text)
    return Outbound(channel=console, recipient=agents.channel, text=text, subject=subject,
                    audience="agents", ticket_number=ticket.number, kind=key, automatic=True,
                    extra={"customer_channel": ticket.channel, "mailbox": ticket.mailbox,
                           "tags": list(ticket.tags or []), "assignee": ticket.assignee or ""})


def has_console(services: Services) -> bool:
    """Whether agents' notices are queued (a console is configured) or only logged."""
    return bool(services.settings.agents.console)


CARD_UPDATE = "card_update"


async def card_changed(services: Services, ticket: Ticket, now: datetime) -> None:
    """The ticket changed in a way its card on the console shows (status, assignee,
    priority) without an agent doing it there: a customer reopened it, the scheduler
    closed it. The console redraws the card when the row is delivered, from the ticket
    as it is then.

    Example: `await card_changed(services, ticket, now)` after `ticket.status = "open"`.
    """
    if not has_console(services):
        return
    agents = services.settings.agents
    await queue(ticket, Outbound(
        channel=agents.console, recipient=agents.channel, text="", audience="agents",
        ticket_number=ticket.number, kind=CARD_UPDATE, automatic=True,
        extra={"customer_channel": ticket.channel}), now)


async def notify_agents(services: Services, ticket: Ticket, key: str, now: datetime, *,
                        customer_name: str, **extra: Any) -> Outbound:
    """Tell the agents' console about `ticket` with template `key` (or only the log)."""
    out = await agents_notice(services, ticket, key, now, customer_name=customer_name, **extra)
    if not has_console(services):
        return out
    return replace(out, outbox_id=await queue(ticket, out, now))


async def delivery_failed(services: Services, ticket: Ticket, channel: str, reason: str,
                          now: datetime) -> Outbound:
    """A message to the customer will never arrive: note it on the ticket, tell agents."""
    contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
    await Message.create(ticket=ticket, direction="out", author_kind="bot",
                         visibility="internal", channel=channel, kind="delivery_failed",
                         text=f"Delivery failed on {channel}: {reason}", created_at=now)
    return await notify_agents(services, ticket, "delivery_failed", now,
                               customer_name=contact.name, reason=reason)


async def customer_address(ticket: Ticket) -> str:
    """Where the ticket's customer is reached on its channel (her newest identity there)."""
    identity = await Identity.filter(contact_id=ticket.contact_id,  # type: ignore[attr-defined]
                                     channel=ticket.channel).order_by("-id").first()
    return identity.address if identity else ticket.conversation or ""


async def thread_ids(ticket: Ticket) -> tuple[str, ...]:
    """Platform ids an answer threads under: the customer's first message and her latest."""
    ids = await Message.filter(ticket=ticket, direction="in", external_id__isnull=False,
                               channel=ticket.channel).order_by("id").values_list(
                                   "external_id", flat=True)
    return tuple(dict.fromkeys(list(ids[:1]) + list(ids[-9:])))


async def customer_message(services: Services, ticket: Ticket, key: str, now: datetime,
                           *, survey_links: dict[str, str] | None = None,
                           **extra: Any) -> Outbound:
    """An automatic message to the ticket's customer on its own channel (template `key`),
    threaded under her messages, stored on the ticket, queued, and copied to the console.
    `survey_links` (score → URL) go with it for channels that show links, not buttons.

    Example: `await customer_message(services, ticket, "progress", now)`.
    """
    contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
    subject, text = await render(services, ticket, key, ticket.channel, now, contact.name,
                                 **extra)
    message = await Message.create(ticket=ticket, direction="out", author_kind="bot",
                                   channel=ticket.channel, kind=key, subject=subject,
                                   text=text, automated=True, created_at=now)
    out = Outbound(channel=ticket.channel, text=text, subject=subject, kind=key,
                   recipient=await customer_address(ticket), ticket_number=ticket.number,
                   automatic=True, reply_to=await thread_ids(ticket),
                   extra={"locale": ticket.locale, "mailbox": ticket.mailbox,
                          "ticket_subject": ticket.subject,
                          **({"survey_links": survey_links} if survey_links else {})})
    out = replace(out, outbox_id=await queue(ticket, out, now, contact=contact,
                                              message=message))
    if has_console(services):
        agents = services.settings.agents
        await queue(ticket, Outbound(
            channel=agents.console, recipient=agents.channel, text=text, audience="agents",
            ticket_number=ticket.number, kind="mirror", automatic=True,
            extra={"from": "bot", "name": key, "customer_channel": ticket.channel}), now)
    return out
