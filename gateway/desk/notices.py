"""Rendering automatic texts, telling the agents' console, and the audit log: the pieces
the pipeline, the desk and the outbox all use.

Example:
    >>> await notify_agents(services, ticket, "sla_warning", now, customer_name="María",
    ...                     mention=True, target="first_response", stage="breach")  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.core.messages import ForAgents, Mention, Outbound
from gateway.desk import assignees
from gateway.desk.access import room_for
from gateway.services import Services
from gateway.store import bulk
from gateway.store.models import AuditEvent, Contact, Identity, Message, OutboxItem, Ticket
from gateway.store.outbox_rows import OPEN_CARD, REDRAW_CARD, outbox_row

log = logging.getLogger("centralita.notices")

CARD_UPDATE = "card_update"  # the kind of a row that redraws a ticket's card


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
    (Telegram, Slack: `Capabilities.subjects`), or with `subject=False`, the subject is
    "", not rendered.
    """
    locale = ticket.locale if ticket is not None and locale is None else \
        services.locale_for(locale)
    variables = services.template_context(ticket, customer_name=customer_name, now=now,
                                          channel=channel, locale=locale, **extra)
    rendered = await services.templates.render(key, locale=locale, channel=channel,
                                               context=variables, now=now,
                                               subject=services.shows_subject(channel)
                                               if subject is None else subject)
    if rendered.fell_back:
        log.warning("template %s/%s/%s failed, used the shipped default: %s",
                    key, locale, channel, rendered.error)
        await audit(ticket, "gateway", "template.failed", {
            "key": key, "locale": locale, "channel": channel,
            "error": rendered.error, "fallback": "shipped default"}, now)
    return rendered.subject, rendered.body


async def queue_many(rows: list[dict[str, Any]]) -> list[int]:
    """Write outbox rows built with `outbox_row` (in the caller's transaction); their ids."""
    return await bulk.insert_ids(OutboxItem, rows)


async def queue(ticket: Ticket | None, out: Outbound, now: datetime, *,
                contact: Contact | None = None, message: Message | None = None,
                card: str = "") -> int:
    """Write one outbox row for `out` (in the caller's transaction); its id."""
    row = outbox_row(out, now, ticket_id=ticket.id if ticket else None,
                     ticket_number=ticket.number if ticket else None,
                     contact_id=contact.id if contact else None,
                     message_id=message.id if message else None, card=card)
    return (await queue_many([row]))[0]


def has_console(services: Services) -> bool:
    """Whether agents' notices are queued (a console is configured) or only logged."""
    return bool(services.settings.agents.console)


def agents_room(services: Services, ticket: Ticket | None) -> str:
    """The agents' room a ticket's notices go to ([agents] routes)."""
    agents = services.settings.agents
    if ticket is None:
        return agents.channel
    return room_for(agents, ticket.channel, ticket.mailbox, ticket.tags or ())


async def agents_notice(services: Services, ticket: Ticket, key: str, now: datetime, *,
                        customer_name: str, broadcast: bool = False, mention: bool = False,
                        **extra: Any) -> Outbound:
    """The notice for the agents' console about `ticket` (template `key`), not yet queued:
    `broadcast` shows it in the room too, not only in its thread; `mention` notifies the assignee.

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
    who = None
    if mention and ticket.assignee:
        who = Mention(await assignees.address_of(console, ticket.number, ticket.assignee),
                      ticket.assignee)
    return Outbound(channel=console, recipient=agents_room(services, ticket), text=text,
                    subject=subject, audience="agents", ticket_number=ticket.number,
                    kind=key, automatic=True, agents=ForAgents(broadcast=broadcast, mention=who))


async def notify_agents(services: Services, ticket: Ticket, key: str, now: datetime, *,
                        customer_name: str, card: bool = False, broadcast: bool = False,
                        mention: bool = False, **extra: Any) -> Outbound:
    """Tell the agents' console about `ticket` with template `key` (or only the log);
    `card`: the notice opens the ticket's card if it has none yet."""
    out = await agents_notice(services, ticket, key, now, customer_name=customer_name,
                              broadcast=broadcast, mention=mention, **extra)
    if not has_console(services):
        return out
    return replace(out, outbox_id=await queue(ticket, out, now,
                                              card=OPEN_CARD if card else ""))


def card_update(services: Services, ticket: Ticket) -> Outbound | None:
    """The row that redraws the ticket's card (None without a console): the console
    redraws it when the row is delivered, from the ticket as it is then."""
    if not has_console(services):
        return None
    return Outbound(channel=services.settings.agents.console,
                    recipient=agents_room(services, ticket), text="", audience="agents",
                    ticket_number=ticket.number, kind=CARD_UPDATE, automatic=True)


async def card_changed(services: Services, ticket: Ticket, now: datetime) -> None:
    """The ticket changed in a way its card shows (status, assignee, priority): queue its
    redrawing (`card_update`).

    Example: `await card_changed(services, ticket, now)` after `ticket.status = "open"`.
    """
    if (out := card_update(services, ticket)) is not None:
        await queue(ticket, out, now, card=REDRAW_CARD)


async def mirror(services: Services, ticket: Ticket, text: str, now: datetime, *,
                 author: str, name: str = "", kind: str = "", reply: str = "") -> Outbound:
    """A copy for the ticket's console thread, so that the thread is the whole
    conversation: a customer's message (`author` "customer", quoted), an automatic answer
    ("bot", `kind` names it) or a saved reply an agent sent ("agent", `reply` names it)."""
    agents = services.settings.agents
    console = agents.console or "agents"
    _, heading = await render(services, None, "mirror", console, now, "", subject=False,
                              locale=services.console_locale, author=author, name=name,
                              kind=kind, reply=reply)
    return Outbound(channel=console, recipient=agents_room(services, ticket), text=text,
                    audience="agents", ticket_number=ticket.number, kind="mirror",
                    automatic=True, agents=ForAgents(heading=heading,
                                                     quote=author == "customer"))


async def delivery_failed(services: Services, ticket: Ticket, channel: str, reason: str,
                          now: datetime) -> Outbound:
    """A message to the customer will never arrive: note it on the ticket, tell agents."""
    contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
    await Message.create(ticket=ticket, direction="out", author_kind="bot",
                         visibility="internal", channel=channel, kind="delivery_failed",
                         text=f"Delivery failed on {channel}: {reason}", created_at=now)
    return await notify_agents(services, ticket, "delivery_failed", now,
                               customer_name=contact.name, broadcast=True, reason=reason)


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
