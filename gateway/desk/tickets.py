"""What agents do to a ticket: claim, assign, resolve, reopen, set pending, priority, a
promised update, taking back a reply in its undo window.

Each action is one transaction, audited with who did it, and returns the ticket as it now
is and the `Event` it caused (None: nothing follows from it), which the desk hands to the
responders (follow-ups are planned there). Nothing here sends anything to anyone.

Example:
    >>> ticket, event = await resolve(1042, "Pedro", now)              # doctest: +SKIP
    >>> event.name                                                      # doctest: +SKIP
    'resolved'
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from gateway.core.responder import Event
from gateway.desk.notices import audit
from gateway.settings import PRIORITIES
from gateway.store.models import Message, OutboxItem, Ticket
from gateway.texts.filters import PRIORITY_LABELS

Changed = tuple[Ticket, Event | None]


class TicketActionError(ValueError):
    """The action does not apply: `problem` names why (a `console_refused` case: no_ticket,
    bad_priority, bad_time, not_open), `details` the variables its text shows."""

    def __init__(self, problem: str, **details: Any) -> None:
        super().__init__(f"{problem}: {details}")
        self.problem = problem
        self.details = details


async def _locked(number: int) -> Ticket:
    query = Ticket.filter(number=number)
    if connections.get("default").capabilities.dialect == "postgres":
        query = query.select_for_update()  # SQLite: one writer at a time anyway
    ticket = await query.first()
    if ticket is None:
        raise TicketActionError("no_ticket", number=number)
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


def priority_code(wanted: str) -> str:
    """The priority an agent means: a code ("high") or its word in es/en ("alta")."""
    words = {label: code for labels in PRIORITY_LABELS.values()
             for code, label in labels.items()}
    code = words.get(wanted.strip().lower(), wanted.strip().lower())
    if code not in PRIORITIES:
        raise TicketActionError("bad_priority", value=wanted, choices=list(
            PRIORITY_LABELS["es"].values()) + [c for c in PRIORITIES if c != "normal"])
    return code


async def set_priority(number: int, agent: str, priority: str, now: datetime) -> Ticket:
    return await _set(number, agent, "priority", priority_code(priority), "priority", now)


async def change_status(ticket: Ticket, status: str, by: str, now: datetime, *,
                        detail: dict[str, Any] | None = None) -> Event | None:
    """Move `ticket` to `status` (in the caller's transaction), audited; the event it is
    for the responders (None when it already was there)."""
    if ticket.status == status:
        return None
    before = ticket.status
    ticket.status, ticket.updated_at = status, now
    fields = ["status", "updated_at"]
    if status == "resolved":
        ticket.resolved_at = now
        fields.append("resolved_at")
    elif status == "open":
        ticket.resolved_at = None
        ticket.reopened += 1
        fields += ["resolved_at", "reopened"]
    elif status == "closed":
        ticket.closed_at = now
        fields.append("closed_at")
    await ticket.save(update_fields=fields)
    action = "reopened" if status == "open" else status
    await audit(ticket, by, action, {"from": before, **(detail or {})}, now)
    return Event(name=action, by=by)


async def resolve(number: int, agent: str, now: datetime) -> Changed:
    async with in_transaction():
        ticket = await _locked(number)
        if ticket.status in ("resolved", "closed"):
            return ticket, None
        return ticket, await change_status(ticket, "resolved", agent, now)


async def reopen(number: int, agent: str, now: datetime) -> Changed:
    async with in_transaction():
        ticket = await _locked(number)
        if ticket.status == "open":
            return ticket, None
        return ticket, await change_status(ticket, "open", agent, now)


async def set_pending(number: int, agent: str, now: datetime) -> Changed:
    """The ticket waits on the customer: a reminder, then resolution, if she does not
    answer (see [scheduler] pending_reminder)."""
    async with in_transaction():
        ticket = await _locked(number)
        if ticket.status in ("resolved", "closed"):
            raise TicketActionError("not_open", number=number, status=ticket.status)
        return ticket, await change_status(ticket, "pending", agent, now)


async def remind(number: int, agent: str, at: str, now: datetime, tz: Any) -> Changed:
    """An agent promises the customer an update at `at` ("15:00": today, or tomorrow if
    that time has passed); the event carries when."""
    try:
        hour, minute = (int(part) for part in at.split(":"))
        local = now.astimezone(tz).replace(hour=hour, minute=minute, second=0, microsecond=0)
    except ValueError:
        raise TicketActionError("bad_time", value=at) from None
    if local <= now:
        local += timedelta(days=1)
    async with in_transaction():
        ticket = await _locked(number)
        await audit(ticket, agent, "remind", {"at": local.isoformat()}, now)
    return ticket, Event(name="remind", by=agent, payload={"at": local.isoformat()})


async def withdraw(outbox_id: int, agent: str, now: datetime, *, as_note: bool) -> bool:
    """Take back an agent's reply still in its undo window: it is not sent; its words stay
    on the ticket as an internal note (`as_note`) or marked withdrawn. False when it is
    too late (already sending or sent)."""
    async with in_transaction():
        item = await OutboxItem.get_or_none(id=outbox_id, kind="agent_reply")
        if item is None or item.status != "pending" or item.attempts:
            return False  # (only an agent's own words can be taken back)
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
        item = await OutboxItem.get_or_none(id=outbox_id, kind="agent_reply")
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
