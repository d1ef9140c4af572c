"""What agents do to a ticket from the console: claim, resolve, reopen, priority, assign.

Each action is one transaction, audited with who did it, and returns the ticket as it now
is (the console redraws its card from it). Nothing here sends anything to the customer.

Example:
    >>> ticket = await claim(1042, "Pedro", now)                      # doctest: +SKIP
    >>> ticket.assignee                                                # doctest: +SKIP
    'Pedro'
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from gateway.models import Contact, Ticket
from gateway.notices import audit

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


async def claim(number: int, agent: str, now: datetime) -> Ticket:
    """`agent` takes the ticket (the card shows "claimed by")."""
    async with in_transaction():
        ticket = await _locked(number)
        before = ticket.assignee
        ticket.assignee, ticket.updated_at = agent, now
        await ticket.save(update_fields=["assignee", "updated_at"])
        await audit(ticket, agent, "claimed", {"from": before}, now)
    return ticket


async def assign(number: int, agent: str, assignee: str, now: datetime) -> Ticket:
    async with in_transaction():
        ticket = await _locked(number)
        before = ticket.assignee
        ticket.assignee, ticket.updated_at = assignee, now
        await ticket.save(update_fields=["assignee", "updated_at"])
        await audit(ticket, agent, "assigned", {"from": before, "to": assignee}, now)
    return ticket


async def resolve(number: int, agent: str, now: datetime) -> Ticket:
    async with in_transaction():
        ticket = await _locked(number)
        if ticket.status in ("resolved", "closed"):
            return ticket
        before = ticket.status
        ticket.status, ticket.resolved_at, ticket.updated_at = "resolved", now, now
        await ticket.save(update_fields=["status", "resolved_at", "updated_at"])
        await audit(ticket, agent, "resolved", {"from": before}, now)
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
    return ticket


async def set_priority(number: int, agent: str, priority: str, now: datetime) -> Ticket:
    if priority not in PRIORITIES:
        raise TicketActionError(f"priority must be one of {', '.join(PRIORITIES)}, "
                                f"not {priority!r}")
    async with in_transaction():
        ticket = await _locked(number)
        before = ticket.priority
        ticket.priority, ticket.updated_at = priority, now
        await ticket.save(update_fields=["priority", "updated_at"])
        await audit(ticket, agent, "priority", {"from": before, "to": priority}, now)
    return ticket


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
