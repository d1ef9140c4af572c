"""The one inbound pipeline: `Gateway.receive(inbound)`.

Each message is handled in one transaction: dedup on (channel, external_id), contact by
identity, thread matching, store, responders, outbox rows. `receive` returns only after
the commit, so an adapter acknowledges the platform only once the message is safe.

Concurrent calls are committed together (group commit): whatever arrived while the
previous transaction was committing goes into the next one, each message in its own
savepoint, so one bad message never takes the others down and an idle gateway adds no
waiting at all.

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
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.core.messages import SURVEY_SCORES, Inbound, Outbound, Party
from gateway.core.responder import Context, NotifyAgents, Reply, Responder, prepare_all
from gateway.core.text import clean_line, clean_text
from gateway.desk import notices
from gateway.outbox.dispatcher import leased_for_hand_over
from gateway.services import Services
from gateway.store import bulk
from gateway.store.attachments import store_attachments
from gateway.store.models import (
    Attachment,
    AuditEvent,
    Contact,
    Counter,
    Identity,
    Message,
    ScheduledAction,
    Ticket,
)
from gateway.texts.engine import TemplateError
from scheduler import plan

log = logging.getLogger("centralita.pipeline")

CHANNEL_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")
QUIET_KINDS = frozenset({"score", "edit"})
# Commands a channel can pass on (Inbound.kind "command", text = the name): answered
# without a ticket. Example: Telegram's /estado and /status both arrive as "status".
COMMANDS = {"start": "start", "status": "status"}
OPEN_STATUSES = ("open", "pending")
MAX_BATCH = 200
NOTICE_EXCERPT = 2000


class Dispatcher(Protocol):
    """What delivers the outbox (`gateway.outbox.Outbox`), as the pipeline sees it."""

    def takes(self, channel: str) -> bool:
        """Whether this process sends `channel` (its rows can be handed over)."""

    def hand_over(self, rows: list[tuple[int, dict[str, Any]]]) -> None:
        """Committed outbox rows, leased with `leased_for_hand_over`, to send now."""


class InboundRejected(ValueError):
    """The message cannot be threaded (unknown channel, agent without a ticket).

    It is recorded in the audit log with its full content before this is raised.
    """


@dataclass(frozen=True)
class Accepted:
    """What `receive` did with one message."""

    ticket_number: int | None
    ticket_id: int | None = None
    message_id: int | None = None
    duplicate: bool = False
    new_ticket: bool = False
    reopened: bool = False
    outbound: tuple[Outbound, ...] = ()
    # Outbox rows written for this message that may leave now, (id, row), handed to the
    # dispatcher after the commit so it need not read them back.
    queued: tuple[tuple[int, dict[str, Any]], ...] = field(default=(), repr=False,
                                                           compare=False)


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


def _excerpt(text: str) -> str:
    """What agents are shown of a long message; the ticket has it all."""
    return text if len(text) <= NOTICE_EXCERPT else text[:NOTICE_EXCERPT].rstrip() + "…"


class _Duplicate(Exception):
    def __init__(self, accepted: Accepted) -> None:
        self.accepted = accepted


class Gateway:
    """The core: receives every inbound message and writes what goes out."""

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
        self._queue: list[_Item] = []
        self._writer: asyncio.Task[None] | None = None

    # -- the entry point ---------------------------------------------------------------

    async def receive(self, inbound: Inbound) -> Accepted:
        """Store one message and everything it causes; returns after the commit."""
        inbound = self._clean(inbound)
        await self._check_channel(inbound)
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._queue.append((inbound, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return await future

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

    async def _alone(self, item: _Item) -> _Outcome:
        """One message in its own savepoint: whatever goes wrong stays with it."""
        inbound, future = item
        try:
            async with in_transaction():
                return future, await self._process(inbound), None
        except _Duplicate as dup:
            return future, dup.accepted, None
        except IntegrityError:
            # Another process stored the same message between our check and our insert:
            # it is a re-delivery.
            return future, Accepted(None, duplicate=True), None
        except Exception as exc:
            log.exception("could not store message %s", inbound.external_id)
            return future, None, exc

    async def _together(self, items: list[_Item]) -> list[_Outcome]:
        """Independent customer messages stored with a few statements for all of them.

        Any message that needs more than the common case (a ticket that is not open, a
        contact to rename) is left to `_alone`, as is the whole run if anything fails.
        """
        try:
            async with in_transaction():
                done, left = await self._store_together(items)
        except Exception:
            log.exception("storing %d messages together failed; one by one instead",
                          len(items))
            done, left = [], items
        return done + [await self._alone(item) for item in left]

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
                            }, self.services.clock.now())
        raise InboundRejected(reason)

    # -- one message, inside its savepoint ---------------------------------------------

    async def _process(self, inbound: Inbound) -> Accepted:
        now = self.services.clock.now()
        if inbound.kind == "command":
            return await self._command(inbound, now)
        if inbound.external_id is not None:
            seen = await Message.filter(
                channel=inbound.channel, external_id=inbound.external_id
            ).first().values("id", "ticket_id", "ticket__number")
            if seen:
                raise _Duplicate(Accepted(seen["ticket__number"], seen["ticket_id"],
                                          seen["id"], duplicate=True))
        if inbound.sender.kind == "agent":
            contact, ticket, new, reopened = await self._agent_thread(inbound, now)
        else:
            contact = await self._contact_for(inbound, now)
            inbound = await self._survey_answer(inbound, contact)
            ticket, new, reopened = await self._customer_thread(inbound, contact, now)
        message = await self._store(ticket, inbound, now)
        ctx = Context(inbound=inbound, ticket=ticket, contact=contact, message=message,
                      new_ticket=new, reopened=reopened, now=now, services=self.services)
        return (await self._respond([ctx]))[0]

    async def _store_together(self, items: list[_Item]) -> tuple[list[_Outcome], list[_Item]]:
        """`_process` for many independent messages at once (see `_runs`).

        Returns the outcomes and the messages left for `_alone`. Reads come first, one
        query each for all messages; nothing is written before every message is known to
        be the common case.
        """
        now = self.services.clock.now()
        done: list[_Outcome] = []
        left: list[_Item] = []
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        if ids := [i.external_id for i, _ in items if i.external_id]:
            for row in await bulk.where_in(
                    Message, ("channel", "external_id", "id", "ticket_id"),
                    channel={i.channel for i, _ in items}, external_id=ids):
                seen[(row["channel"], row["external_id"])] = row
            if seen:  # re-deliveries: the ticket numbers they were stored under
                numbers = {row["id"]: row["number"] for row in await bulk.where_in(
                    Ticket, ("id", "number"), id={r["ticket_id"] for r in seen.values()})}
                for row in seen.values():
                    row["ticket__number"] = numbers.get(row["ticket_id"])
        fresh: list[_Item] = []
        for inbound, future in items:
            if row := seen.get((inbound.channel, inbound.external_id or "")):
                done.append((future, Accepted(row["ticket__number"], row["ticket_id"],
                                              row["id"], duplicate=True), None))
            else:
                fresh.append((inbound, future))
        if not fresh:
            return done, left

        known: dict[tuple[str, str], Contact] = {}
        if identities := await bulk.where_in(
                Identity, ("channel", "address", "contact_id"),
                channel={i.channel for i, _ in fresh},
                address={i.sender.address for i, _ in fresh}):
            contacts = {row["id"]: row for row in await bulk.where_in(
                Contact, ("id", "name", "locale", "created_at"),
                id={row["contact_id"] for row in identities})}
            for row in identities:
                if (contact := contacts.get(row["contact_id"])) is not None:
                    known[(row["channel"], row["address"])] = Contact._init_from_db(**contact)
        chats = {(i.channel, i.thread.conversation) for i, _ in fresh
                 if i.thread.conversation and not i.thread.new_ticket}
        by_chat: dict[tuple[str, str], int] = {}
        if chats:
            by_chat = await bulk.newest(Ticket, ("channel", "conversation"),
                                        channel={c for c, _ in chats},
                                        conversation={v for _, v in chats})
        # Reply ids → the ticket of the newest stored message they name (as _by_reply_ids).
        answered: dict[str, tuple[int, int]] = {}
        if refs := {r for i, _ in fresh if not i.thread.new_ticket for r in i.thread.reply_to}:
            for row in await Message.filter(external_id__in=list(refs)).values(
                    "external_id", "id", "ticket_id"):
                if row["id"] > answered.get(row["external_id"], (0, 0))[0]:
                    answered[row["external_id"]] = (row["id"], row["ticket_id"])
        wanted: dict[int, int | None] = {}  # index in fresh → ticket id
        for index, (inbound, _) in enumerate(fresh):
            hint = inbound.thread
            found = [answered[r] for r in hint.reply_to if r in answered]
            if hint.new_ticket:
                wanted[index] = None
            elif found:
                wanted[index] = max(found)[1]
            else:
                wanted[index] = by_chat.get((inbound.channel, hint.conversation or ""))
        tickets = {t.id: t for t in await Ticket.filter(
            id__in=[t for t in wanted.values() if t is not None])} if any(
                wanted.values()) else {}

        plans: list[tuple[_Item, Contact | None, Ticket | None]] = []
        for index, (inbound, future) in enumerate(fresh):
            contact = known.get((inbound.channel, inbound.sender.address))
            ticket_id = wanted[index]
            ticket = tickets.get(ticket_id) if ticket_id is not None else None
            if (ticket is not None and ticket.status != "open") or (
                    contact is not None and inbound.sender.name and not contact.name):
                left.append((inbound, future))  # reopening, a new linked ticket, a rename
            else:
                plans.append(((inbound, future), contact, ticket))
        if not plans:
            return done, left

        new_contacts = await bulk.insert(Contact, [
            {"name": inbound.sender.name, "locale": inbound.locale, "created_at": now}
            for (inbound, _), contact, _ in plans if contact is None])
        await bulk.insert_rows(Identity, [
            {"contact_id": made.id, "channel": inbound.channel,
             "address": inbound.sender.address, "name": inbound.sender.name,
             "created_at": now}
            for ((inbound, _), _, _), made in zip(
                [p for p in plans if p[1] is None], new_contacts, strict=True)])
        made_contacts = iter(new_contacts)
        first_time = {id(contact) for contact in new_contacts}
        resolved = [(item, contact or next(made_contacts), ticket)
                    for item, contact, ticket in plans]

        opening = [(item, contact) for item, contact, ticket in resolved if ticket is None]
        numbers = await self._reserve_numbers(len(opening)) if opening else []
        new_tickets = iter(await bulk.insert(Ticket, [
            self._ticket_row(inbound, contact, number, now)
            for ((inbound, _), contact), number in zip(opening, numbers, strict=True)]))
        continuing = [ticket for _, _, ticket in resolved if ticket is not None]
        if continuing:
            await Ticket.filter(id__in=[t.id for t in continuing]).update(
                last_customer_at=now, updated_at=now)
            for ticket in continuing:
                ticket.last_customer_at = ticket.updated_at = now
        threads = [(item, contact, ticket or next(new_tickets), ticket is None)
                   for item, contact, ticket in resolved]
        await notices.audit_many([
            notices.audit_row(ticket, inbound.sender.address, "created",
                              {"channel": inbound.channel}, now)
            for (inbound, _), _, ticket, new in threads if new])
        messages = await bulk.insert(Message, [
            self._message_row(ticket.id, inbound, now)
            for (inbound, _), _, ticket, _ in threads])
        for ((inbound, _), _, _, _), message in zip(threads, messages, strict=True):
            if inbound.attachments:
                await store_attachments(message, inbound.attachments, self.services.settings)
        contexts = [
            Context(inbound=inbound, ticket=ticket, contact=contact, message=message,
                    new_ticket=new, reopened=False, now=now, services=self.services,
                    new_contact=id(contact) in first_time)
            for ((inbound, _), contact, ticket, new), message in zip(
                threads, messages, strict=True)]
        accepted = await self._respond(contexts)
        done += [(future, result, None)
                 for ((_, future), _, _, _), result in zip(threads, accepted, strict=True)]
        return done, left

    async def _survey_answer(self, inbound: Inbound, contact: Contact) -> Inbound:
        """A bare "1"–"5" answering a resolved ticket's survey is a score, not a new
        question (channels without buttons answer the survey with a number)."""
        if inbound.kind != "message" or inbound.thread.new_ticket or \
                inbound.text.strip() not in SURVEY_SCORES:
            return inbound
        ticket = await self._match(inbound, contact)
        if ticket is None or ticket.status not in ("resolved", "closed") or not \
                await ScheduledAction.filter(ticket=ticket, kind="survey", status="done").exists():
            return inbound
        return replace(inbound, kind="score", thread=replace(
            inbound.thread, ticket_number=ticket.number, verified=True))

    async def _command(self, inbound: Inbound, now: datetime) -> Accepted:
        """A channel command answered on the spot, without a ticket: "start" greets,
        "status" lists the sender's open tickets. Audited, and a re-delivery is a no-op."""
        name = inbound.text.strip().lower()
        if name not in COMMANDS:
            raise InboundRejected(f"unknown command {name!r} (known: {', '.join(COMMANDS)})")
        actor = f"{inbound.channel}:{inbound.sender.address}"
        if inbound.external_id and await self._command_seen(actor, inbound.external_id, now):
            raise _Duplicate(Accepted(None, duplicate=True))
        contact = await self._contact_for(inbound, now)
        locale = self.services.locale_for(inbound.locale or contact.locale)
        tickets = [{"number": t.number, "subject": t.subject, "status": t.status}
                   for t in await Ticket.filter(contact=contact, status__in=OPEN_STATUSES)
                   .order_by("-id").limit(10)]
        key = COMMANDS[name]
        subject, text = await notices.render(
            self.services, None, key, inbound.channel, now,
            contact.name or inbound.sender.name, locale=locale, tickets=tickets)
        out = Outbound(channel=inbound.channel, recipient=inbound.sender.address, text=text,
                       subject=subject, kind=key, automatic=True,
                       reply_to=(inbound.external_id,) if inbound.external_id else (),
                       extra={"locale": locale, "mailbox": inbound.mailbox})
        row = notices.outbox_row(None, out, now, contact_id=contact.id)
        out = replace(out, outbox_id=(await notices.queue_many([row]))[0])
        await notices.audit(None, actor, "command", {
            "command": name, "external_id": inbound.external_id,
            "tickets": [t["number"] for t in tickets]}, now)
        return Accepted(None, outbound=(out,))

    async def _command_seen(self, actor: str, external_id: str, now: datetime) -> bool:
        recent = await AuditEvent.filter(actor=actor, action="command",
                                         created_at__gte=now - timedelta(days=2)
                                         ).values_list("detail", flat=True)
        return any((d or {}).get("external_id") == external_id for d in recent)

    async def _contact_for(self, inbound: Inbound, now: datetime) -> Contact:
        sender = inbound.sender
        identity = await Identity.filter(
            channel=inbound.channel, address=sender.address
        ).select_related("contact").first()
        if identity is not None:
            contact = identity.contact
            if sender.name and not contact.name:
                contact.name = sender.name
                await contact.save(update_fields=["name"])
            return contact
        contact = await Contact.create(name=sender.name, locale=inbound.locale)
        await Identity.create(contact=contact, channel=inbound.channel, address=sender.address,
                              name=sender.name)
        return contact

    async def _customer_thread(
        self, inbound: Inbound, contact: Contact, now: datetime
    ) -> tuple[Ticket, bool, bool]:
        ticket = None if inbound.thread.new_ticket else await self._match(inbound, contact)
        if ticket is not None and (inbound.automated or inbound.kind in QUIET_KINDS):
            # An auto-reply, a survey score or an edit is recorded on the ticket it
            # belongs to without reopening it or opening a new one.
            ticket.updated_at = now
            await ticket.save(update_fields=["updated_at"])
            return ticket, False, False
        if ticket is None and inbound.kind == "score":
            raise InboundRejected("a survey answer for a ticket the sender does not take "
                                  "part in")
        if ticket is None:
            return await self._open_ticket(inbound, contact, now), True, False
        if ticket.status == "closed":
            return await self._open_ticket(inbound, contact, now, parent=ticket), True, False
        reopened = ticket.status == "resolved"
        back = ticket.status != "open"
        if back:
            await notices.audit(ticket, inbound.sender.address, "reopened" if reopened else
                              "customer_answered", {"from": ticket.status}, now)
            ticket.status = "open"
            ticket.resolved_at = None
            ticket.reopened += int(reopened)
        ticket.last_customer_at = now
        ticket.updated_at = now
        await ticket.save()
        if back:
            await plan.on_customer_back(self.services, ticket, now)
            await notices.card_changed(self.services, ticket, now)
        return ticket, False, reopened

    async def _match(self, inbound: Inbound, contact: Contact) -> Ticket | None:
        """Reply headers, then a named ticket the sender takes part in, then the chat."""
        hint = inbound.thread
        if hint.reply_to and (ticket := await self._by_reply_ids(hint.reply_to)):
            return ticket
        if hint.ticket_number is not None:
            named = await Ticket.get_or_none(number=hint.ticket_number)
            if named is not None and (hint.verified or await self._takes_part(
                    named, contact, inbound)):
                return named
        if hint.conversation:
            return await Ticket.filter(
                channel=inbound.channel, conversation=hint.conversation
            ).order_by("-id").first()
        return None

    async def _by_reply_ids(self, ids: tuple[str, ...]) -> Ticket | None:
        """The ticket of the newest stored message among the platform ids answered."""
        parent = await Message.filter(external_id__in=list(ids)).order_by(
            "-id").first().prefetch_related("ticket")
        return parent.ticket if parent else None

    async def _takes_part(self, ticket: Ticket, contact: Contact, inbound: Inbound) -> bool:
        if ticket.contact_id == contact.id:  # type: ignore[attr-defined]
            return True
        return await Message.filter(ticket=ticket, author_address=inbound.sender.address,
                                    channel=inbound.channel).exists()

    async def _agent_thread(
        self, inbound: Inbound, now: datetime
    ) -> tuple[Contact, Ticket, bool, bool]:
        hint = inbound.thread
        ticket = None
        if hint.ticket_number is not None:
            ticket = await Ticket.get_or_none(number=hint.ticket_number)
        if ticket is None and hint.reply_to:
            ticket = await self._by_reply_ids(hint.reply_to)
        if ticket is None and hint.conversation:
            ticket = await Ticket.get_or_none(console_thread=hint.conversation)
        if ticket is None:
            raise InboundRejected("an agent's message must name its ticket (number or thread)")
        if not inbound.internal and ticket.first_response_at is None:
            ticket.first_response_at = now
        ticket.updated_at = now
        await ticket.save()
        if not inbound.internal and ticket.status != "closed":
            await plan.on_agent_reply(self.services, ticket, now)
        contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
        return contact, ticket, False, False

    async def _reserve_numbers(self, count: int) -> list[int]:
        """The next `count` ticket numbers (the counter row is locked until commit)."""
        start = self.services.settings.gateway.ticket_start
        if not (value := await bulk.increment(Counter, "value", count, name="ticket")):
            await Counter.create(name="ticket", value=start + count - 1)
            return list(range(start, start + count))
        last = value[0]
        if last - count + 1 < start:  # ticket_start was raised
            last = start + count - 1
            await Counter.filter(name="ticket").update(value=last)
        return list(range(last - count + 1, last + 1))

    async def _open_ticket(
        self, inbound: Inbound, contact: Contact, now: datetime, parent: Ticket | None = None
    ) -> Ticket:
        number = (await self._reserve_numbers(1))[0]
        ticket = await Ticket.create(**self._ticket_row(inbound, contact, number, now),
                                     parent=parent)
        detail: dict[str, Any] = {"channel": inbound.channel}
        if parent is not None:
            detail["follows"] = parent.number
        await notices.audit(ticket, inbound.sender.address, "created", detail, now)
        return ticket

    def _ticket_row(self, inbound: Inbound, contact: Contact, number: int,
                    now: datetime) -> dict[str, Any]:
        services, channel = self.services, inbound.channel
        return {
            "number": number, "contact_id": contact.id, "channel": channel,
            "mailbox": inbound.mailbox, "conversation": inbound.thread.conversation,
            "subject": inbound.subject or clean_line(inbound.text.split("\n", 1)[0], 120),
            "locale": services.locale_for(inbound.locale or contact.locale),
            "created_at": now, "updated_at": now, "last_customer_at": now,
            "first_response_due": services.sla.first_response_due(channel, "normal", now),
            "resolution_due": services.sla.resolution_due(channel, "normal", now),
        }

    @staticmethod
    def _message_row(ticket_id: int, inbound: Inbound, now: datetime) -> dict[str, Any]:
        return {
            "ticket_id": ticket_id, "direction": "in", "author_kind": inbound.sender.kind,
            "author_address": inbound.sender.address, "author_name": inbound.sender.name,
            "visibility": "internal" if inbound.internal else "public",
            "channel": inbound.channel, "external_id": inbound.external_id,
            "kind": clean_line(inbound.kind, 32) or "message",
            "subject": inbound.subject, "text": inbound.text, "html": inbound.html,
            "automated": inbound.automated, "raw_source": inbound.raw,
            "created_at": inbound.received_at or now,
        }

    async def _store(self, ticket: Ticket, inbound: Inbound, now: datetime) -> Message:
        message = await Message.create(**self._message_row(ticket.id, inbound, now))
        if inbound.attachments:
            await store_attachments(message, inbound.attachments, self.services.settings)
        return message

    # -- responders, then their actions → outbox rows ------------------------------------

    async def _respond(self, contexts: list[Context]) -> list[Accepted]:
        """Run the responders on stored messages and write what they decided."""
        await prepare_all(self.responders, contexts)
        for ctx in contexts:
            for responder in self.responders:
                if ctx.stopped:
                    break
                if responder.matches(ctx):
                    await responder.handle(ctx)
        planned: list[tuple[int, Outbound, dict[str, Any] | None]] = []
        holds: dict[int, float] = {}
        for index, ctx in enumerate(contexts):
            for action in ctx.actions:
                try:
                    if isinstance(action, Reply):
                        out, message = await self._reply(ctx, action)
                        planned.append((index, out, message))
                        if action.hold_seconds:
                            holds[id(out)] = action.hold_seconds
                    elif isinstance(action, NotifyAgents):
                        planned.append((index, await self._notice(ctx, action), None))
                except TemplateError as exc:
                    log.error("shipped template failed, %s not sent: %s", action, exc)
                    await notices.audit(ctx.ticket, "gateway", "template.failed",
                                        {"action": repr(action), "error": str(exc)}, ctx.now)
        stored = iter(await bulk.insert_ids(Message,
                                            [m for _, _, m in planned if m is not None]))
        queued: list[tuple[int, Outbound]] = []
        rows: list[dict[str, Any]] = []
        for index, out, message in planned:
            ctx = contexts[index]
            if out.audience == "agents" and not notices.has_console(self.services):
                continue  # logged only
            queued.append((index, out))
            rows.append(notices.outbox_row(
                ctx.ticket, out, ctx.now,
                due=ctx.now + timedelta(seconds=holds.get(id(out), 0)),
                message_id=next(stored) if message is not None else None,
                contact_id=ctx.contact.id if out.audience == "customer" else None))
        opened = [ctx.ticket for ctx in contexts if ctx.new_ticket]
        if opened:  # progress updates and SLA warnings, in the same transaction
            await plan.on_new_ticket(self.services, opened, contexts[0].now)
        mirrors = self._mirrors(contexts, planned)
        queued += [(index, out) for index, out in mirrors]
        rows += [notices.outbox_row(contexts[index].ticket, out, contexts[index].now)
                 for index, out in mirrors]
        if (dispatcher := self.dispatcher) is not None:  # it takes them from memory
            rows = [leased_for_hand_over(row, contexts[index].now)
                    if row["next_attempt_at"] <= contexts[index].now
                    and dispatcher.takes(row["channel"]) else row
                    for (index, _), row in zip(queued, rows, strict=True)]
        ids = await notices.queue_many(rows)
        outbox_ids = {id(out): row_id for (_, out), row_id in zip(queued, ids, strict=True)}
        ready: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in contexts]
        for (index, _), row_id, row in zip(queued, ids, rows, strict=True):
            if row.get("status") == "sending":
                ready[index].append((row_id, row))
        outbound: list[list[Outbound]] = [[] for _ in contexts]
        for index, out, _ in planned:
            row_id = outbox_ids.get(id(out))
            outbound[index].append(replace(out, outbox_id=row_id) if row_id else out)
        return [Accepted(ctx.ticket.number, ctx.ticket.id, ctx.message.id,
                         new_ticket=ctx.new_ticket, reopened=ctx.reopened,
                         outbound=tuple(outbound[i]), queued=tuple(ready[i]))
                for i, ctx in enumerate(contexts)]

    def _mirrors(self, contexts: list[Context],
                 planned: list[tuple[int, Outbound, dict[str, Any] | None]]
                 ) -> list[tuple[int, Outbound]]:
        """Copies for the console, so a ticket's thread there is the whole conversation:
        the customer's later messages (the first is on the card) and every automatic
        answer. An agent's own words are not copied back: they are in the thread."""
        agents = self.services.settings.agents
        if not agents.console:
            return []
        copies: list[tuple[int, str, str, str]] = [
            (index, "customer", ctx.inbound.sender.name or ctx.inbound.sender.address,
             _excerpt(ctx.inbound.text) or f"({len(ctx.inbound.attachments)} file(s))")
            for index, ctx in enumerate(contexts)
            if ctx.inbound.sender.is_customer and not ctx.new_ticket]
        copies += [(index, "bot", out.kind, out.text)
                   for index, out, _ in planned if out.audience == "customer" and out.automatic]
        return [(index, Outbound(
            channel=agents.console, recipient=agents.channel, text=text, audience="agents",
            ticket_number=contexts[index].ticket.number, kind="mirror", automatic=True,
            extra={"from": who, "name": name,
                   "customer_channel": contexts[index].ticket.channel}))
            for index, who, name, text in copies]

    async def _recipient(self, ctx: Context) -> str:
        ticket, inbound = ctx.ticket, ctx.inbound
        if inbound.sender.is_customer and inbound.channel == ticket.channel:
            return inbound.sender.address
        return await notices.customer_address(ticket)

    async def _thread_ids(self, ctx: Context) -> tuple[str, ...]:
        """Platform ids an answer threads under: the first message and the latest ones."""
        inbound, ticket = ctx.inbound, ctx.ticket
        if ctx.new_ticket and inbound.channel == ticket.channel:
            return (inbound.external_id,) if inbound.external_id else ()
        return await notices.thread_ids(ticket)

    async def _reply(self, ctx: Context, action: Reply) -> tuple[Outbound, dict[str, Any]]:
        """The answer to the customer and the message row that records it."""
        ticket = ctx.ticket
        if action.template is not None:
            subject, text = await notices.render(
                self.services, ticket, action.template, ticket.channel, ctx.now,
                ctx.contact.name, **{"text": ctx.inbound.text, **action.extra})
            kind = action.template
        else:
            subject, text, kind = "", action.text or "", "reply"
        author = "bot" if action.automatic else "agent"
        message = {
            "ticket_id": ticket.id, "direction": "out", "author_kind": author,
            "channel": ticket.channel,
            "author_address": ctx.inbound.sender.address if author == "agent" else "",
            "author_name": ctx.inbound.sender.name if author == "agent" else "",
            "kind": kind, "subject": subject, "text": text, "automated": action.automatic,
            "created_at": ctx.now}
        extra: dict[str, Any] = {"locale": ticket.locale, "mailbox": ticket.mailbox,
                                 "ticket_subject": ticket.subject}
        if author == "agent" and ctx.inbound.attachments:  # the agent's files go on too
            extra["attachments"] = await Attachment.filter(
                message_id=ctx.message.id, storage__in=["disk", "db"]).values_list(
                    "id", flat=True)
        out = Outbound(channel=ticket.channel, recipient=await self._recipient(ctx), text=text,
                       subject=subject, ticket_number=ticket.number, kind=kind,
                       automatic=action.automatic, reply_to=await self._thread_ids(ctx),
                       extra=extra)
        return out, message

    async def _notice(self, ctx: Context, action: NotifyAgents) -> Outbound:
        text = _excerpt(ctx.inbound.text)
        return await notices.agents_notice(
            self.services, ctx.ticket, action.template, ctx.now,
            customer_name=ctx.contact.name or ctx.inbound.sender.address, text=text,
            **action.extra)
