"""Due work is data: `ScheduledAction` rows created and cancelled in the same transaction
as the change that causes them (a new ticket, an agent's reply, a resolution…).

Kinds:
- progress: a "we are still on it" update while the ticket waits on us;
- sla_warn / sla_breach (payload target "first_response" or "resolution"): tell agents
  (the warning plans the breach);
- resolved: the resolution message, then the chain survey → follow_up → close;
- pending: a ticket waits on the customer: pending_reminder, then pending_resolve;
- reopened: an agent reopened it (progress updates are planned again).

Example:
    >>> await on_new_ticket(services, ticket, now)       # doctest: +SKIP
    >>> await cancel(ticket, PROGRESS)                     # an agent answered
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from gateway.store import bulk
from gateway.store.models import ScheduledAction, Ticket

PROGRESS = ("progress",)
FIRST_RESPONSE_SLA = ("sla_warn:first_response", "sla_breach:first_response")
RESOLUTION_SLA = ("sla_warn:resolution", "sla_breach:resolution")
AFTER_RESOLUTION = ("resolved", "survey", "follow_up", "close")
PENDING = ("pending", "pending_reminder", "pending_resolve")


def row(ticket: Ticket, kind: str, due: datetime, now: datetime,
        **payload: Any) -> dict[str, Any]:
    return {"ticket_id": ticket.id, "kind": kind, "due_at": due, "payload": payload,
            "created_at": now}


async def add(rows: list[dict[str, Any]]) -> None:
    await bulk.insert_rows(ScheduledAction, rows)


async def cancel(ticket: Ticket | int, kinds: Iterable[str]) -> int:
    """Cancel what is still to come of `kinds` for the ticket; returns how many."""
    ticket_id = ticket if isinstance(ticket, int) else ticket.id
    return await ScheduledAction.filter(ticket_id=ticket_id, kind__in=list(kinds),
                                        status="pending").update(status="cancelled")


def new_ticket_rows(services: Any, ticket: Ticket, now: datetime) -> list[dict[str, Any]]:
    """Progress and SLA warnings for a ticket just opened (or reopened)."""
    s = services.settings.scheduler
    rows = []
    if s.progress_max:
        rows.append(row(ticket, "progress", services.sla.add(ticket.channel, now,
                        s.progress_every.total_seconds() / 60), now, count=0))
    for target, due in (("first_response", ticket.first_response_due),
                        ("resolution", ticket.resolution_due)):
        if due is None or (target == "first_response" and ticket.first_response_at):
            continue
        warn = now + (due - now) * s.sla_warn_at if due > now else due
        # The breach row is added when the warning fires (`breach_row`): one row per
        # target instead of two, on the path every new message takes.
        rows.append(row(ticket, f"sla_warn:{target}", warn, now, target_due=due.isoformat()))
    return rows


def breach_row(ticket: Ticket, target: str, target_due: str, now: datetime) -> dict[str, Any]:
    """The deadline itself, planned when its warning fires."""
    return row(ticket, f"sla_breach:{target}", datetime.fromisoformat(target_due), now,
               target_due=target_due)


async def on_new_ticket(services: Any, tickets: list[Ticket], now: datetime) -> None:
    """`new_ticket_rows` for many tickets opened at `now`; those on one channel share
    their due times, which are worked out once (aware-datetime arithmetic is not cheap)."""
    timing: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    rows: list[dict[str, Any]] = []
    for ticket in tickets:
        key = (ticket.channel, ticket.first_response_due, ticket.resolution_due,
               ticket.first_response_at is None)
        if (planned := timing.get(key)) is None:
            planned = timing[key] = new_ticket_rows(services, ticket, now)
        rows += [{**r, "ticket_id": ticket.id} for r in planned]
    await add(rows)


async def on_agent_reply(services: Any, ticket: Ticket, now: datetime) -> None:
    """A public answer: the first-response SLA is met and the progress clock restarts."""
    await cancel(ticket, PROGRESS + FIRST_RESPONSE_SLA)
    s = services.settings.scheduler
    if s.progress_max and ticket.status == "open":
        await add([row(ticket, "progress", services.sla.add(
            ticket.channel, now, s.progress_every.total_seconds() / 60), now, count=0)])


async def on_customer_back(services: Any, ticket: Ticket, now: datetime) -> None:
    """The customer wrote on a resolved or pending ticket: what was coming is cancelled
    and we keep her informed again."""
    await cancel(ticket, AFTER_RESOLUTION + PENDING + PROGRESS)
    s = services.settings.scheduler
    if s.progress_max:
        await add([row(ticket, "progress", services.sla.add(
            ticket.channel, now, s.progress_every.total_seconds() / 60), now, count=0)])


async def on_resolved(ticket: Ticket, now: datetime) -> None:
    """The resolution message goes out now; the scheduler then plans the rest."""
    await cancel(ticket, PROGRESS + FIRST_RESPONSE_SLA + RESOLUTION_SLA + PENDING
                 + AFTER_RESOLUTION)
    await add([row(ticket, "resolved", now, now)])


async def on_reopened(ticket: Ticket, now: datetime) -> None:
    """An agent reopened it: the follow-ups stop, progress updates start again."""
    await cancel(ticket, AFTER_RESOLUTION + PENDING + PROGRESS)
    await add([row(ticket, "reopened", now, now)])


async def on_pending(ticket: Ticket, now: datetime) -> None:
    await cancel(ticket, PROGRESS + PENDING)
    await add([row(ticket, "pending", now, now)])
