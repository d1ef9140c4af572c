"""The outbox dispatcher: delivers queued messages through the adapters, durably.

Rows are claimed in a batch (`gateway.store.claims`: `FOR UPDATE SKIP LOCKED` on
PostgreSQL, so several gateway processes share the work) and leased: a process that dies
mid-send leaves rows whose lease runs out and which are claimed again. Delivery is
therefore at-least-once — a crash between send and commit may repeat a send, never drop
one.

Transient failures are retried with backoff and jitter (`gateway.core.backoff`), never
sooner than the platform's retry-after (which also pauses the whole channel); permanent
failures, and transient ones past `max_attempts`, end in the `dead` state, recorded on
the ticket and told to the agents' console.

Example:
    >>> outbox = Outbox({"telegram": adapter}, services)   # doctest: +SKIP
    >>> await outbox.dispatch_once()                        # doctest: +SKIP
    1
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from gateway.core.adapter import Adapter
from gateway.core.backoff import Backoff
from gateway.core.messages import Outbound, PermanentError, TransientError
from gateway.core.ratelimit import RateLimiter
from gateway.desk.console import card as ticket_card
from gateway.desk.notices import delivery_failed
from gateway.outbox.recorder import Recorder
from gateway.services import Services
from gateway.store import bulk
from gateway.store.attachments import load_attachments
from gateway.store.claims import claim_due
from gateway.store.models import AuditEvent, Message, OutboxItem, Ticket
from gateway.store.outbox_rows import (
    HAND_OVER_LEASE,
    HAND_OVER_SEND,
    OPEN_CARD,
    REDRAW_CARD,
    attachment_ids,
    card_wanted,
    outbound_of,
)

log = logging.getLogger("centralita.outbox")

SENT_FIELDS = ["status", "sent_at", "platform_id", "lease_until", "last_error"]
MAX_HANDED = 10_000  # rows kept in memory for the next pass; beyond, they are read back


@dataclass(frozen=True)
class Claimed:
    """One claimed outbox row: what sending it and recording the outcome need."""

    id: int
    ticket_id: int | None
    message_id: int | None
    channel: str
    audience: str
    recipient: str
    kind: str
    subject: str
    text: str
    automatic: bool
    payload: dict[str, Any]
    attempts: int


CLAIMED_FIELDS = [f.name for f in fields(Claimed)]
ROW_FIELDS = [name for name in CLAIMED_FIELDS if name not in ("id", "attempts")]


@dataclass
class _Outcome:
    item: Claimed
    platform_id: str | None = None
    error: str | None = None
    permanent: bool = False
    retry_after: float | None = None


class Outbox:
    """Claims due rows, sends them through the adapters, records what happened."""

    def __init__(self, adapters: Mapping[str, Adapter], services: Services, *,
                 rng: Callable[[], float] = random.random) -> None:
        self.adapters = dict(adapters)
        self.services = services
        self.settings = services.settings.outbox
        self.clock = services.clock
        self.retries = Backoff(self.settings.backoff_base.total_seconds(),
                               self.settings.backoff_max.total_seconds(), rng=rng)
        self._wake = asyncio.Event()
        self._limiters: dict[str, RateLimiter] = {}
        self._handed: dict[int, dict[str, Any]] = {}
        self._search_at = 0.0
        self._search_now = True  # rows were queued in the database only (`wake`)
        # Cards posted by this process, ticket id → thread, until their record is written:
        # a ticket's next notices go into that thread without waiting for it.
        self._cards: dict[int, str] = {}

    def takes(self, channel: str) -> bool:
        return channel in self.adapters

    def hand_over(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Rows the pipeline has just committed (`leased_for_hand_over`), as it wrote
        them: the next pass sends them without a claim and without reading them back.
        Only a shortcut: a row this memory drops is claimed from the database when its
        short lease runs out.

        Example: `gateway = Gateway(services, dispatcher=outbox)`
        """
        for row_id, row in rows:
            if len(self._handed) < MAX_HANDED:
                self._handed[row_id] = row
        self._wake.set()

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._search_now = True
        self._wake.set()

    def limiter(self, channel: str) -> RateLimiter:
        if channel not in self._limiters:
            rate = self.settings.rate.get(channel, 10.0)
            self._limiters[channel] = RateLimiter(rate, self.clock)
        return self._limiters[channel]

    def backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        """When a failed row is tried again: never sooner than the platform's retry-after."""
        return timedelta(seconds=self.retries.delay(attempts, retry_after))

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; idle waits end early on `wake()`.

        Here a pass records what it sent in the background (`Recorder`): the next pass
        sends the rows handed over meanwhile instead of queueing behind that record for
        the database, where a pipeline batch may hold it for tens of milliseconds.
        """
        recorder = Recorder(self._record)
        try:
            while not stop.is_set():
                try:
                    done = await self._pass(None, recorder.add)
                except Exception:
                    log.exception("outbox pass failed; retrying after the poll interval")
                    done = 0
                if done == 0:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(),
                                               self.settings.poll_interval.total_seconds())
        finally:
            await recorder.close()

    async def dispatch_once(self, only: Collection[int] | None = None) -> int:
        """One pass: claim a batch of due rows (or only the rows `only`), deliver them,
        record outcomes; returns how many rows were handled."""
        self._search_now = True
        return await self._pass(only, self._record)

    async def _pass(self, only: Collection[int] | None,
                    record: Callable[[list[_Outcome]], Awaitable[None]]) -> int:
        now = self.clock.now()
        items = await self._claim_handed(now, only)
        # The database is searched (retries, the scheduler's rows, rows of other
        # processes or from before a restart) when `wake` asks, or once per poll
        # interval: not after every pass that emptied the handed rows (one search per
        # pipeline batch, for nothing, while messages keep coming).
        search = self._search_now or self.clock.monotonic() >= self._search_at
        if len(items) < self.settings.batch and search:
            self._search_now = False
            self._search_at = self.clock.monotonic() + self.settings.poll_interval.total_seconds()
            items += await self._claim(now, only, self.settings.batch - len(items))
        by_channel: dict[str, list[Claimed]] = defaultdict(list)
        for item in items:
            by_channel[item.channel].append(item)
        if len(by_channel) == 1:
            # No task to start. A channel that never waits (in memory) then sends pass
            # after pass without yielding until the handed rows are gone; a pass that
            # yielded once per 50 rows fell behind batches of 64 handed over.
            await self._deliver_channel(next(iter(by_channel.values())), record)
        else:
            await asyncio.gather(*(self._deliver_channel(rows, record)
                                   for rows in by_channel.values()))
        return len(items)

    async def _claim_handed(self, now: datetime, only: Collection[int] | None
                            ) -> list[Claimed]:
        """Handed-over rows, already leased to this process when they were written; one
        whose lease is nearly over is left to the database (another pass may take it)."""
        ids = [i for i in self._handed if only is None or i in only][:self.settings.batch]
        rows = [(i, self._handed.pop(i)) for i in ids]
        return [Claimed(id=i, **{name: row[name] for name in ROW_FIELDS},
                        attempts=row["attempts"])
                for i, row in rows if row["lease_until"] - now > HAND_OVER_LEASE - HAND_OVER_SEND]

    async def _claim(self, now: datetime, only: Collection[int] | None,
                     limit: int) -> list[Claimed]:
        if not self.adapters:
            return []
        among: dict[str, Any] = {"channel__in": list(self.adapters)}
        if only is not None:
            among["id__in"] = list(only)
        ids = await claim_due(OutboxItem, due="next_attempt_at", claimed="sending", now=now,
                              lease=self.settings.lease, limit=limit, **among)
        if not ids:
            return []
        rows = await OutboxItem.filter(id__in=ids).order_by("id").values(*CLAIMED_FIELDS)
        return [Claimed(**row) for row in rows]

    async def _deliver_channel(self, items: list[Claimed],
                               record: Callable[[list[_Outcome]], Awaitable[None]]) -> None:
        adapter = self.adapters[items[0].channel]
        limiter = self.limiter(items[0].channel)
        threads = await self._console_threads(items)
        outcomes = []
        for item in items:
            await limiter.acquire()
            outcome = await self._send(adapter, item, threads)
            if outcome.retry_after:
                limiter.pause(outcome.retry_after)
            if outcome.platform_id and item.ticket_id and item.audience == "agents" and \
                    card_wanted(item.kind, item.payload or {}) == OPEN_CARD and \
                    not threads.get(item.ticket_id):  # the card it posted opens the thread
                threads[item.ticket_id] = self._cards[item.ticket_id] = outcome.platform_id
            outcomes.append(outcome)
        await record(outcomes)

    async def _console_threads(self, items: list[Claimed]) -> dict[int, str | None]:
        """Where each ticket's card is on the console now (None: not posted yet)."""
        tickets = {i.ticket_id for i in items if i.audience == "agents" and i.ticket_id}
        if not tickets:
            return {}
        found = dict(await Ticket.filter(id__in=list(tickets)).values_list(
            "id", "console_thread"))
        for ticket_id in tickets:
            if found.get(ticket_id):
                self._cards.pop(ticket_id, None)  # recorded: the database knows it now
            elif ticket_id in self._cards:
                found[ticket_id] = self._cards[ticket_id]
        if len(self._cards) > MAX_HANDED:
            self._cards.clear()
        return found

    async def _message(self, item: Claimed, threads: dict[int, str | None]
                       ) -> Outbound | None:
        """The typed message a claimed row delivers, with the ticket's console thread and,
        where the row draws it, its card as it is now (None: nothing to deliver)."""
        payload = item.payload or {}
        files = await load_attachments(attachment_ids(payload))
        thread = threads.get(item.ticket_id) if item.ticket_id else None
        card = None
        number = payload.get("ticket")
        wanted = card_wanted(item.kind, payload) if item.audience == "agents" else ""
        if number is not None and ((wanted == OPEN_CARD and not thread) or
                                   (wanted == REDRAW_CARD and thread)):
            card = await ticket_card(self.services, number)
        elif item.audience == "agents" and number is not None and not thread:
            if wanted == REDRAW_CARD:  # not posted yet: it will be drawn as it is then
                return None
            # A ticket's notices go into its thread, which its card opens.
            raise TransientError(f"the card of ticket #{number} is not posted yet")
        return outbound_of(vars(item), outbox_id=item.id, attachments=files, thread=thread,
                           card=card)

    async def _send(self, adapter: Adapter, item: Claimed,
                    threads: dict[int, str | None]) -> _Outcome:
        try:
            message = await self._message(item, threads)
            if message is None:  # nothing to show (yet): done
                return _Outcome(item)
            receipt = await adapter.send(message)
        except PermanentError as exc:
            return _Outcome(item, error=exc.reason, permanent=True)
        except TransientError as exc:
            return _Outcome(item, error=exc.reason, retry_after=exc.retry_after)
        except Exception as exc:  # an adapter bug must not stop the queue
            log.exception("adapter %s failed on outbox row %s", item.channel, item.id)
            return _Outcome(item, error=f"{type(exc).__name__}: {exc}")
        return _Outcome(item, platform_id=receipt.platform_id)

    async def _record(self, outcomes: list[_Outcome]) -> None:
        now = self.clock.now()
        delivered = [o for o in outcomes if o.error is None]
        async with in_transaction():
            # one executemany per batch, not a statement per row
            await bulk.update(OutboxItem, SENT_FIELDS, [
                {"id": o.item.id, "status": "sent", "sent_at": now,
                 "platform_id": o.platform_id, "lease_until": None, "last_error": None}
                for o in delivered])
            await bulk.update(Message, ["external_id"], [
                {"id": o.item.message_id, "external_id": o.platform_id}
                for o in delivered if o.platform_id and o.item.message_id])
            for o in delivered:  # a new ticket's card: its thread is the console's
                if o.item.audience == "agents" and o.platform_id and o.item.ticket_id and \
                        card_wanted(o.item.kind, o.item.payload or {}) == OPEN_CARD:
                    await Ticket.filter(id=o.item.ticket_id, console_thread__isnull=True
                                        ).update(console_thread=o.platform_id)
            for outcome in outcomes:
                if outcome.error is not None:
                    await self._failed(outcome, now)

    async def _failed(self, outcome: _Outcome, now: datetime) -> None:
        item, error = outcome.item, outcome.error or ""
        if outcome.permanent or item.attempts >= self.settings.max_attempts:
            await self._give_up(item, error, now)
            return
        await OutboxItem.filter(id=item.id).update(
            status="pending", lease_until=None, last_error=error,
            next_attempt_at=now + self.backoff(item.attempts, outcome.retry_after))
        log.info("outbox row %s: %s; retry %d", item.id, error, item.attempts)

    async def _give_up(self, item: Claimed, reason: str, now: datetime) -> None:
        await OutboxItem.filter(id=item.id).update(status="dead", lease_until=None,
                                                   last_error=reason)
        log.warning("outbox row %s to %s:%s is dead: %s", item.id, item.channel,
                    item.recipient, reason)
        ticket = await Ticket.get_or_none(id=item.ticket_id)
        await AuditEvent.create(ticket=ticket, actor="outbox", action="delivery.failed",
                                detail={"outbox": item.id, "channel": item.channel,
                                        "kind": item.kind, "reason": reason,
                                        "attempts": item.attempts}, created_at=now)
        if ticket is None or item.audience != "customer":
            return
        await delivery_failed(self.services, ticket, item.channel, reason, now)
        self._search_now = True  # the agents' notice just queued
