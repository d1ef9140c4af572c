"""Threading: which contact and which ticket each message belongs to, and storing it.

One implementation for one message or many (`Threading.thread`): the lookups run once
for all of them (one query per kind of lookup), then each message is decided on its own,
then the writes run once for all of them. Messages handed together never depend on each
other (see `gateway.pipeline.receive`), so deciding them one by one after reading once is
the same as reading before each.

Matching a customer's message: reply ids (email headers, a Telegram reply) → a ticket
she names by number, when she takes part in it (or her proof is verified) → her chat's
newest ticket → a new ticket. A reply to a resolved or pending ticket puts it back on us;
to a closed one it opens a new ticket that links back. Auto-replies, survey scores and
edits are recorded on their ticket without changing it. An agent's message names its
ticket by number, by reply ids or by the ticket's console thread.

Example:
    >>> outcomes = await threading.thread([inbound], now)          # doctest: +SKIP
    >>> outcomes[0].ticket.number                                   # doctest: +SKIP
    1001
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from gateway.core.messages import Accepted, Inbound, InboundRejected
from gateway.core.responder import Arrival, Context, Responder
from gateway.core.text import clean_line
from gateway.desk import notices
from gateway.services import Services
from gateway.store import bulk
from gateway.store.attachments import store_attachments
from gateway.store.models import AuditEvent, Contact, Counter, Identity, Message, Ticket

QUIET_KINDS = frozenset({"score", "edit"})
COMMAND_DEDUP = timedelta(days=2)  # how long a channel command's id is remembered
MAX_TICKET_NUMBER = 2**31 - 1  # ticket numbers are the database's int


# What threading made of one message: its context, ready for the responders, or the
# Accepted of a re-delivery.
Outcome = Context | Accepted


class Threading:
    """Contacts, tickets and stored messages for a run of messages (see the module)."""

    def __init__(self, services: Services, responders: Sequence[Responder]) -> None:
        self.services = services
        self.recognisers = [r for r in responders if hasattr(r, "recognise")]
        # The channel commands some responder answers (`commands`: e.g. start, status).
        self.commands = frozenset(name for r in responders
                                  for name in getattr(r, "commands", ()))

    async def thread(self, inbounds: list[Inbound], now: datetime) -> list[Outcome]:
        """Every message of the run threaded and stored, in order."""
        outcomes: list[Outcome | None] = list(await self._duplicates(inbounds))
        fresh = [i for i, seen in enumerate(outcomes) if seen is None]
        if not fresh:
            return outcomes  # type: ignore[return-value]
        run = _Run(self, [inbounds[i] for i in fresh], now)
        for index, outcome in zip(fresh, await run.store(), strict=True):
            outcomes[index] = outcome
        return outcomes  # type: ignore[return-value]

    async def _duplicates(self, inbounds: list[Inbound]) -> list[Accepted | None]:
        """Re-deliveries: the Accepted of what was stored before (None: a new message)."""
        ids = [i.external_id for i in inbounds if i.external_id and i.kind != "command"]
        seen: dict[tuple[str, str], dict[str, Any]] = {}
        if ids:
            for row in await bulk.where_in(
                    Message, ("channel", "external_id", "id", "ticket_id"),
                    channel={i.channel for i in inbounds}, external_id=ids):
                seen[(row["channel"], row["external_id"])] = row
        numbers: dict[int, int] = {}
        if seen:  # the ticket numbers they were stored under
            numbers = {row["id"]: row["number"] for row in await bulk.where_in(
                Ticket, ("id", "number"), id={r["ticket_id"] for r in seen.values()})}
        found: list[Accepted | None] = []
        for inbound in inbounds:
            if inbound.kind == "command":
                found.append(Accepted(None, duplicate=True)
                             if await self._command_seen(inbound) else None)
            elif row := seen.get((inbound.channel, inbound.external_id or "")):
                found.append(Accepted(numbers.get(row["ticket_id"]), row["ticket_id"],
                                      row["id"], duplicate=True))
            else:
                found.append(None)
        return found

    async def _command_seen(self, inbound: Inbound) -> bool:
        """A channel command is not a message of a ticket: its id is in the audit log."""
        if not inbound.external_id:
            return False
        actor = f"{inbound.channel}:{inbound.sender.address}"
        recent = await AuditEvent.filter(
            actor=actor, action="command",
            created_at__gte=self.services.clock.now() - COMMAND_DEDUP
        ).values_list("detail", flat=True)
        return any((d or {}).get("external_id") == inbound.external_id for d in recent)


class _Run:
    """One run of messages, from their lookups to their stored rows."""

    def __init__(self, threading: Threading, inbounds: list[Inbound], now: datetime) -> None:
        self.services = threading.services
        self.recognisers = threading.recognisers
        self.commands = threading.commands
        self.inbounds = inbounds
        self.now = now
        self.tickets: dict[int, Ticket] = {}

    async def store(self) -> list[Outcome]:
        contacts, first_time = await self._contacts()
        matched = await self._match_all(contacts)
        # A message refused here raises, and its savepoint takes back its new contact;
        # messages stored together are never refused (see `receive._together_ok`).
        plans = [(*await self._decide(inbound, contact, ticket), contact)
                 for inbound, contact, ticket in zip(self.inbounds, contacts, matched,
                                                     strict=True)]
        return list(await self._write([(i, c, t, how) for i, t, how, c in plans], first_time))

    # -- contacts ----------------------------------------------------------------------

    async def _contacts(self) -> tuple[list[Contact], set[int]]:
        """Each message's contact: the sender's, or for an agent the ticket's (filled in
        when its ticket is found). New senders get a contact and an identity here."""
        customers = [i for i in self.inbounds if i.sender.kind != "agent"]
        known: dict[tuple[str, str], Contact] = {}
        if customers and (identities := await bulk.where_in(
                Identity, ("channel", "address", "contact_id"),
                channel={i.channel for i in customers},
                address={i.sender.address for i in customers})):
            rows = {row["id"]: row for row in await bulk.where_in(
                Contact, ("id", "name", "locale", "created_at"),
                id={row["contact_id"] for row in identities})}
            for row in identities:
                if (contact := rows.get(row["contact_id"])) is not None:
                    known[(row["channel"], row["address"])] = Contact._init_from_db(**contact)
        new = [i for i in customers if (i.channel, i.sender.address) not in known]
        made = await bulk.insert(Contact, [
            {"name": i.sender.name, "locale": i.locale, "created_at": self.now} for i in new])
        await bulk.insert_rows(Identity, [
            {"contact_id": contact.id, "channel": i.channel, "address": i.sender.address,
             "name": i.sender.name, "created_at": self.now}
            for i, contact in zip(new, made, strict=True)])
        known.update({(i.channel, i.sender.address): c for i, c in zip(new, made, strict=True)})
        for inbound in customers:  # someone we knew without a name tells us hers
            contact = known[(inbound.channel, inbound.sender.address)]
            if inbound.sender.name and not contact.name:
                contact.name = inbound.sender.name
                await contact.save(update_fields=["name"])
        return ([known.get((i.channel, i.sender.address), _NO_CONTACT) for i in self.inbounds],
                {id(contact) for contact in made})

    # -- tickets -----------------------------------------------------------------------

    async def _match_all(self, contacts: list[Contact]) -> list[Ticket | None]:
        """Each message's ticket as it is now (before anything changes it)."""
        hints = [i.thread for i in self.inbounds]
        refs = {r for h in hints if not h.new_ticket for r in h.reply_to}
        answered: dict[str, tuple[int, int]] = {}  # reply id → (message id, ticket id)
        if refs:
            for row in await Message.filter(external_id__in=list(refs)).values(
                    "external_id", "id", "ticket_id"):
                if row["id"] > answered.get(row["external_id"], (0, 0))[0]:
                    answered[row["external_id"]] = (row["id"], row["ticket_id"])
        chats = {(i.channel, i.thread.conversation) for i in self.inbounds
                 if i.thread.conversation and not i.thread.new_ticket
                 and i.sender.kind != "agent"}
        by_chat = await bulk.newest(Ticket, ("channel", "conversation"),
                                    channel={c for c, _ in chats},
                                    conversation={v for _, v in chats}) if chats else {}
        # (a number no ticket can have, such as a forged 10**20, names none: the database
        # would refuse to compare it)
        numbers = {h.ticket_number for h in hints if h.ticket_number is not None
                   and 0 < h.ticket_number <= MAX_TICKET_NUMBER}
        threads = {i.thread.conversation for i in self.inbounds
                   if i.sender.kind == "agent" and i.thread.conversation}
        wanted = {t for _, t in answered.values()} | set(by_chat.values())
        for where in ({"id__in": list(wanted)}, {"number__in": list(numbers)},
                      {"console_thread__in": list(threads)}):
            if next(iter(where.values())):
                for found in await Ticket.filter(**where):
                    self.tickets.setdefault(found.id, found)
        return [await self._match(inbound, contact, answered, by_chat)
                for inbound, contact in zip(self.inbounds, contacts, strict=True)]

    def _by_id(self, ticket_id: int | None) -> Ticket | None:
        return self.tickets.get(ticket_id) if ticket_id is not None else None

    def _by(self, field: str, value: Any) -> Ticket | None:
        return next((t for t in self.tickets.values() if getattr(t, field) == value), None)

    async def _match(self, inbound: Inbound, contact: Contact,
                     answered: dict[str, tuple[int, int]],
                     by_chat: dict[tuple[Any, ...], int]) -> Ticket | None:
        hint = inbound.thread
        if hint.new_ticket and inbound.sender.kind != "agent":
            return None
        replied = [answered[r] for r in hint.reply_to if r in answered]
        by_reply = self._by_id(max(replied)[1]) if replied else None
        named = self._by("number", hint.ticket_number) if hint.ticket_number else None
        if inbound.sender.kind == "agent":
            return named or by_reply or (self._by("console_thread", hint.conversation)
                                         if hint.conversation else None)
        if by_reply is not None:
            return by_reply
        if named is not None and (hint.verified or await _takes_part(named, contact,
                                                                      inbound)):
            return named
        return self._by_id(by_chat.get((inbound.channel, hint.conversation or "")))

    async def _decide(self, inbound: Inbound, contact: Contact, ticket: Ticket | None
                      ) -> tuple[Inbound, Ticket | None, str]:
        """(the message as read, its ticket, how it joins it): "new", "follows" (a new
        ticket after a closed one), "back" (on a resolved or pending ticket), "quiet",
        "continues", "agent" or "command"."""
        if inbound.kind == "command":
            if inbound.text.strip().lower() not in self.commands:
                raise InboundRejected(f"unknown command {inbound.text.strip()!r} (known: "
                                      f"{', '.join(sorted(self.commands)) or 'none'})")
            return inbound, None, "command"
        if inbound.sender.kind == "agent":
            if ticket is None:
                raise InboundRejected("an agent's message must name its ticket (number or "
                                      "thread)")
            return inbound, ticket, "agent"
        for recogniser in self.recognisers:
            if ticket is not None and (again := await recogniser.recognise(  # type: ignore[attr-defined]
                    Arrival(inbound, contact, ticket, self.services, self.now))) is not None:
                inbound = again
        if ticket is not None and (inbound.automated or inbound.kind in QUIET_KINDS):
            return inbound, ticket, "quiet"
        if ticket is None and inbound.kind == "score":
            raise InboundRejected("a survey answer for a ticket the sender does not take "
                                  "part in")
        if ticket is None:
            return inbound, None, "new"
        if ticket.status == "closed":
            return inbound, ticket, "follows"
        return inbound, ticket, "continues" if ticket.status == "open" else "back"

    # -- writing -------------------------------------------------------------------------

    async def _write(self, plans: list[tuple[Inbound, Contact, Ticket | None, str]],
                     first_time: set[int]) -> list[Context]:
        now = self.now
        opening = [(inbound, contact, ticket) for inbound, contact, ticket, how in plans
                   if how in ("new", "follows")]
        numbers = await self._reserve_numbers(len(opening)) if opening else []
        made = iter(await bulk.insert(Ticket, [
            self._ticket_row(inbound, contact, number, parent)
            for (inbound, contact, parent), number in zip(opening, numbers, strict=True)]))
        await self._touch([t for _, _, t, how in plans if how == "continues"])
        contexts: list[Context] = []
        audits: list[dict[str, Any]] = []
        for inbound, contact, ticket, how in plans:
            previous = None
            if how in ("new", "follows"):
                parent, ticket = ticket, next(made)
                detail: dict[str, Any] = {"channel": inbound.channel}
                if parent is not None:
                    detail["follows"] = parent.number
                audits.append(notices.audit_row(ticket, inbound.sender.address, "created",
                                                detail, now))
            elif how == "back" and ticket.status != "open":  # type: ignore[union-attr]
                previous = await self._put_back(inbound, ticket)  # type: ignore[arg-type]
            elif how == "back":  # an earlier message of this run put it back already
                await self._touch([ticket])
            elif how in ("quiet", "agent"):
                await self._quiet_or_agent(inbound, ticket, how)  # type: ignore[arg-type]
            if how == "agent":
                contact = await Contact.get(id=ticket.contact_id)  # type: ignore[union-attr]
            contexts.append(Context(
                ticket=ticket, contact=contact, now=now, services=self.services,
                inbound=inbound, new_ticket=how in ("new", "follows"),
                reopened=previous == "resolved", previous_status=previous,
                new_contact=id(contact) in first_time))
        await notices.audit_many(audits)
        stored = [ctx for ctx in contexts if ctx.ticket is not None]
        messages = await bulk.insert(Message, [
            _message_row(ctx.ticket.id, ctx.inbound, now) for ctx in stored])  # type: ignore[union-attr]
        for ctx, message in zip(stored, messages, strict=True):
            ctx.message = message
            if ctx.inbound.attachments:
                await store_attachments(message, ctx.inbound.attachments,
                                        self.services.settings)
        return contexts

    async def _touch(self, continuing: list[Ticket | None]) -> None:
        """Tickets a customer wrote on again: when she last wrote."""
        tickets = [t for t in continuing if t is not None]
        if tickets:
            await Ticket.filter(id__in=[t.id for t in tickets]).update(
                last_customer_at=self.now, updated_at=self.now)
            for ticket in tickets:
                ticket.last_customer_at = ticket.updated_at = self.now

    async def _put_back(self, inbound: Inbound, ticket: Ticket) -> str:
        """The customer wrote on a resolved or pending ticket: it is on us again."""
        before, now = ticket.status, self.now
        reopened = before == "resolved"
        await notices.audit(ticket, inbound.sender.address,
                            "reopened" if reopened else "customer_answered",
                            {"from": before}, now)
        ticket.status, ticket.resolved_at = "open", None
        ticket.reopened += int(reopened)
        ticket.last_customer_at = ticket.updated_at = now
        await ticket.save()
        await notices.card_changed(self.services, ticket, now)
        return before

    async def _quiet_or_agent(self, inbound: Inbound, ticket: Ticket, how: str) -> None:
        ticket.updated_at = self.now
        if how == "quiet":
            await ticket.save(update_fields=["updated_at"])
            return
        if not inbound.internal and ticket.first_response_at is None:
            ticket.first_response_at = self.now
        await ticket.save()

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

    def _ticket_row(self, inbound: Inbound, contact: Contact, number: int,
                    parent: Ticket | None) -> dict[str, Any]:
        services, channel, now = self.services, inbound.channel, self.now
        row = {
            "number": number, "contact_id": contact.id, "channel": channel,
            "mailbox": inbound.mailbox, "conversation": inbound.thread.conversation,
            "subject": inbound.subject or clean_line(inbound.text.split("\n", 1)[0], 120),
            "locale": services.locale_for(inbound.locale or contact.locale),
            "created_at": now, "updated_at": now, "last_customer_at": now,
            "first_response_due": services.sla.first_response_due(channel, "normal", now),
            "resolution_due": services.sla.resolution_due(channel, "normal", now),
        }
        if parent is not None:
            row["parent_id"] = parent.id
        return row


# An agent's message has no contact of its own: it gets its ticket's.
_NO_CONTACT = Contact(name="")


async def _takes_part(ticket: Ticket, contact: Contact, inbound: Inbound) -> bool:
    if ticket.contact_id == contact.id:  # type: ignore[attr-defined]
        return True
    return await Message.filter(ticket=ticket, author_address=inbound.sender.address,
                                channel=inbound.channel).exists()


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

