"""Responding: run the responders on stored messages (or on a ticket's event) and turn
what they decided into rows — answers stored on the ticket, outbox rows, scheduled work,
status changes — in the transaction of the message.

Example:
    >>> accepted = await responding.messages(contexts)              # doctest: +SKIP
    >>> accepted[0].outbound[0].kind                                 # doctest: +SKIP
    'ack'
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from gateway.core.messages import Accepted, Inbound, Outbound, Survey
from gateway.core.responder import (
    Cancel,
    Context,
    CopyToConsole,
    EventContext,
    NotifyAgents,
    Reply,
    Responder,
    Schedule,
    SetStatus,
    TicketContext,
    prepare_all,
)
from gateway.desk import assignees, notices
from gateway.desk.survey import survey_links
from gateway.desk.tickets import change_status
from gateway.services import Services
from gateway.store import bulk
from gateway.store.models import Attachment, Message, ScheduledAction, Ticket
from gateway.store.outbox_rows import OPEN_CARD, REDRAW_CARD, leased_for_hand_over, outbox_row
from gateway.texts.engine import TemplateError

log = logging.getLogger("centralita.pipeline")

NOTICE_EXCERPT = 2000


class Dispatcher(Protocol):
    """What delivers the outbox (`gateway.outbox.dispatcher.Outbox`), as the core sees it."""

    def takes(self, channel: str) -> bool:
        """Whether this process sends `channel` (its rows can be handed over)."""

    def hand_over(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        """Committed outbox rows, leased with `leased_for_hand_over`, to send now."""

    def wake(self) -> None:
        """Rows were queued in the database: look for them now."""


def excerpt(text: str) -> str:
    """What agents are shown of a long message; the ticket has it all."""
    return text if len(text) <= NOTICE_EXCERPT else text[:NOTICE_EXCERPT].rstrip() + "…"


@dataclass
class _Planned:
    """One message to send, with what it is stored and queued with."""

    index: int
    out: Outbound
    message: dict[str, Any] | None = None
    hold: float = 0
    card: str = ""
    attachments: list[int] = field(default_factory=list)


class Responding:
    """Responders → actions → rows (see the module docstring)."""

    def __init__(self, services: Services, responders: Sequence[Responder],
                 dispatcher: Dispatcher | None = None) -> None:
        self.services = services
        self.responders = list(responders)
        self.on_events = [r for r in self.responders if hasattr(r, "on_event")]
        self.dispatcher = dispatcher

    async def messages(self, contexts: list[Context]) -> list[Accepted]:
        """Run the responders on stored messages and write what they decided."""
        await prepare_all(self.responders, contexts)
        for ctx in contexts:
            for responder in self.responders:
                if ctx.stopped:
                    break
                if responder.matches(ctx):
                    await responder.handle(ctx)
        return await self.apply(contexts)

    async def event(self, ctx: EventContext) -> tuple[Outbound, ...]:
        """Run the responders on a ticket's event and write what they decided."""
        for responder in self.on_events:
            if ctx.stopped:
                break
            await responder.on_event(ctx)  # type: ignore[attr-defined]
        # Not handed to the dispatcher: the caller's transaction is still open, and the
        # scheduler or the desk wakes the outbox once it is committed.
        return (await self.apply([ctx], hand_over=False))[0].outbound

    async def apply(self, contexts: Sequence[TicketContext], *,
                    hand_over: bool = True) -> list[Accepted]:
        """Every context's actions as rows, in their transaction; with `hand_over`, the
        rows that may leave now are written leased to this process's dispatcher, which
        the pipeline hands them to after the commit (`Accepted.queued`)."""
        planned: list[_Planned] = []
        copies: list[_Planned] = []  # for the console's thread: after everything else
        redraws: list[_Planned] = []  # cards to redraw: last of all
        scheduled: list[dict[str, Any]] = []
        for index, ctx in enumerate(contexts):
            mine: list[_Planned] = []
            answers = False
            for action in ctx.actions:
                kind = type(action)
                if kind is Schedule:  # the common case: plain rows, written at the end
                    if ctx.ticket is not None:
                        scheduled.append({"ticket_id": ctx.ticket.id, "kind": action.kind,
                                          "due_at": action.due, "payload": dict(action.payload),
                                          "created_at": ctx.now})
                    continue
                try:
                    if kind is Reply:
                        mine.append(await self._reply(index, ctx, action))
                    elif ctx.ticket is None:
                        continue  # (only a reply can be about no ticket)
                    elif kind is NotifyAgents:
                        mine.append(await self._notice(index, ctx, action))
                    elif kind is Cancel:
                        await ScheduledAction.filter(
                            ticket_id=ctx.ticket.id, kind__in=list(action.kinds),
                            status="pending").update(status="cancelled")
                    elif kind is CopyToConsole:
                        copies += await self._copy_inbound(index, ctx, action)
                        answers = answers or action.answers
                    elif kind is SetStatus:
                        redraws += await self._set_status(index, ctx, ctx.ticket, action)
                except TemplateError as exc:
                    log.error("shipped template failed, %s not sent: %s", action, exc)
                    await notices.audit(ctx.ticket, "gateway", "template.failed",
                                        {"action": repr(action), "error": str(exc)}, ctx.now)
            if answers:
                copies += await self._copy_answers(ctx, mine)
            planned += mine
        await bulk.insert_rows(ScheduledAction, scheduled)
        return await self._queue(contexts, planned + copies + redraws, hand_over)

    async def _set_status(self, index: int, ctx: TicketContext, ticket: Ticket,
                          action: SetStatus) -> list[_Planned]:
        """Change the status now, run its event through the responders, and redraw the
        ticket's card once everything else of this message is queued."""
        by = ctx.event.by if isinstance(ctx, EventContext) else "gateway"
        detail = {"reason": action.reason} if action.reason else {}
        event = await change_status(ticket, action.status, by or "gateway", ctx.now,
                                    detail=detail)
        if event is None:
            return []
        if action.status == "closed":  # no warning will name who had it again
            await assignees.forget(self.services.settings.agents.console or "agents",
                                   ticket.number)
        await self.event(EventContext(ticket=ticket, contact=ctx.contact, now=ctx.now,
                                      services=self.services, event=event))
        redraw = notices.card_update(self.services, ticket)
        return [_Planned(index, redraw, card=REDRAW_CARD)] if redraw else []

    # -- to the customer -----------------------------------------------------------------

    async def _reply(self, index: int, ctx: TicketContext, action: Reply) -> _Planned:
        """The answer to the customer, and (on a ticket) the message row recording it."""
        ticket = ctx.ticket
        inbound = ctx.inbound if isinstance(ctx, Context) else None
        if ticket is None:  # a channel command: the answer goes where it came from
            assert inbound is not None
            return _Planned(index, await self._answer_sender(ctx, inbound, action))
        subject, text = await notices.render(
            self.services, ticket, action.template, ticket.channel, ctx.now,
            ctx.contact.name, **{"text": inbound.text if inbound else "", **action.variables})
        kind = action.template
        survey = None
        if action.survey:
            links = {} if self.services.capabilities(ticket.channel).buttons else \
                await survey_links(self.services, ticket.number)
            survey = Survey(ticket.number, tuple(links.items()))
        out = Outbound(
            channel=ticket.channel, recipient=await self._recipient(ctx, ticket), text=text,
            subject=subject, ticket_number=ticket.number, kind=kind,
            automatic=action.automatic, reply_to=await self._thread_ids(ctx, ticket),
            locale=ticket.locale, mailbox=ticket.mailbox, ticket_subject=ticket.subject,
            survey=survey)
        agent = inbound.sender if not action.automatic and inbound is not None else None
        planned = _Planned(index, out, hold=action.hold_seconds, message={
            "ticket_id": ticket.id, "direction": "out",
            "author_kind": "agent" if agent else "bot", "channel": ticket.channel,
            "author_address": agent.address if agent else "",
            "author_name": agent.name if agent else "", "kind": kind, "subject": subject,
            "text": text, "automated": action.automatic, "created_at": ctx.now})
        if agent and inbound and inbound.attachments and isinstance(ctx, Context) and \
                ctx.message is not None:  # the agent's files go on too
            planned.attachments = list(await Attachment.filter(
                message_id=ctx.message.id, storage__in=["disk", "db"]).values_list(
                    "id", flat=True))
        return planned

    async def _answer_sender(self, ctx: TicketContext, inbound: Inbound,
                             action: Reply) -> Outbound:
        """An answer about no ticket (a channel command), in the sender's language."""
        locale = self.services.locale_for(inbound.locale or ctx.contact.locale)
        subject, text = await notices.render(
            self.services, None, action.template, inbound.channel, ctx.now,
            ctx.contact.name or inbound.sender.name, locale=locale, **action.variables)
        return Outbound(channel=inbound.channel, recipient=inbound.sender.address, text=text,
                        subject=subject, kind=action.template, automatic=True,
                        reply_to=(inbound.external_id,) if inbound.external_id else (),
                        locale=locale, mailbox=inbound.mailbox)

    async def _recipient(self, ctx: TicketContext, ticket: Ticket) -> str:
        inbound = ctx.inbound if isinstance(ctx, Context) else None
        if inbound is not None and inbound.sender.is_customer and \
                inbound.channel == ticket.channel:
            return inbound.sender.address
        return await notices.customer_address(ticket)

    async def _thread_ids(self, ctx: TicketContext, ticket: Ticket) -> tuple[str, ...]:
        """Platform ids an answer threads under: the first message and the latest ones."""
        if isinstance(ctx, Context) and ctx.new_ticket and ctx.inbound.channel == \
                ticket.channel:
            return (ctx.inbound.external_id,) if ctx.inbound.external_id else ()
        return await notices.thread_ids(ticket)

    # -- to the agents -------------------------------------------------------------------

    async def _notice(self, index: int, ctx: TicketContext, action: NotifyAgents) -> _Planned:
        inbound = ctx.inbound if isinstance(ctx, Context) else None
        name = ctx.contact.name or (inbound.sender.address if inbound else "")
        out = await notices.agents_notice(
            self.services, ctx.ticket, action.template, ctx.now,  # type: ignore[arg-type]
            customer_name=name, broadcast=action.broadcast, mention=action.mention,
            **{"text": excerpt(inbound.text) if inbound else "", **action.variables})
        return _Planned(index, out, card=OPEN_CARD if action.card else "")

    async def _copy_inbound(self, index: int, ctx: TicketContext,
                            action: CopyToConsole) -> list[_Planned]:
        """The customer's message, copied into the ticket's console thread."""
        inbound = ctx.inbound if isinstance(ctx, Context) else None
        if not (action.inbound and inbound and ctx.ticket and notices.has_console(
                self.services)):
            return []
        text = excerpt(inbound.text) or f"({len(inbound.attachments)} file(s))"
        return [_Planned(index, await notices.mirror(
            self.services, ctx.ticket, text, ctx.now, author="customer",
            name=inbound.sender.name or inbound.sender.address))]

    async def _copy_answers(self, ctx: TicketContext, mine: list[_Planned]) -> list[_Planned]:
        """Every automatic answer to the customer, copied into the console thread."""
        if ctx.ticket is None or not notices.has_console(self.services):
            return []
        return [_Planned(p.index, await notices.mirror(
            self.services, ctx.ticket, p.out.text, ctx.now, author="bot", kind=p.out.kind))
            for p in mine if p.out.audience == "customer" and p.out.automatic]

    # -- the rows --------------------------------------------------------------------------

    async def _queue(self, contexts: Sequence[TicketContext], planned: list[_Planned],
                     hand_over: bool) -> list[Accepted]:
        """Store the answers, then queue everything to send; hand what may leave now to
        the dispatcher from memory."""
        stored = iter(await bulk.insert_ids(
            Message, [p.message for p in planned if p.message is not None]))
        console = notices.has_console(self.services)
        queued: list[_Planned] = []
        rows: list[dict[str, Any]] = []
        for p in planned:
            message_id = next(stored) if p.message is not None else None
            if p.out.audience == "agents" and not console:
                continue  # logged only
            ctx = contexts[p.index]
            queued.append(p)
            rows.append(outbox_row(
                p.out, ctx.now, ticket_id=ctx.ticket.id if ctx.ticket else None,
                ticket_number=ctx.ticket.number if ctx.ticket else None,
                contact_id=ctx.contact.id if p.out.audience == "customer" else None,
                message_id=message_id, due=ctx.now + timedelta(seconds=p.hold),
                card=p.card, attachments=p.attachments))
        return await self._write(contexts, planned, queued, rows, hand_over)

    async def _write(self, contexts: Sequence[TicketContext], planned: list[_Planned],
                     queued: list[_Planned], rows: list[dict[str, Any]],
                     hand_over: bool) -> list[Accepted]:
        if (dispatcher := self.dispatcher) is not None and hand_over:  # from memory
            rows = [leased_for_hand_over(row, contexts[p.index].now)
                    if row["next_attempt_at"] <= contexts[p.index].now
                    and dispatcher.takes(row["channel"]) else row
                    for p, row in zip(queued, rows, strict=True)]
        ids = await notices.queue_many(rows)
        ready: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in contexts]
        outbox_ids: dict[int, int] = {}
        for p, row_id, row in zip(queued, ids, rows, strict=True):
            outbox_ids[id(p)] = row_id
            if row.get("status") == "sending":
                ready[p.index].append((row_id, row))
        outbound: list[list[Outbound]] = [[] for _ in contexts]
        for p in planned:
            row_id = outbox_ids.get(id(p))
            outbound[p.index].append(p.out.queued_as(row_id) if row_id else p.out)
        return [_accepted(ctx, tuple(outbound[i]), tuple(ready[i]))
                for i, ctx in enumerate(contexts)]


def _accepted(ctx: TicketContext, outbound: tuple[Outbound, ...],
              ready: tuple[tuple[int, dict[str, Any]], ...]) -> Accepted:
    ticket = ctx.ticket
    if isinstance(ctx, Context):
        return Accepted(ticket.number if ticket else None, ticket.id if ticket else None,
                        ctx.message.id if ctx.message else None, new_ticket=ctx.new_ticket,
                        reopened=ctx.reopened, outbound=outbound, queued=ready)
    return Accepted(ticket.number if ticket else None, ticket.id if ticket else None,
                    None, outbound=outbound, queued=ready)
