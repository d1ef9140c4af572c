"""Keeping customers informed and following up: what is planned when, and what is said
when it comes due.

Planned (as `ScheduledAction` rows, in the transaction of what causes them):
- a new ticket: a progress update after `progress_every` of business time without news,
  and a warning to agents at `sla_warn_at` of each SLA target (the warning plans the
  breach); an agent's public answer restarts the progress clock and meets the first
  response; the customer writing on a resolved or pending ticket puts it all back;
- resolved: the resolution message at once, then the survey, the check-in and closing;
- pending on the customer: a reminder, then resolution if she stays silent;
- an agent's promise ("remind 15:00"): a progress update then.

When a row comes due the scheduler hands it here as an event "due:<kind>", and the words
are the texts admins edit (progress, resolved, survey, follow_up, closed,
pending_reminder, sla_warning).

Example: María writes on Monday at 10:00 → "progress" is due at 14:00; at 14:00 she
receives "seguimos trabajando en tu solicitud #1001".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.core.responder import Context, EventContext, Schedule, TicketContext
from gateway.desk.notices import audit
from gateway.services import Services
from gateway.store.models import Ticket

PROGRESS = ("progress",)
FIRST_RESPONSE_SLA = ("sla_warn:first_response", "sla_breach:first_response")
RESOLUTION_SLA = ("sla_warn:resolution", "sla_breach:resolution")
AFTER_RESOLUTION = ("resolved", "survey", "follow_up", "close")
PENDING = ("pending", "pending_reminder", "pending_resolve")
PLANNED = "followups.planned"  # ctx.facts: the new ticket's rows, worked out in `prepare`


def _next_progress(services: Services, ticket: Ticket, now: datetime) -> datetime:
    every = services.settings.scheduler.progress_every.total_seconds() / 60
    return services.sla.add(ticket.channel, now, every)


def _new_ticket_plan(services: Services, ticket: Ticket, now: datetime) -> tuple[Schedule, ...]:
    """Progress and SLA warnings for a ticket just opened (actions are immutable, so
    tickets opened together with the same due times share them)."""
    s = services.settings.scheduler
    plan: list[Schedule] = []
    if s.progress_max:
        plan.append(Schedule("progress", _next_progress(services, ticket, now), {"count": 0}))
    for target, due in (("first_response", ticket.first_response_due),
                        ("resolution", ticket.resolution_due)):
        if due is None or (target == "first_response" and ticket.first_response_at):
            continue
        warn = (services.sla.share_used_at(ticket.channel, now, due, s.sla_warn_at)
                if due > now else due)
        # The breach row is added when the warning fires: one row per target instead of
        # two, on the path every new message takes.
        plan.append(Schedule(f"sla_warn:{target}", warn, {"target_due": due.isoformat()}))
    return tuple(plan)


class FollowUps:
    """Plans and fires the follow-ups (see the module docstring)."""

    name = "followups"

    def matches(self, ctx: Context) -> bool:
        ticket, inbound = ctx.ticket, ctx.inbound
        if ticket is None:
            return False
        if inbound.sender.kind == "agent":  # a public answer (not in a closed ticket)
            return not inbound.internal and ticket.status != "closed"
        return ctx.new_ticket or ctx.previous_status is not None

    async def prepare(self, contexts: list[Context]) -> None:
        """New tickets of one channel opened together share their due times: they are
        worked out once (aware-datetime arithmetic is not cheap)."""
        timing: dict[tuple[Any, ...], tuple[Schedule, ...]] = {}
        for ctx in contexts:
            ticket = ctx.ticket
            if not ctx.new_ticket or ticket is None:
                continue
            key = (ticket.channel, ticket.first_response_due, ticket.resolution_due,
                   ticket.first_response_at is None, ctx.now)
            if (plan := timing.get(key)) is None:
                plan = timing[key] = _new_ticket_plan(ctx.services, ticket, ctx.now)
            ctx.facts[PLANNED] = plan

    async def handle(self, ctx: Context) -> None:
        ticket = ctx.ticket
        assert ticket is not None
        if ctx.inbound.sender.kind == "agent":
            ctx.cancel(*PROGRESS, *FIRST_RESPONSE_SLA)
            self._progress_again(ctx, ticket, only_if_open=True)
        elif ctx.new_ticket:
            plan = ctx.facts.get(PLANNED) or _new_ticket_plan(ctx.services, ticket, ctx.now)
            ctx.actions += plan
        else:  # back on a resolved or pending ticket: what was coming is cancelled
            self._back_on_us(ctx, ticket)

    def _progress_again(self, ctx: TicketContext, ticket: Ticket, *,
                        only_if_open: bool = False) -> None:
        if ctx.services.settings.scheduler.progress_max and (
                not only_if_open or ticket.status == "open"):
            ctx.schedule("progress", _next_progress(ctx.services, ticket, ctx.now), count=0)

    def _back_on_us(self, ctx: TicketContext, ticket: Ticket) -> None:
        ctx.cancel(*AFTER_RESOLUTION, *PENDING, *PROGRESS)
        self._progress_again(ctx, ticket)

    # -- events: changes and due times -----------------------------------------------------

    async def on_event(self, ctx: EventContext) -> None:
        name, ticket = ctx.event.name, ctx.ticket
        assert ticket is not None
        if name.startswith("due:"):
            await self._due(ctx, ticket, name.removeprefix("due:"))
        elif name == "resolved":
            ctx.cancel(*PROGRESS, *FIRST_RESPONSE_SLA, *RESOLUTION_SLA, *PENDING,
                       *AFTER_RESOLUTION)
            ctx.schedule("resolved", ctx.now)
        elif name == "reopened":
            self._back_on_us(ctx, ticket)
        elif name == "pending":
            ctx.cancel(*PROGRESS, *PENDING)
            self._pending(ctx)
        elif name == "remind":
            ctx.schedule("progress", datetime.fromisoformat(ctx.event.payload["at"]),
                         count=0, by=ctx.event.by)

    def _pending(self, ctx: TicketContext) -> None:
        s = ctx.services.settings.scheduler
        ctx.schedule("pending_reminder", ctx.now + s.pending_reminder)
        ctx.schedule("pending_resolve", ctx.now + s.pending_resolve_after)

    async def _due(self, ctx: EventContext, ticket: Ticket, kind: str) -> None:
        s, status = ctx.services.settings.scheduler, ticket.status
        payload = ctx.event.payload
        if kind == "progress" and status == "open" and payload.get("count", 0) < s.progress_max:
            ctx.reply("progress")
            if (count := payload.get("count", 0) + 1) < s.progress_max:
                ctx.schedule("progress", _next_progress(ctx.services, ticket, ctx.now),
                             count=count)
        elif kind.startswith(("sla_warn:", "sla_breach:")):
            await self._sla(ctx, ticket, kind)
        elif kind == "reopened":  # planned by earlier versions: same as "reopened" now
            self._back_on_us(ctx, ticket)
        elif kind == "pending":  # planned by earlier versions: the reminder and the end
            self._pending(ctx)
        elif status == "resolved" and kind in ("resolved", "survey", "follow_up"):
            ctx.reply(kind, survey=kind == "survey")
            if kind == "resolved":
                ctx.schedule("survey", ctx.now + s.survey_delay)
                ctx.schedule("follow_up", ctx.now + s.follow_up_after)
                ctx.schedule("close", ctx.now + s.close_after)
        elif kind == "close" and status == "resolved":
            ctx.set_status("closed", reason=f"after {s.close_after}")
            ctx.reply("closed")
        elif kind == "pending_reminder" and status == "pending":
            ctx.reply("pending_reminder")
        elif kind == "pending_resolve" and status == "pending":
            ctx.set_status("resolved", reason="no answer while pending")

    async def _sla(self, ctx: EventContext, ticket: Ticket, kind: str) -> None:
        stage, target = kind.split(":")
        if target == "first_response" and ticket.first_response_at is not None:
            return
        if target == "resolution" and ticket.status in ("resolved", "closed"):
            return
        due_text = ctx.event.payload["target_due"]
        if stage == "sla_warn":
            ctx.schedule(f"sla_breach:{target}", datetime.fromisoformat(due_text),
                         target_due=due_text)
        await audit(ticket, "scheduler", f"sla.{stage.split('_')[1]}",
                    {"target": target, "due": due_text}, ctx.now)
        ctx.notify_agents("sla_warning", mention=True, target=target,
                          stage=stage.removeprefix("sla_"),
                          share=round(ctx.services.settings.scheduler.sla_warn_at * 100),
                          due_at=datetime.fromisoformat(due_text),
                          agent={"name": ticket.assignee or ""})

