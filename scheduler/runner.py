"""Firing due work: claim `ScheduledAction` rows that came due, act, record.

Rows are claimed like the outbox claims its rows: a lease, `FOR UPDATE SKIP LOCKED` on
PostgreSQL (two gateway processes never fire the same action), and a crashed process's
claims come back when the lease runs out. What came due while the gateway was down fires
once on start, with its lateness logged. APScheduler 3.11 (`AsyncIOScheduler`) only
ticks: `run_due` every `[scheduler] tick`, and the after-hours digest at every opening;
the durable state is ours (its job stores are not shared-safe).

Example:
    >>> runner = Scheduler(services)                 # doctest: +SKIP
    >>> await runner.run_due()                        # fired actions  # doctest: +SKIP
    3
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tortoise import connections
from tortoise.expressions import F, Q
from tortoise.transactions import in_transaction

from gateway.core.messages import Outbound
from gateway.desk import notices
from gateway.services import Services
from gateway.store.models import ScheduledAction, Ticket
from gateway.store.state import load_state, save_state
from gateway.web.survey import survey_links
from scheduler import plan

log = logging.getLogger("centralita.scheduler")

MAX_ATTEMPTS = 5


class Scheduler:
    """Fires due actions; `start()` adds the APScheduler ticker, `stop()` removes it."""

    def __init__(self, services: Services, *, wake: Callable[[], None] | None = None) -> None:
        self.services = services
        self.settings = services.settings.scheduler
        self.clock = services.clock
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
        claimed = await self._claim(now)
        for action in claimed:
            await self._fire(action, now)
        if claimed:
            self.wake()
        return len(claimed)

    async def _claim(self, now: datetime) -> list[ScheduledAction]:
        due = Q(status="pending", due_at__lte=now) | Q(status="running", lease_until__lte=now)
        async with in_transaction():
            query = ScheduledAction.filter(due).order_by("due_at").limit(self.settings.batch)
            if connections.get("default").capabilities.dialect == "postgres":
                query = query.select_for_update(skip_locked=True)
            ids = [row.id for row in await query.only("id")]
            if not ids:
                return []
            await ScheduledAction.filter(id__in=ids).update(
                status="running", lease_until=now + self.settings.lease,
                attempts=F("attempts") + 1)
        return await ScheduledAction.filter(id__in=ids).order_by("due_at")

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
                ticket = await Ticket.get(id=action.ticket_id)  # type: ignore[attr-defined]
                await self._act(action, ticket, now)
                await ScheduledAction.filter(id=action.id).update(
                    status="done", done_at=now, lease_until=None)
        except Exception as exc:
            log.exception("%s for ticket %s failed", action.kind,
                          action.ticket_id)  # type: ignore[attr-defined]
            gave_up = action.attempts >= MAX_ATTEMPTS
            await ScheduledAction.filter(id=action.id).update(
                status="failed" if gave_up else "pending", lease_until=None,
                due_at=now + timedelta(seconds=30 * 2 ** action.attempts),
                payload={**(action.payload or {}), "error": str(exc)[:500]})

    async def _act(self, action: ScheduledAction, ticket: Ticket, now: datetime) -> None:
        s, kind = self.settings, action.kind
        payload = action.payload or {}
        if kind == "progress":
            if ticket.status != "open" or (payload.get("count", 0) >= s.progress_max):
                return
            await notices.customer_message(self.services, ticket, "progress", now)
            count = payload.get("count", 0) + 1
            if count < s.progress_max:
                await plan.add([plan.row(ticket, "progress", self.services.sla.add(
                    ticket.channel, now, s.progress_every.total_seconds() / 60), now,
                    count=count)])
        elif kind.startswith(("sla_warn:", "sla_breach:")):
            await self._sla(kind, ticket, payload, now)
        elif kind == "reopened":
            await plan.on_customer_back(self.services, ticket, now)
        elif kind == "resolved":
            if ticket.status != "resolved":
                return
            await notices.customer_message(self.services, ticket, "resolved", now)
            await plan.add([
                plan.row(ticket, "survey", now + s.survey_delay, now),
                plan.row(ticket, "follow_up", now + s.follow_up_after, now),
                plan.row(ticket, "close", now + s.close_after, now)])
        elif kind in ("survey", "follow_up"):
            if ticket.status == "resolved":
                links = await survey_links(self.services, ticket.number) \
                    if kind == "survey" else None
                await notices.customer_message(self.services, ticket, kind, now,
                                               survey_links=links)
        elif kind == "close":
            if ticket.status == "resolved":
                ticket.status, ticket.closed_at, ticket.updated_at = "closed", now, now
                await ticket.save(update_fields=["status", "closed_at", "updated_at"])
                await notices.audit(ticket, "scheduler", "closed",
                                    {"after": str(s.close_after)}, now)
                await notices.customer_message(self.services, ticket, "closed", now)
                await notices.card_changed(self.services, ticket, now)
        elif kind == "pending":
            await plan.add([
                plan.row(ticket, "pending_reminder", now + s.pending_reminder, now),
                plan.row(ticket, "pending_resolve", now + s.pending_resolve_after, now)])
        elif kind == "pending_reminder":
            if ticket.status == "pending":
                await notices.customer_message(self.services, ticket, "pending_reminder", now)
        elif kind == "pending_resolve":
            if ticket.status == "pending":
                ticket.status, ticket.resolved_at, ticket.updated_at = "resolved", now, now
                await ticket.save(update_fields=["status", "resolved_at", "updated_at"])
                await notices.audit(ticket, "scheduler", "resolved",
                                    {"reason": "no answer while pending"}, now)
                await plan.on_resolved(ticket, now)
                await notices.card_changed(self.services, ticket, now)
        else:
            log.warning("unknown scheduled action %r for ticket %s", kind, ticket.number)

    async def _sla(self, kind: str, ticket: Ticket, payload: dict[str, Any],
                   now: datetime) -> None:
        stage, target = kind.split(":")
        if target == "first_response" and ticket.first_response_at is not None:
            return
        if target == "resolution" and ticket.status in ("resolved", "closed"):
            return
        if stage == "sla_warn":
            await plan.add([plan.breach_row(ticket, target, payload["target_due"], now)])
        due = datetime.fromisoformat(payload["target_due"])
        what = {"first_response": "primera respuesta", "resolution": "resolución"}[target]
        reason = (f"{what}: se cumplió el {round(self.settings.sla_warn_at * 100)} % del plazo"
                  if stage == "sla_warn" else f"{what}: plazo vencido")
        await notices.audit(ticket, "scheduler", f"sla.{stage.split('_')[1]}",
                            {"target": target, "due": payload["target_due"]}, now)
        await notices.notify_agents(
            self.services, ticket, "sla_warning", now, customer_name="", reason=reason,
            due_at=due, agent={"name": ticket.assignee or ""})

    # -- the after-hours digest ----------------------------------------------------------

    async def digest_if_due(self) -> Outbound | None:
        """At opening time: the tickets that arrived while we were closed, oldest first,
        to the agents' channel (once per opening, also after a restart)."""
        now = self.clock.now()
        hours = self.services.hours
        if not hours.is_open(now):
            return None
        state = await load_state("scheduler", "digest")
        last = datetime.fromisoformat(state["at"]) if state.get("at") else None
        # The closing before this opening: walk back to when we were last closed.
        since = last or now - timedelta(days=7)
        arrived = await Ticket.filter(created_at__gte=since, created_at__lte=now).order_by(
            "created_at").values("number", "subject", "channel", "created_at", "status")
        closed_arrivals = [t for t in arrived if not hours.is_open(t["created_at"])]
        await save_state("scheduler", "digest", {"at": now.isoformat()}, now)
        if last is not None and hours.is_open(last) and not closed_arrivals:
            return None
        if not closed_arrivals:
            return None
        agents = self.services.settings.agents
        subject, text = await notices.render(
            self.services, None, "digest", agents.console or "agents", now, "",
            tickets=closed_arrivals)
        out = Outbound(channel=agents.console or "agents", recipient=agents.channel,
                       text=text, subject=subject, audience="agents", kind="digest",
                       automatic=True)
        if notices.has_console(self.services):
            await notices.queue(None, out, now)
            self.wake()
        else:
            log.info("agents: %s", text)
        return out
