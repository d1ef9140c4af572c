"""The agents' one door: `Desk.execute(command)` checks who may do it, does it, records
it, and says what the console shows. `Gateway.command` is this door.

- Authorisation: agents (members of an agents' room, or `[agents] members`) may do
  everything but edit texts, which admins (`[agents] admins`) do. Editing or deleting a
  held reply is for whoever wrote it: the console only reports the author's own edits.
- A reply in a ticket's thread, a note or a saved reply is an agent's message, so it goes
  through `receive` like every message; the undo window holds it, and the console gets
  the prompt to take it back.
- A change of status is followed by its event through the responders (follow-ups are
  planned there) in the same transaction, and the card is redrawn through the outbox.

Example:
    >>> result = await desk.execute(Resolve(pedro, 1042))           # doctest: +SKIP
    >>> result.text                                                  # doctest: +SKIP
    '#1042 resuelto.'
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from gateway.core.commands import (
    Actor,
    Assign,
    CannedReply,
    Claim,
    Command,
    CommandResult,
    EditTemplate,
    Find,
    Note,
    OpenTemplate,
    Pending,
    Remind,
    Reopen,
    Reply,
    Resolve,
    Retract,
    Revise,
    SetPriority,
    ShowTicket,
    Typed,
    Withdraw,
)
from gateway.core.messages import Accepted, Inbound, Party, ThreadHint
from gateway.core.responder import Event
from gateway.desk import assignees, console, notices, replies, tickets, typed, undo
from gateway.desk.access import is_admin, is_agent
from gateway.desk.templates import edit_template, open_template
from gateway.services import Services
from gateway.store.models import Ticket

log = logging.getLogger("centralita.desk")

Receive = Callable[[Inbound], Awaitable[Accepted]]
OnEvent = Callable[[Ticket, Event], Awaitable[None]]
_ADMINS = (OpenTemplate, EditTemplate)
_AUTHORS = (Revise, Retract)  # the console reports only the author's own edits


class Rejected(Exception):
    """`receive` refused the agent's message (`gateway.pipeline.receive.InboundRejected`)."""


class Desk:
    """Executes agents' commands (see the module docstring)."""

    def __init__(self, services: Services, *, receive: Receive, on_event: OnEvent,
                 wake: Callable[[], None] = lambda: None,
                 rejected: type[Exception] = Rejected) -> None:
        self.services = services
        self.receive = receive
        self.on_event = on_event
        self.wake = wake
        self.rejected = rejected  # what `receive` raises for a message it cannot thread

    @property
    def console(self) -> str:
        return self.services.settings.agents.console

    def is_agent(self, actor: Actor) -> bool:
        return is_agent(self.services.settings.agents, actor)

    async def execute(self, command: Command) -> CommandResult:
        """Do `command` if its actor may; what the console shows her."""
        if isinstance(command, Typed):
            if not self.is_agent(command.actor):
                return await self._refuse(command, "agents_only")
            read = typed.read(command)
            if isinstance(read, typed.Help):
                return await self._help(read.topic, command.command)
            command = read
        if isinstance(command, _ADMINS) and not is_admin(self.services.settings.agents,
                                                          command.actor):
            return await self._refuse(command, "admins_only")
        if not isinstance(command, _AUTHORS) and not self.is_agent(command.actor):
            if isinstance(command, Reply):  # someone else writing in a ticket's thread
                return CommandResult(ok=False)
            return await self._refuse(command, "agents_only")
        try:
            return await self._do(command)
        except tickets.TicketActionError as exc:
            return CommandResult(ok=False, text=await console.say(
                self.services, "console_refused", problem=exc.problem, **exc.details))
        finally:
            self.wake()

    async def _refuse(self, command: Command, problem: str) -> CommandResult:
        await notices.audit(None, f"{command.actor.console}:{command.actor.address}",
                            "command.refused", {"command": type(command).__name__,
                                                "problem": problem}, self._now())
        return CommandResult(ok=False, text=await console.say(
            self.services, "console_refused", problem=problem))

    async def _help(self, topic: str, command: str = "/ticket") -> CommandResult:
        choices = (replies.names(self.services) if topic == "replies" else
                   self.services.templates.keys() if topic == "templates" else [])
        return CommandResult(ok=False, text=await console.say(
            self.services, "console_help", topic=topic, command=command, choices=choices))

    def _now(self) -> datetime:
        return self.services.clock.now()

    async def _done(self, event: str, **variables: Any) -> CommandResult:
        return CommandResult(ok=True, text=await console.say(
            self.services, "console_done", event=event, **variables))

    async def _do(self, command: Command) -> CommandResult:
        handler = {
            Claim: self._claim, Assign: self._assign, SetPriority: self._priority,
            Resolve: self._status, Reopen: self._status, Pending: self._status,
            Remind: self._remind, Reply: self._reply, Note: self._note,
            CannedReply: self._canned, Withdraw: self._withdraw, Revise: self._revise,
            Retract: self._retract, ShowTicket: self._show, Find: self._find,
            OpenTemplate: self._open_template, EditTemplate: self._edit_template,
        }[type(command)]
        return await handler(command)  # type: ignore[operator]

    # -- the ticket ------------------------------------------------------------------

    async def _claim(self, command: Claim) -> CommandResult:
        actor, now = command.actor, self._now()
        async with in_transaction():
            ticket = await tickets.claim(command.number, actor.label, now)
            await assignees.remember(actor.console, ticket.number, actor.address,
                                     actor.label, now)
            await notices.card_changed(self.services, ticket, now)
        return CommandResult(ok=True)

    async def _assign(self, command: Assign) -> CommandResult:
        actor, now = command.actor, self._now()
        async with in_transaction():
            ticket = await tickets.assign(command.number, actor.label, command.name, now)
            if command.address:
                await assignees.remember(actor.console, ticket.number, command.address,
                                         command.name, now)
            await notices.card_changed(self.services, ticket, now)
        return await self._done("assigned", number=command.number, name=command.name)

    async def _priority(self, command: SetPriority) -> CommandResult:
        now = self._now()
        async with in_transaction():
            ticket = await tickets.set_priority(command.number, command.actor.label,
                                                command.priority, now)
            await notices.card_changed(self.services, ticket, now)
        return await self._done("priority", number=command.number, priority=ticket.priority)

    async def _status(self, command: Resolve | Reopen | Pending) -> CommandResult:
        change = {Resolve: tickets.resolve, Reopen: tickets.reopen,
                  Pending: tickets.set_pending}[type(command)]
        now = self._now()
        async with in_transaction():
            ticket, event = await change(command.number, command.actor.label, now)
            if event is not None:
                await self.on_event(ticket, event)
                await notices.card_changed(self.services, ticket, now)
        name = {Resolve: "resolved", Reopen: "reopened", Pending: "pending"}[type(command)]
        return await self._done(name, number=command.number)

    async def _remind(self, command: Remind) -> CommandResult:
        async with in_transaction():
            ticket, event = await tickets.remind(command.number, command.actor.label,
                                                 command.at, self._now(), self.services.hours.tz)
            assert event is not None
            await self.on_event(ticket, event)
        return await self._done("remind", number=command.number,
                                at=datetime.fromisoformat(event.payload["at"]))

    # -- what agents write -----------------------------------------------------------

    def _agent(self, actor: Actor) -> Party:
        return Party("agent", actor.address, actor.name)

    async def _reply(self, command: Reply) -> CommandResult:
        """A reply in a ticket's thread: the customer's answer, held for the undo window,
        or an internal note (it starts with the note prefix)."""
        prefix = self.services.settings.agents.note_prefix
        text = command.text
        note = bool(prefix) and text.lstrip().startswith(prefix)
        if note:
            text = text.lstrip()[len(prefix):].lstrip()
        try:
            accepted = await self.receive(Inbound(
                channel=command.actor.console, sender=self._agent(command.actor), text=text,
                external_id=command.ref, internal=note, attachments=command.attachments,
                thread=ThreadHint(conversation=command.thread)))
        except self.rejected:
            return CommandResult(ok=False)  # a thread that is not a ticket's
        if accepted.duplicate:
            return CommandResult(ok=True)
        sent = [o for o in accepted.outbound if o.audience == "customer"]
        if not sent:
            return CommandResult(ok=True, noted=True)
        outbox_id = sent[0].outbox_id
        if outbox_id is None or not self.services.settings.agents.undo_seconds:
            return CommandResult(ok=True)
        await undo.hold(command.actor.console, command.ref, outbox_id, text,
                        accepted.ticket_number or 0, self._now())
        return CommandResult(ok=True, prompt=await console.undo_prompt(self.services,
                                                                       outbox_id))

    async def _note(self, command: Note) -> CommandResult:
        try:
            await self.receive(Inbound(
                channel=command.actor.console, sender=self._agent(command.actor),
                text=command.text, internal=True, external_id=f"command:{command.ref}",
                thread=ThreadHint(ticket_number=command.number)))
        except self.rejected:
            raise tickets.TicketActionError("no_ticket", number=command.number) from None
        return await self._done("noted", number=command.number)

    async def _canned(self, command: CannedReply) -> CommandResult:
        """A saved reply, as the agent's own answer (signed, threaded, held), and a copy of
        it in the card's thread: what was said is part of the conversation there."""
        if command.name not in self.services.settings.replies:
            return await self._help("replies")
        try:
            accepted = await self.receive(Inbound(
                channel=command.actor.console, sender=self._agent(command.actor),
                text=command.name, kind="canned", external_id=f"command:{command.ref}",
                thread=ThreadHint(ticket_number=command.number)))
        except self.rejected:
            raise tickets.TicketActionError("no_ticket", number=command.number) from None
        sent = [o for o in accepted.outbound if o.audience == "customer"]
        if not sent:
            return await self._done("reply_not_sent", number=command.number)
        ticket = await Ticket.get(number=command.number)
        if notices.has_console(self.services):
            copy = await notices.mirror(self.services, ticket, sent[0].text, self._now(),
                                        author="agent", name=command.actor.label,
                                        reply=command.name)
            await notices.queue(ticket, copy, self._now())
        if sent[0].outbox_id is not None and self.services.settings.agents.undo_seconds:
            prompt = await console.undo_prompt(self.services, sent[0].outbox_id,
                                               name=command.name)
            return CommandResult(ok=True, text=prompt.text, prompt=prompt)
        return await self._done("reply_sent", number=command.number, name=command.name)

    async def _withdraw(self, command: Withdraw) -> CommandResult:
        done = await tickets.withdraw(command.outbox_id, command.actor.label, self._now(),
                                      as_note=command.as_note)
        event = ("kept_as_note" if command.as_note else "withdrawn") if done else "too_late"
        return CommandResult(ok=done, text=(await self._done(event)).text)

    async def _revise(self, command: Revise) -> CommandResult:
        held = await undo.held(command.actor.console, command.ref)
        if held is None:
            return CommandResult(ok=False)
        now = self._now()
        if await tickets.revise(held.outbox_id, held.text, command.text, command.actor.label,
                                now):
            await undo.hold(command.actor.console, command.ref, held.outbox_id, command.text,
                            held.number, now)
            return CommandResult(ok=True)
        await tickets.record_late_change(held.number, command.actor.label, "edited",
                                         command.text, now)
        return CommandResult(ok=False)

    async def _retract(self, command: Retract) -> CommandResult:
        held = await undo.held(command.actor.console, command.ref)
        if held is None:
            return CommandResult(ok=False)
        await undo.forget(command.actor.console, command.ref)
        who, now = command.actor.label or command.actor.console, self._now()
        if await tickets.withdraw(held.outbox_id, who, now, as_note=False):
            return CommandResult(ok=True)
        await tickets.record_late_change(held.number, who, "deleted", held.text, now)
        return CommandResult(ok=False)

    # -- looking things up, and the texts --------------------------------------------

    async def _show(self, command: ShowTicket) -> CommandResult:
        if not await Ticket.exists(number=command.number):
            raise tickets.TicketActionError("no_ticket", number=command.number)
        card = await console.card(self.services, command.number)
        return CommandResult(ok=True, text=card.summary)

    async def _find(self, command: Find) -> CommandResult:
        found = await tickets.find(command.text)
        return CommandResult(ok=True, text=await console.say(
            self.services, "console_help", topic="found", query=command.text, found=found))

    async def _open_template(self, command: OpenTemplate) -> CommandResult:
        form = await open_template(self.services, command.key, command.locale,
                                   command.channel)
        if form is None:
            return await self._help("templates")
        return CommandResult(ok=True, form=form, text=(await self._done(
            "editing", text_key=command.key, language=command.locale)).text)

    async def _edit_template(self, command: EditTemplate) -> CommandResult:
        problem = await edit_template(self.services, command.ref, command.subject,
                                      command.body, author=f"{command.actor.label} "
                                      f"({command.actor.console.capitalize()})")
        if problem:
            return CommandResult(ok=False, errors={"body": problem})
        return CommandResult(ok=True)
