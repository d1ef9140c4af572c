"""Rendering automatic texts, telling the agents' console, and the audit log: the pieces
the pipeline, the outbox and the scheduler all use.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from gateway.messages import Outbound
from gateway.models import AuditEvent, Contact, Message, OutboxItem, Ticket
from gateway.services import Services

log = logging.getLogger("centralita.notices")


async def audit(ticket: Ticket | None, actor: str, action: str, detail: dict[str, Any],
                now: datetime) -> None:
    """Record who did what to a ticket."""
    await AuditEvent.create(ticket=ticket, actor=actor, action=action, detail=detail,
                            created_at=now)


async def render(services: Services, ticket: Ticket, key: str, channel: str, now: datetime,
                 customer_name: str, **extra: Any) -> tuple[str, str]:
    """Render template `key` for `ticket` on `channel`.

    A stored template that fails falls back to the shipped default; the failure is logged
    and audited so an admin sees it on the ticket.
    """
    variables = services.template_context(ticket, customer_name=customer_name, now=now,
                                          **extra)
    rendered = await services.templates.render(key, locale=ticket.locale, channel=channel,
                                               context=variables, now=now)
    if rendered.fell_back:
        log.warning("template %s/%s/%s failed, used the shipped default: %s",
                    key, ticket.locale, channel, rendered.error)
        await audit(ticket, "gateway", "template.failed", {
            "key": key, "locale": ticket.locale, "channel": channel,
            "error": rendered.error, "fallback": "shipped default"}, now)
    return rendered.subject, rendered.body


async def queue(ticket: Ticket, out: Outbound, now: datetime, *, contact: Contact | None = None,
                message: Message | None = None) -> OutboxItem:
    """Write one outbox row for `out` (in the caller's transaction)."""
    return await OutboxItem.create(
        ticket=ticket, message=message, contact=contact, channel=out.channel,
        audience=out.audience, recipient=out.recipient, kind=out.kind,
        subject=out.subject, text=out.text, automatic=out.automatic,
        payload={"reply_to": list(out.reply_to), "ticket": ticket.number, **out.extra},
        next_attempt_at=now, created_at=now)


async def notify_agents(services: Services, ticket: Ticket, key: str, now: datetime, *,
                        customer_name: str, **extra: Any) -> Outbound:
    """Tell the agents' console about `ticket` with template `key`.

    With no console configured (`[agents] console = ""`) the notice goes to the log only.
    """
    agents = services.settings.agents
    console = agents.console or "agents"
    subject, text = await render(services, ticket, key, console, now, customer_name, **extra)
    out = Outbound(channel=console, recipient=agents.channel, text=text, subject=subject,
                   audience="agents", ticket_number=ticket.number, kind=key, automatic=True,
                   extra={"customer_channel": ticket.channel})
    if not agents.console:
        log.info("agents: %s", text)
        return out
    row = await queue(ticket, out, now)
    return Outbound(**{**out.__dict__, "outbox_id": row.id})


async def delivery_failed(services: Services, ticket: Ticket, channel: str, reason: str,
                          now: datetime) -> Outbound:
    """A message to the customer will never arrive: note it on the ticket, tell agents."""
    contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
    await Message.create(ticket=ticket, direction="out", author_kind="bot",
                         visibility="internal", channel=channel, kind="delivery_failed",
                         text=f"Delivery failed on {channel}: {reason}", created_at=now)
    return await notify_agents(services, ticket, "delivery_failed", now,
                               customer_name=contact.name, reason=reason)
