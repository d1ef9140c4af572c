"""The core's doors: `Gateway.receive(inbound)` for every message, `Gateway.command(cmd)`
for agents' commands, `Gateway.due(action)` for time.

Each message is handled in one transaction: dedup on (channel, external_id), contact by
identity, thread matching, store, responders, outbox rows (`gateway.pipeline.threading`,
`gateway.pipeline.respond`). `receive` returns only after the commit, so an adapter
acknowledges the platform only once the message is safe.

Concurrent calls are committed together (group commit): whatever arrived while the
previous transaction was committing goes into the next one, each run of independent
messages in its own savepoint (and each message alone if that fails), so one bad message
never takes the others down and an idle gateway adds no waiting at all.

Example:
    >>> accepted = await gateway.receive(Inbound(                  # doctest: +SKIP
    ...     channel="telegram", external_id="u1",
    ...     sender=Party("customer", "12345", "María"), text="Hola"))
    >>> accepted.ticket_number                                      # doctest: +SKIP
    1001
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.core.commands import Actor, Command, CommandResult
from gateway.core.messages import Accepted, Inbound, InboundRejected, Party
from gateway.core.responder import Context, Event, EventContext, Responder
from gateway.core.text import clean_line, clean_text
from gateway.desk import notices
from gateway.desk.commands import Desk
from gateway.pipeline.respond import Dispatcher, Responding
from gateway.pipeline.threading import Threading
from gateway.services import Services
from gateway.store.models import Contact, ScheduledAction, Ticket
from gateway.store.state import load_state, save_state
from gateway.texts.variables import with_neutral

__all__ = ["Accepted", "Gateway", "InboundRejected"]

log = logging.getLogger("centralita.pipeline")

CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_BATCH = 200

_Item = tuple[Inbound, "asyncio.Future[Accepted]"]
_Outcome = tuple["asyncio.Future[Accepted]", "Accepted | None", "BaseException | None"]


def _together_ok(inbound: Inbound) -> bool:
    """A customer's plain message that names no ticket by number (that needs the
    participant check, one by one)."""
    return (inbound.sender.kind == "customer" and inbound.kind == "message"
            and inbound.thread.ticket_number is None)


def _runs(batch: list[_Item]) -> list[tuple[list[_Item], bool]]:
    """Split a batch, in order, into runs stored together and messages stored alone.

    Messages in one run never share a sender, a chat or a platform id, and none answers
    another of the run, so none of them depends on another; anything else starts a new
    run, which keeps arrival order.
    """
    runs: list[tuple[list[_Item], bool]] = []
    current: list[_Item] = []
    keys: set[tuple[str, ...]] = set()
    for item in batch:
        inbound = item[0]
        if not _together_ok(inbound):
            if current:
                runs.append((current, True))
                current, keys = [], set()
            runs.append(([item], False))
            continue
        mine = {("from", inbound.channel, inbound.sender.address)}
        if inbound.thread.conversation:
            mine.add(("chat", inbound.channel, inbound.thread.conversation))
        if inbound.external_id:
            mine.add(("id", inbound.channel, inbound.external_id))
            mine.add(("answers", inbound.external_id))
        answers = {("answers", ref) for ref in inbound.thread.reply_to}
        if keys & (mine | answers):
            runs.append((current, True))
            current, keys = [], set()
        current.append(item)
        keys |= mine
    if current:
        runs.append((current, True))
    return runs


class Gateway:
    """The core: receives every inbound message, agents' commands and ticket events."""

    def __init__(
        self,
        services: Services,
        responders: Sequence[Responder] = (),
        *,
        channels: Collection[str] | None = None,
        dispatcher: Dispatcher | None = None,
    ) -> None:
        self.services = services
        self.responders = list(responders)
        self.channels = set(channels) if channels is not None else None
        self.dispatcher = dispatcher
        self.threading = Threading(services, self.responders)
        self.responding = Responding(services, self.responders, dispatcher)
        self.desk = Desk(services, receive=self.receive, on_event=self._event,
                         wake=dispatcher.wake if dispatcher else lambda: None,
                         rejected=InboundRejected)
        self._queue: list[_Item] = []
        self._writer: asyncio.Task[None] | None = None

    # -- the doors -----------------------------------------------------------------------

    async def receive(self, inbound: Inbound) -> Accepted:
        """Store one message and everything it causes; returns after the commit."""
        inbound = self._clean(inbound)
        await self._check_channel(inbound)
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.append((inbound, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

    async def command(self, command: Command) -> CommandResult:
        """An agent's command, checked, done and recorded (`gateway.desk.commands`)."""
        return await self.desk.execute(command)

    async def is_agent(self, actor: Actor) -> bool:
        """Whether the console's facts about `actor` make her an agent."""
        return self.desk.is_agent(actor)

    async def due(self, action: ScheduledAction) -> None:
        """A scheduled action came due: its event goes through the responders, in the
        caller's transaction (the scheduler marks it done in the same one)."""
        ticket = await Ticket.get(id=action.ticket_id)  # type: ignore[attr-defined]
        await self._event(ticket, Event(name=f"due:{action.kind}", by="scheduler",
                                        payload=dict(action.payload or {}),
                                        due_at=action.due_at))

    async def _event(self, ticket: Ticket, event: Event) -> None:
        contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
        await self.responding.event(EventContext(
            ticket=ticket, contact=contact, now=self.services.clock.now(),
            services=self.services, event=event))

    async def text(self, key: str, locale: str | None = None) -> str:
        """The words of the automatic text `key` in `locale` (no ticket in particular)."""
        _, body = await notices.render(self.services, None, key, "", self._now(), "",
                                       locale=locale, subject=False,
                                       **with_neutral(key, {}))
        return body

    async def load_state(self, channel: str, key: str) -> dict[str, Any]:
        return await load_state(channel, key)

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None:
        await save_state(channel, key, value, self.services.clock.now())

    # -- group commit --------------------------------------------------------------------

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:MAX_BATCH], self._queue[MAX_BATCH:]
            await self._commit(batch)

    async def _commit(self, batch: list[_Item]) -> None:
        outcomes: list[_Outcome] = []
        try:
            await self.services.store.refresh()
            async with in_transaction():
                for items, together in _runs(batch):
                    if together:
                        outcomes += await self._together(items)
                    else:
                        outcomes += [await self._alone(item) for item in items]
        except Exception as exc:
            log.exception("commit of %d message(s) failed", len(batch))
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        queued: list[tuple[int, dict[str, Any]]] = []
        for future, accepted, error in outcomes:
            if accepted is not None:
                queued += accepted.queued
            if future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(accepted)  # type: ignore[arg-type]
        if self.dispatcher is not None:
            self.dispatcher.hand_over(queued)

    async def _store(self, inbounds: list[Inbound]) -> list[Accepted]:
        """Thread, store and answer messages that do not depend on each other."""
        now = self.services.clock.now()
        outcomes = await self.threading.thread(inbounds, now)
        contexts = [o for o in outcomes if isinstance(o, Context)]
        answered = iter(await self.responding.messages(contexts) if contexts else [])
        return [o if isinstance(o, Accepted) else next(answered) for o in outcomes]

    async def _alone(self, item: _Item) -> _Outcome:
        """One message in its own savepoint: whatever goes wrong stays with it."""
        inbound, future = item
        try:
            async with in_transaction():
                return future, (await self._store([inbound]))[0], None
        except IntegrityError:
            # Another process stored the same message between our check and our insert:
            # it is a re-delivery.
            return future, Accepted(None, duplicate=True), None
        except InboundRejected as exc:
            log.info("message %s refused: %s", inbound.external_id, exc)
            return future, None, exc
        except Exception as exc:
            log.exception("could not store message %s", inbound.external_id)
            return future, None, exc

    async def _together(self, items: list[_Item]) -> list[_Outcome]:
        """Independent customer messages stored with a few statements for all of them;
        if anything fails, each message is stored alone instead."""
        try:
            async with in_transaction():
                stored = await self._store([inbound for inbound, _ in items])
        except Exception:
            log.exception("storing %d messages together failed; one by one instead",
                          len(items))
            return [await self._alone(item) for item in items]
        return [(future, accepted, None)
                for (_, future), accepted in zip(items, stored, strict=True)]

    # -- cleaning and checks (before any transaction) ----------------------------------

    def _clean(self, inbound: Inbound) -> Inbound:
        sender = inbound.sender
        party = Party(
            kind=sender.kind if sender.kind in ("customer", "agent", "bot") else "customer",
            address=clean_line(sender.address, 320),
            name=clean_line(sender.name, 200),
        )
        cleaned = {
            "channel": clean_line(inbound.channel, 64).lower(),
            "text": clean_text(inbound.text),
            "subject": clean_line(inbound.subject, 300),
            "html": clean_text(inbound.html) if inbound.html is not None else None,
            "sender": sender if party == sender else party,
            "external_id": (clean_line(inbound.external_id, 500) if inbound.external_id
                            else None),
        }
        if all(getattr(inbound, name) == value for name, value in cleaned.items()):
            return inbound  # the common case: a channel already handed over clean text
        return replace(inbound, **cleaned)

    async def _check_channel(self, inbound: Inbound) -> None:
        if not CHANNEL_NAME.fullmatch(inbound.channel):
            await self._reject(inbound, f"'{inbound.channel}' is not a channel name")
        if self.channels is not None and inbound.channel not in self.channels:
            known = ", ".join(sorted(self.channels)) or "none"
            await self._reject(inbound, f"unknown channel '{inbound.channel}' (known: {known})")
        if not inbound.sender.address:
            await self._reject(inbound, "the sender has no address")

    async def _reject(self, inbound: Inbound, reason: str) -> None:
        await notices.audit(None, f"{inbound.channel}:{inbound.sender.address}",
                            "inbound.rejected", {
                                "reason": reason, "channel": inbound.channel,
                                "external_id": inbound.external_id,
                                "sender": inbound.sender.address, "name": inbound.sender.name,
                                "subject": inbound.subject, "text": inbound.text,
                            }, self._now())
        raise InboundRejected(reason)

    def _now(self) -> datetime:
        return self.services.clock.now()
