"""Firing due work: claim `ScheduledAction` rows that came due and hand each to the core
as an event for the responders, which decide what is said and done.

Rows are claimed like the outbox claims its rows (`gateway.store.claims`): a lease,
`FOR UPDATE SKIP LOCKED` on PostgreSQL (two gateway processes never fire the same
action), and a crashed process's claims come back when the lease runs out. What came due
while the gateway was down fires once on start, with its lateness logged. APScheduler
3.11 (`AsyncIOScheduler`) only ticks: `run_due` every `[scheduler] tick`, and the
after-hours digest at every opening; the durable state is ours (its job stores are not
shared-safe). The scheduler writes no words: those are the responders' and the texts'.

Example:
    >>> runner = Scheduler(services, on_due=gateway.due)    # doctest: +SKIP
    >>> await runner.run_due()                               # fired actions  # doctest: +SKIP
    3
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from gateway.core.backoff import Backoff
from gateway.core.messages import Outbound
from gateway.desk.digest import after_hours_digest
from gateway.services import Services
from gateway.store.claims import claim_due
from gateway.store.models import ScheduledAction

log = logging.getLogger("centralita.scheduler")

MAX_ATTEMPTS = 5
RETRY = Backoff(base=60, ceiling=float("inf"), jitter=False)  # 1, 2, 4, 8 minutes

OnDue = Callable[[ScheduledAction], Awaitable[None]]


class Scheduler:
    """Fires due actions; `start()` adds the APScheduler ticker, `stop()` removes it."""

    def __init__(self, services: Services, *, on_due: OnDue,
                 wake: Callable[[], None] | None = None) -> None:
        self.services = services
        self.settings = services.settings.scheduler
        self.clock = services.clock
        self.on_due = on_due
        self.wake = wake or (lambda: None)
        self.lateness: list[float] = []  # seconds late of each fired action (newest 10k)
        self._aps: Any = None

    # -- the ticker ----------------------------------------------------------------------

    async def start(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._aps = AsyncIOScheduler()
        self._aps.add_job(self.tick, "interval", seconds=self.settings.tick.total_seconds(),
                          max_instances=1, coalesce=True, id="tick")
        self._aps.start()
        await self.digest_if_due()
        self._plan_digest()

    def _plan_digest(self) -> None:
        if self._aps is None:
            return
        opening = self.services.hours.next_opening(self.clock.now())
        if opening is not None:
            self._aps.add_job(self._digest_job, "date", run_date=opening, id="digest",
                              replace_existing=True, misfire_grace_time=3600)

    async def _digest_job(self) -> None:
        try:
            await self.digest_if_due()
        finally:
            self._plan_digest()

    async def tick(self) -> None:
        try:
            while await self.run_due() >= self.settings.batch:
                pass
        except Exception:
            log.exception("scheduler tick failed; trying again at the next tick")

    async def stop(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None

    # -- due actions ---------------------------------------------------------------------

    async def run_due(self) -> int:
        """Claim and fire what is due now; returns how many actions were handled."""
        now = self.clock.now()
        ids = await claim_due(ScheduledAction, due="due_at", claimed="running", now=now,
                              lease=self.settings.lease, limit=self.settings.batch,
                              order="due_at")
        claimed = await ScheduledAction.filter(id__in=ids).order_by("due_at") if ids else []
        for action in claimed:
            await self._fire(action, now)
        if claimed:
            self.wake()
        return len(claimed)

    async def _fire(self, action: ScheduledAction, now: datetime) -> None:
        late = (now - action.due_at).total_seconds()
        self.lateness.append(late)
        if len(self.lateness) > 10_000:
            del self.lateness[:5_000]
        if late > max(60.0, 2 * self.settings.tick.total_seconds()):
            log.warning("%s for ticket %s fired %.0f s late", action.kind,
                        action.ticket_id, late)  # type: ignore[attr-defined]
        try:
            async with in_transaction():
                await self.on_due(action)
                await ScheduledAction.filter(id=action.id).update(
                    status="done", done_at=now, lease_until=None)
        except Exception as exc:
            log.exception("%s for ticket %s failed", action.kind,
                          action.ticket_id)  # type: ignore[attr-defined]
            gave_up = action.attempts >= MAX_ATTEMPTS
            await ScheduledAction.filter(id=action.id).update(
                status="failed" if gave_up else "pending", lease_until=None,
                due_at=now + timedelta(seconds=RETRY.delay(action.attempts)),
                payload={**(action.payload or {}), "error": str(exc)[:500]})

    # -- the after-hours digest ----------------------------------------------------------

    async def digest_if_due(self) -> Outbound | None:
        """At opening time: what arrived while we were closed (`gateway.desk.digest`)."""
        out = await after_hours_digest(self.services, self.clock.now())
        if out is not None:
            self.wake()
        return out
