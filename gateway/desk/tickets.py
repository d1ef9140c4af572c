"""What agents do to a ticket from the console: claim, resolve, reopen, priority, assign.

Each action is one transaction, audited with who did it, and returns the ticket as it now
is (the console redraws its card from it). Nothing here sends anything to the customer.

Example:
    >>> ticket = await claim(1042, "Pedro", now)                      # doctest: +SKIP
    >>> ticket.assignee                                                # doctest: +SKIP
    'Pedro'
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from gateway.desk.notices import audit
from gateway.store.models import Contact, Message, OutboxItem, Ticket
from gateway.texts.engine import TemplateSource
from scheduler import plan

PRIORITIES = ("low", "normal", "high", "urgent")


class TicketActionError(ValueError):
    """The action does not apply (no such ticket, a priority that does not exist…)."""


async def _locked(number: int) -> Ticket:
    query = Ticket.filter(number=number)
    if connections.get("default").capabilities.dialect == "postgres":
        query = query.select_for_update()  # SQLite: one writer at a time anyway
    ticket = await query.first()
    if ticket is None:
        raise TicketActionError(f"there is no ticket #{number}")
    return ticket


async def _set(number: int, agent: str, field: str, value: str, action: str,
               now: datetime, *, tell_to: bool = True) -> Ticket:
    """Set one field of the ticket the card shows, with an audit entry of what it was."""
    async with in_transaction():
        ticket = await _locked(number)
        before = getattr(ticket, field)
        setattr(ticket, field, value)
        ticket.updated_at = now
        await ticket.save(update_fields=[field, "updated_at"])
        await audit(ticket, agent, action,
                    {"from": before, **({"to": value} if tell_to else {})}, now)
    return ticket


async def claim(number: int, agent: str, now: datetime) -> Ticket:
    """`agent` takes the ticket (the card shows "claimed by")."""
    return await _set(number, agent, "assignee", agent, "claimed", now, tell_to=False)


async def assign(number: int, agent: str, assignee: str, now: datetime) -> Ticket:
    return await _set(number, agent, "assignee", assignee, "assigned", now)


async def resolve(number: int, agent: str, now: datetime) -> Ticket:
    async with in_transaction():
        ticket = await _locked(number)
        if ticket.status in ("resolved", "closed"):
            return ticket
        before = ticket.status
        ticket.status, ticket.resolved_at, ticket.updated_at = "resolved", now, now
        await ticket.save(update_fields=["status", "resolved_at", "updated_at"])
        await audit(ticket, agent, "resolved", {"from": before}, now)
        await plan.on_resolved(ticket, now)
    return ticket


async def reopen(number: int, agent: str, now: datetime) -> Ticket:
    async with in_transaction():
        ticket = await _locked(number)
        if ticket.status == "open":
            return ticket
        before = ticket.status
        ticket.status, ticket.resolved_at, ticket.updated_at = "open", None, now
        ticket.reopened += 1
        await ticket.save(update_fields=["status", "resolved_at", "updated_at", "reopened"])
        await audit(ticket, agent, "reopened", {"from": before}, now)
        await plan.on_reopened(ticket, now)
    return ticket


async def set_pending(number: int, agent: str, now: datetime) -> Ticket:
    """The ticket waits on the customer: a reminder, then resolution, if she does not
    answer (see [scheduler] pending_reminder)."""
    async with in_transaction():
        ticket = await _locked(number)
        if ticket.status in ("resolved", "closed"):
            raise TicketActionError(f"#{number} is {ticket.status}; reopen it first")
        before = ticket.status
        ticket.status, ticket.updated_at = "pending", now
        await ticket.save(update_fields=["status", "updated_at"])
        await audit(ticket, agent, "pending", {"from": before}, now)
        await plan.on_pending(ticket, now)
    return ticket


async def remind(number: int, agent: str, at: str, now: datetime, tz: Any) -> datetime:
    """Schedule a progress update for the customer at `at` ("15:00": today, or tomorrow
    if that time has passed) — an agent's promise to keep her informed."""
    try:
        hour, minute = (int(part) for part in at.split(":"))
        local = now.astimezone(tz).replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        raise TicketActionError(f"a time like 15:00 is expected, not {at!r}") from None
    if local <= now:
        local += timedelta(days=1)
    async with in_transaction():
        ticket = await _locked(number)
        await plan.add([plan.row(ticket, "progress", local, now, count=0, by=agent)])
        await audit(ticket, agent, "remind", {"at": local.isoformat()}, now)
    return local


async def set_priority(number: int, agent: str, priority: str, now: datetime) -> Ticket:
    if priority not in PRIORITIES:
        raise TicketActionError(f"priority must be one of {', '.join(PRIORITIES)}, "
                                f"not {priority!r}")
    return await _set(number, agent, "priority", priority, "priority", now)


async def console_thread(number: int) -> str | None:
    """Where the ticket's card is on the console ("channel:ts"), None if not posted."""
    return await Ticket.filter(number=number).first().values_list(
        "console_thread", flat=True)


async def card(number: int) -> dict[str, Any]:
    """What the console shows on a ticket's card: the ticket, its customer, and the
    customer's last tickets on every channel."""
    ticket = await Ticket.get_or_none(number=number)
    if ticket is None:
        raise TicketActionError(f"there is no ticket #{number}")
    contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
    history = await Ticket.filter(contact_id=contact.id).exclude(id=ticket.id).order_by(
        "-id").limit(5).values("number", "channel", "status", "subject")
    first = await ticket.messages.filter(direction="in").order_by("id").first()
    return {"ticket": ticket, "customer": contact.name, "history": history,
            "first_text": first.text if first else ""}


async def withdraw(outbox_id: int, agent: str, now: datetime, *, as_note: bool) -> bool:
    """Take back an agent's reply still in its undo window: it is not sent; its words stay
    on the ticket as an internal note (`as_note`) or marked withdrawn. False when it is
    too late (already sending or sent)."""
    async with in_transaction():
        item = await OutboxItem.get_or_none(id=outbox_id)
        if item is None or item.status != "pending" or item.attempts:
            return False
        if not await OutboxItem.filter(id=outbox_id, status="pending", attempts=0).update(
                status="cancelled", last_error=f"taken back by {agent}"):
            return False
        if item.message_id is not None:  # type: ignore[attr-defined]
            await Message.filter(id=item.message_id).update(  # type: ignore[attr-defined]
                visibility="internal", kind="note" if as_note else "withdrawn")
        await audit(await Ticket.get_or_none(id=item.ticket_id),  # type: ignore[attr-defined]
                    agent, "reply.note" if as_note else "reply.withdrawn",
                    {"outbox": outbox_id}, now)
    return True


async def revise(outbox_id: int, old_words: str, new_words: str, agent: str,
                 now: datetime) -> bool:
    """The agent edited a reply inside its undo window: send the new words instead.
    False when it is too late (the edit is then only recorded, see `record_late_change`)."""
    async with in_transaction():
        item = await OutboxItem.get_or_none(id=outbox_id)
        if item is None or item.status != "pending" or item.attempts:
            return False
        text = item.text.replace(old_words.strip(), new_words.strip(), 1)
        await OutboxItem.filter(id=outbox_id).update(text=text)
        if item.message_id is not None:  # type: ignore[attr-defined]
            await Message.filter(id=item.message_id).update(text=text)  # type: ignore[attr-defined]
        await audit(await Ticket.get_or_none(id=item.ticket_id),  # type: ignore[attr-defined]
                    agent, "reply.revised", {"outbox": outbox_id}, now)
    return True


async def record_late_change(number: int, agent: str, change: str, text: str,
                             now: datetime) -> None:
    """An agent edited or deleted a reply after it was sent: the customer already has it;
    the ticket records what changed."""
    ticket = await Ticket.get_or_none(number=number)
    await audit(ticket, agent, f"reply.{change}_after_send", {"text": text[:2000]}, now)


async def find(text: str, limit: int = 10) -> list[dict[str, Any]]:
    """Tickets by number ("1042", "#1042") or by words in the subject, newest first."""
    wanted = text.strip().lstrip("#")
    query = Ticket.filter(number=int(wanted)) if wanted.isdigit() else Ticket.filter(
        subject__icontains=text.strip())
    return await query.order_by("-id").limit(limit).values("number", "subject", "status",
                                                           "channel")


async def canned_reply(services: Any, number: int, name: str, agent: str) -> str:
    """The canned reply `name` ([replies] in settings.toml) written for ticket `number`:
    in the ticket's language, rendered in the template sandbox with its variables.

    Example: `await canned_reply(services, 1042, "envio", "Pedro")` → "Hola María, tu pedido…"
    """
    replies = services.settings.replies
    if name not in replies:
        known = ", ".join(sorted(replies)) or "none yet: add them under [replies] in settings.toml"
        raise TicketActionError(f"there is no canned reply {name!r} (known: {known})")
    ticket = await Ticket.get_or_none(number=number)
    if ticket is None:
        raise TicketActionError(f"there is no ticket #{number}")
    texts = replies[name]
    locale = ticket.locale if ticket.locale in texts else next(iter(texts))
    contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
    context = services.template_context(ticket, customer_name=contact.name,
                                        now=services.clock.now(), agent={"name": agent})
    source = TemplateSource(f"reply:{name}", locale, "", "", texts[locale])
    return services.templates.render_source(source, context)[1]
