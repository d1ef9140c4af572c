"""The outbox dispatcher: delivers queued messages through the adapters, durably.

Rows are claimed in a batch (with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
gateway processes share the work) and leased: a process that dies mid-send leaves rows
whose lease runs out and which are claimed again. Delivery is therefore at-least-once —
a crash between send and commit may repeat a send, never drop one.

Transient failures are retried with exponential backoff and jitter, never sooner than the
platform's retry-after (which also pauses the whole channel); permanent failures, and
transient ones past `max_attempts`, end in the `dead` state, recorded on the ticket and
told to the agents' console.

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

from tortoise import connections
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gateway.core.adapter import Adapter
from gateway.core.messages import Outbound, PermanentError, TransientError
from gateway.desk.notices import delivery_failed
from gateway.services import Services
from gateway.store import bulk
from gateway.store.attachments import load_attachments
from gateway.store.models import AuditEvent, Message, OutboxItem, Ticket

log = logging.getLogger("centralita.outbox")

SENT_FIELDS = ["status", "sent_at", "platform_id", "lease_until", "last_error"]
CARD_KINDS = frozenset({"new_ticket"})  # agents' notices that open a ticket's console thread
RECORD_LINGER = 0.05  # seconds sent rows wait to be recorded together (see _Recorder)
MAX_HANDED = 10_000  # rows kept in memory for the next pass; beyond, they are read back
# Rows handed over by the pipeline are written already leased for this long: sent from
# memory within HAND_OVER_SEND of it, or else (a backlog, a crash) claimed from the
# database once the lease runs out.
HAND_OVER_LEASE = timedelta(seconds=15)
HAND_OVER_SEND = timedelta(seconds=10)


def leased_for_hand_over(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An outbox row (see `notices.outbox_row`) written as claimed, for `hand_over`."""
    row.update(status="sending", lease_until=now + HAND_OVER_LEASE, attempts=1)
    return row


class RateLimiter:
    """A token bucket on the gateway's clock: `rate` messages a second, bursts of `burst`."""

    def __init__(self, rate: float, clock_monotonic: Callable[[], float],
                 sleep: Callable[[float], object], burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self._tokens = self.burst
        self._monotonic = clock_monotonic
        self._sleep = sleep
        self._stamp = clock_monotonic()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (a platform's retry-after)."""
        self._paused_until = max(self._paused_until, self._monotonic() + seconds)

    async def acquire(self) -> None:
        while True:
            now = self._monotonic()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)  # type: ignore[misc]
                continue
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await self._sleep(max(0.001, (1 - self._tokens) / self.rate))  # type: ignore[misc]


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
    payload: dict
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


class _Recorder:
    """Records sent rows' outcomes in the background, in order: whatever RECORD_LINGER
    gathers (several passes' worth under load) in one transaction. A record that fails is
    logged; its rows stay leased and are sent again when the lease runs out
    (at-least-once, as after a crash).
    """

    def __init__(self, record: Callable[[list[_Outcome]], Awaitable[None]]) -> None:
        self._record = record
        self._pending: list[_Outcome] = []
        self._task: asyncio.Task[None] | None = None

    async def add(self, outcomes: list[_Outcome]) -> None:
        self._pending += outcomes
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            # Let a few passes' outcomes gather: each record is a commit, and on SQLite a
            # commit's fsync is most of its cost (at 1000 msgs/s, one record per pass
            # spent a quarter of the time in fsync). The rows stay leased meanwhile.
            await asyncio.sleep(RECORD_LINGER)
            outcomes, self._pending = self._pending, []
            try:
                await self._record(outcomes)
            except Exception:
                log.exception("recording %d sent outbox row(s) failed; they are sent again "
                              "when their lease runs out", len(outcomes))

    async def close(self) -> None:
        """Wait until everything added is recorded."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)


class Outbox:
    """Claims due rows, sends them through the adapters, records what happened."""

    def __init__(self, adapters: Mapping[str, Adapter], services: Services, *,
                 rng: Callable[[], float] = random.random) -> None:
        self.adapters = dict(adapters)
        self.services = services
        self.settings = services.settings.outbox
        self.clock = services.clock
        self.rng = rng
        self._wake = asyncio.Event()
        self._limiters: dict[str, RateLimiter] = {}
        self._handed: dict[int, dict[str, Any]] = {}
        self._search_at = 0.0
        self._search_now = True  # rows were queued in the database only (`wake`)

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
            self._limiters[channel] = RateLimiter(rate, self.clock.monotonic, self.clock.sleep)
        return self._limiters[channel]

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; idle waits end early on `wake()`.

        Here a pass records what it sent in the background (`_Recorder`): the next pass
        sends the rows handed over meanwhile instead of queueing behind that record for
        the database, where a pipeline batch may hold it for tens of milliseconds.
        """
        recorder = _Recorder(self._record)
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
        return await self._with_console_threads([
            {"id": i, **{name: row[name] for name in ROW_FIELDS}, "attempts": row["attempts"]}
            for i, row in rows if row["lease_until"] - now > HAND_OVER_LEASE - HAND_OVER_SEND])

    async def _claim(self, now: datetime, only: Collection[int] | None,
                     limit: int) -> list[Claimed]:
        if not self.adapters:
            return []
        lease_until = now + self.settings.lease
        due = Q(status="pending", next_attempt_at__lte=now) | Q(status="sending",
                                                                   lease_until__lte=now)
        async with in_transaction():
            query = OutboxItem.filter(due, channel__in=list(self.adapters)).order_by("id")
            query = query.limit(limit)
            if only is not None:
                query = query.filter(id__in=list(only))
            if connections.get("default").capabilities.dialect == "postgres":
                # tortoise drops FOR UPDATE from values()/values_list(): fetch rows.
                query = query.select_for_update(skip_locked=True)
            ids = [row.id for row in await query.only("id")]
            if not ids:
                return []
            await OutboxItem.filter(id__in=ids).update(
                status="sending", lease_until=lease_until, attempts=F("attempts") + 1)
            rows = await OutboxItem.filter(id__in=ids).order_by("id").values(*CLAIMED_FIELDS)
        return await self._with_console_threads(rows)

    @staticmethod
    async def _with_console_threads(rows: list[dict[str, Any]]) -> list[Claimed]:
        # The console threads notices under the ticket's card, posted by an earlier row:
        # tell it where the card is now (None while it is not posted yet).
        tickets = {r["ticket_id"] for r in rows if r["audience"] == "agents" and r["ticket_id"]}
        threads = dict(await Ticket.filter(id__in=list(tickets)).values_list(
            "id", "console_thread")) if tickets else {}
        claimed = []
        for row in rows:
            if row["audience"] == "agents" and row["ticket_id"]:
                row["payload"] = {**(row["payload"] or {}),
                                  "console_thread": threads.get(row["ticket_id"])}
            claimed.append(Claimed(**row))
        return claimed

    async def _deliver_channel(self, items: list[Claimed],
                               record: Callable[[list[_Outcome]], Awaitable[None]]) -> None:
        adapter = self.adapters[items[0].channel]
        limiter = self.limiter(items[0].channel)
        outcomes = []
        for item in items:
            await limiter.acquire()
            outcome = await self._send(adapter, item)
            if outcome.retry_after:
                limiter.pause(outcome.retry_after)
            outcomes.append(outcome)
        await record(outcomes)

    async def _send(self, adapter: Adapter, item: Claimed) -> _Outcome:
        payload = dict(item.payload or {})
        files = await load_attachments(payload.pop("attachments", None) or ())
        message = Outbound(
            channel=item.channel, recipient=item.recipient, text=item.text,
            subject=item.subject, audience=item.audience,  # type: ignore[arg-type]
            ticket_number=payload.get("ticket"), kind=item.kind, automatic=item.automatic,
            reply_to=tuple(payload.pop("reply_to", ())), extra=payload, outbox_id=item.id,
            attachments=files)
        try:
            receipt = await adapter.send(message)
        except PermanentError as exc:
            return _Outcome(item, error=exc.reason, permanent=True)
        except TransientError as exc:
            return _Outcome(item, error=exc.reason, retry_after=exc.retry_after)
        except Exception as exc:  # an adapter bug must not stop the queue
            log.exception("adapter %s failed on outbox row %s", item.channel, item.id)
            return _Outcome(item, error=f"{type(exc).__name__}: {exc}")
        return _Outcome(item, platform_id=receipt.platform_id)

    def backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        """Exponential backoff with jitter; never sooner than the platform's retry-after."""
        base = self.settings.backoff_base.total_seconds()
        ceiling = self.settings.backoff_max.total_seconds()
        delay = min(ceiling, base * 2 ** max(0, attempts - 1)) * (0.5 + self.rng() / 2)
        if retry_after is not None:
            delay = max(delay, retry_after * (1 + self.rng() / 10))
        return timedelta(seconds=delay)

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
            for o in delivered:  # the card of a new ticket: its thread is the console's
                if o.item.audience == "agents" and o.item.kind in CARD_KINDS and \
                        o.platform_id and o.item.ticket_id:
                    await Ticket.filter(id=o.item.ticket_id, console_thread__isnull=True
                                        ).update(console_thread=o.platform_id)
            for outcome in outcomes:
                item = outcome.item
                if outcome.error is None:
                    continue
                if outcome.permanent or item.attempts >= self.settings.max_attempts:
                    await self._give_up(item, outcome.error, now)
                else:
                    await OutboxItem.filter(id=item.id).update(
                        status="pending", lease_until=None, last_error=outcome.error,
                        next_attempt_at=now + self.backoff(item.attempts, outcome.retry_after))
                    log.info("outbox row %s: %s; retry %d", item.id, outcome.error, item.attempts)

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
