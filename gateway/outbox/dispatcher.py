"""The outbox dispatcher: delivers queued messages through the adapters, durably.

Each channel, and the agents' console, has a lane of its own (`gateway.outbox.lanes`):
its own claims of due rows, its own send loop and its own rate limit, so that a slow,
paused or silent channel holds back nobody else — a customer's acknowledgement never
waits behind agents' cards or another channel's rate limit. Within a lane rows leave in
the order they were queued (a ticket's card before the notices that go into its thread).

Rows are claimed (`gateway.store.claims`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so
several gateway processes share the work) and leased: a process that dies mid-send
leaves rows whose lease runs out and which are claimed again. Delivery is therefore
at-least-once — a crash between send and commit may repeat a send, never drop one. A
lane claims no more than it can send, at its rate, before the lease runs out, and sends
no row whose lease is nearly over (it comes back from the database).

Transient failures are retried with backoff and jitter (`gateway.core.backoff`), never
sooner than the platform's retry-after (which also pauses the lane); permanent failures,
and transient ones past `max_attempts`, end in the `dead` state, recorded on the ticket
and told to the agents' console.

At stop (`run`), lanes claim nothing more, sends on the wire get `[outbox] stop_timeout`
to finish, what was sent is recorded, and the rows taken but not sent are released:
pending again at once for the next start or another process.

Example:
    >>> outbox = Outbox({"telegram": adapter}, services)   # doctest: +SKIP
    >>> await outbox.dispatch_once()                        # doctest: +SKIP
    1
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from tortoise.transactions import in_transaction

from gateway.core.adapter import Adapter
from gateway.core.backoff import Backoff
from gateway.core.messages import Outbound, PermanentError, TransientError
from gateway.core.ratelimit import RateLimiter
from gateway.desk.console import card as ticket_card
from gateway.desk.notices import delivery_failed
from gateway.outbox.lanes import CLAIMED_FIELDS, Claimed, Lane, claimed_of
from gateway.outbox.recorder import Recorder
from gateway.services import Services
from gateway.store import bulk
from gateway.store.attachments import load_attachments
from gateway.store.claims import claim_due, release
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
MAX_HANDED = 10_000  # rows a lane keeps in memory; beyond, they are read back
# A row leaves only with this much of its lease left (else it comes back from the
# database when the lease runs out): a handed-over row within HAND_OVER_SEND of it.
SEND_MARGIN = HAND_OVER_LEASE - HAND_OVER_SEND
_by_id = attrgetter("id")

Done = Callable[["_Outcome"], None]  # takes each row's outcome, to be recorded


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
        self.console = services.settings.agents.console
        self.retries = Backoff(self.settings.backoff_base.total_seconds(),
                               self.settings.backoff_max.total_seconds(), rng=rng)
        self._lanes: dict[tuple[str, bool], Lane] = {}
        self._start: Callable[[Lane], None] | None = None  # starts a lane's loop in `run`
        self._closed = False  # `run` is stopping or stopped: nothing more is handed over
        # Cards posted by this process, ticket id → thread, until their record is written:
        # a ticket's next notices go into that thread without waiting for it.
        self._cards: dict[int, str] = {}
        # Rows whose outcome waits for the background record: done, whatever a claim
        # says (their lease may run out first when the database is slow to record).
        self._unrecorded: set[int] = set()

    def takes(self, channel: str) -> bool:
        return not self._closed and channel in self.adapters

    def hand_over(self, rows: Sequence[tuple[int, dict[str, Any]]]) -> None:
        """Rows the pipeline has just committed (`leased_for_hand_over`), as it wrote
        them: their lanes send them without a claim and without reading them back.
        Only a shortcut: a row this memory drops is claimed from the database when its
        short lease runs out.

        Example: `gateway = Gateway(services, dispatcher=outbox)`
        """
        for row_id, row in rows:
            lane = self._lane(row["channel"], row["audience"])
            if len(lane.handed) < MAX_HANDED:
                lane.handed[row_id] = row
            lane.wake.set()

    def wake(self) -> None:
        """Something was queued in the database: every lane looks now instead of at the
        next poll."""
        for lane in self._lanes.values():
            lane.search_now = True
            lane.wake.set()

    def _lane(self, channel: str, audience: str = "customer") -> Lane:
        """The lane that sends `channel`'s rows for `audience` (the console's own for
        agents' rows on the console's channel); started if `run` is running."""
        console = audience == "agents" and channel == self.console
        lane = self._lanes.get((channel, console))
        if lane is None:
            lane = self._lanes[(channel, console)] = self._new_lane(channel, console)
            if self._start is not None:
                self._start(lane)
        return lane

    def _new_lane(self, channel: str, console: bool) -> Lane:
        rate = self.settings.rate.get(channel, 10.0)
        among: dict[str, Any] = {"channel": channel}
        if console:
            among["audience"] = "agents"
        elif channel == self.console:  # the console's channel also serves customers
            among["audience__not"] = "agents"
        # never claim more than the lane can send, at its rate, before the lease is over
        sendable = (self.settings.lease - SEND_MARGIN).total_seconds() * rate
        return Lane(channel, console=console, limiter=RateLimiter(rate, self.clock),
                    among=among, capacity=max(1, min(self.settings.batch, int(sendable))))

    def _running_lanes(self) -> list[Lane]:
        """A lane per channel with an adapter, and the console's."""
        for channel in self.adapters:
            self._lane(channel)
            if channel == self.console:
                self._lane(channel, "agents")
        return [lane for lane in self._lanes.values() if lane.channel in self.adapters]

    def backoff(self, attempts: int, retry_after: float | None) -> timedelta:
        """When a failed row is tried again: never sooner than the platform's retry-after."""
        return timedelta(seconds=self.retries.delay(attempts, retry_after))

    async def run(self, stop: asyncio.Event) -> None:
        """Run every lane until `stop` is set, then stop as the module docstring says.

        Lanes record what they sent in the background (`Recorder`): a lane sends the rows
        handed over meanwhile instead of queueing behind that record for the database,
        where a pipeline batch may hold it for tens of milliseconds.
        """
        recorder = Recorder(self._record_later)
        halt = asyncio.Event()
        self._closed = False

        def done(outcome: _Outcome) -> None:
            self._unrecorded.add(outcome.item.id)
            recorder.add(outcome)

        def start(lane: Lane) -> None:
            lane.task = asyncio.create_task(self._drive(lane, done, halt),
                                            name=f"outbox lane {lane.name}")

        self._start = start
        for lane in self._running_lanes():
            start(lane)
        try:
            await stop.wait()
        finally:
            self._start = None
            await self._stop(halt, recorder)

    async def _drive(self, lane: Lane, done: Done, halt: asyncio.Event) -> None:
        """One lane's loop: take, send, and wait for more (a hand-over, `wake`, or the
        poll interval) when there is nothing."""
        poll = self.settings.poll_interval.total_seconds()
        while not halt.is_set():
            lane.wake.clear()  # before taking: a hand-over meanwhile wakes the wait below
            try:
                taken = await self._turn(lane, None, done, halt)
            except Exception:
                log.exception("outbox lane %s failed; retrying after the poll interval",
                              lane.name)
                lane.held.clear()  # their leases bring them back
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(halt.wait(), poll)
                continue
            if taken == 0 and not halt.is_set():
                try:
                    await asyncio.wait_for(lane.wake.wait(), poll)
                except TimeoutError:
                    lane.search_now = True

    async def _stop(self, halt: asyncio.Event, recorder: Recorder) -> None:
        """Claim nothing more; let sends on the wire finish within `stop_timeout`; record
        what was sent and release what was taken and not sent, within as long again."""
        self._closed = True
        halt.set()
        lanes = [lane for lane in self._lanes.values() if lane.task is not None]
        tasks = [lane.task for lane in lanes if lane.task is not None]
        for lane in lanes:
            if not lane.busy and lane.task is not None:  # waiting: nothing to finish
                lane.task.cancel()
        timeout = self.settings.stop_timeout.total_seconds()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=timeout)
            for task in late:
                task.cancel()
            if late:
                log.warning("outbox: %d send(s) still unanswered after stop_timeout (%g s) "
                            "were cut off; they are sent again when their lease runs out",
                            len(late), timeout)
                await asyncio.wait(late, timeout=min(1.0, timeout))  # cancelled: at once
        for lane in lanes:
            lane.task = None
        try:
            await asyncio.wait_for(self._settle(recorder), timeout)
        except TimeoutError:
            log.warning("outbox: recording and releasing at stop took over %g s; what was "
                        "not written is sent again when its lease runs out", timeout)

    async def _settle(self, recorder: Recorder) -> None:
        await recorder.close()
        leases: dict[int, datetime] = {}
        for lane in self._lanes.values():
            leases.update(lane.leases())
            lane.forget()
        if leases:
            released = await release(OutboxItem, claimed="sending", now=self.clock.now(),
                                     leases=leases)
            log.info("outbox: %d row(s) taken and not sent are pending again", released)

    async def dispatch_once(self, only: Collection[int] | None = None) -> int:
        """One turn of every lane: its rows handed over and a claim of its due rows (or
        only the rows `only`), delivered and recorded; returns how many rows were
        handled."""
        lanes = self._running_lanes()
        outcomes: list[_Outcome] = []
        for lane in lanes:
            lane.search_now = True
        counts = await asyncio.gather(*(self._turn(lane, only, outcomes.append)
                                        for lane in lanes))
        await self._record(outcomes)
        return sum(counts)

    async def _turn(self, lane: Lane, only: Collection[int] | None, done: Done,
                    halt: asyncio.Event | None = None) -> int:
        items = await self._take(lane, only)
        if items:
            await self._deliver(lane, items, done, halt)
        return len(items)

    async def _take(self, lane: Lane, only: Collection[int] | None) -> list[Claimed]:
        """Up to a batch of the lane's rows: handed over first; then, when it is time to
        look (`wake`, the poll interval, a full claim before), claimed from the database."""
        batch = self.settings.batch
        ids = (list(itertools.islice(lane.handed, batch)) if only is None else
               [i for i in lane.handed if i in only][:batch])
        # a handed row past its time is left to the database (`_in_time`)
        items = [item for item in (claimed_of(i, lane.handed.pop(i)) for i in ids)
                 if self._in_time(item)]
        now = self.clock.monotonic()
        limit = min(batch, lane.capacity) - len(items)
        if limit > 0 and (lane.search_now or now >= lane.search_at):
            lane.search_now = False
            lane.search_at = now + self.settings.poll_interval.total_seconds()
            lane.busy = True
            try:
                claimed = await self._claim(lane, only, limit)
            finally:
                lane.busy = False
            lane.search_now = len(claimed) == limit  # more may be due: look again now
            claimed = [item for item in claimed if item.id not in self._unrecorded]
            if claimed:  # a row claimed again (its lease ran out) is taken once, as claimed
                again = {item.id for item in claimed}
                items = sorted([i for i in items if i.id not in again] + claimed, key=_by_id)
        for item in items:
            lane.held[item.id] = item
        return items

    async def _claim(self, lane: Lane, only: Collection[int] | None,
                     limit: int) -> list[Claimed]:
        among = dict(lane.among)
        if only is not None:
            among["id__in"] = list(only)
        ids = await claim_due(OutboxItem, due="next_attempt_at", claimed="sending",
                              now=self.clock.now(), lease=self.settings.lease, limit=limit,
                              **among)
        if not ids:
            return []
        rows = await OutboxItem.filter(id__in=ids).order_by("id").values(*CLAIMED_FIELDS)
        return [Claimed(**row) for row in rows]

    def _in_time(self, item: Claimed) -> bool:
        return item.lease_until - self.clock.now() >= SEND_MARGIN

    async def _deliver(self, lane: Lane, items: list[Claimed], done: Done,
                       halt: asyncio.Event | None) -> None:
        """Send the lane's rows in order at its rate; each outcome goes to `done`. At a
        halt it stops before the next row (the rest stay `held`, to be released)."""
        adapter = self.adapters.get(lane.channel)
        if adapter is None:  # taken away: its rows wait in the database
            lane.held.clear()
            return
        threads = await self._console_threads(items)
        for item in items:
            if halt is not None and halt.is_set():
                return
            if self._in_time(item):
                await lane.limiter.acquire()
            if halt is not None and halt.is_set():
                return
            if not self._in_time(item):  # it comes back when its lease runs out
                lane.held.pop(item.id, None)
                continue
            lane.busy, lane.sending = True, item
            try:
                outcome = await self._send(adapter, item, threads)
            finally:
                lane.busy = False
            lane.sending = None
            lane.held.pop(item.id, None)
            if outcome.retry_after:
                lane.limiter.pause(outcome.retry_after)
            if outcome.platform_id and item.ticket_id and item.audience == "agents" and \
                    card_wanted(item.kind, item.payload or {}) == OPEN_CARD and \
                    not threads.get(item.ticket_id):  # the card it posted opens the thread
                threads[item.ticket_id] = self._cards[item.ticket_id] = outcome.platform_id
            done(outcome)

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

    async def _record_later(self, outcomes: list[_Outcome]) -> None:
        try:
            await self._record(outcomes)
        finally:  # recorded, or (failed) sent again when the lease runs out
            self._unrecorded.difference_update(o.item.id for o in outcomes)

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
        self.wake()  # the agents' notice just queued
