"""The dashboard, /admin/: four charts and the tickets nobody has answered yet."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.desk.report import service_report
from gateway.services import Services
from gateway.store.models import Ticket
from gateway.web.admin.charts import bars
from gateway.web.admin.session import AdminSession

WAITING = ("open", "pending")
FIELDS = ("status", "channel", "created_at", "first_response_at", "satisfaction", "number",
          "subject", "resolved_at")


def dashboard_router(session: AdminSession, services: Services) -> APIRouter:
    """GET /admin/."""
    router = APIRouter(include_in_schema=False)

    @router.get("/admin/")
    async def dashboard(request: Request) -> Response:
        await session.require(request)
        tickets = await Ticket.all().values(*FIELDS)
        charts = [bars("Tickets abiertos por canal y estado", waiting_by_channel(tickets)),
                  bars("Tiempo de primera respuesta", first_response_times(tickets)),
                  bars("SLA cumplido (30 días)", await sla_by_channel(services), " %"),
                  bars("Satisfacción por día (1–5)", satisfaction_by_day(services, tickets))]
        return await session.page(request, "dashboard.html", title="Panel", charts=charts,
                                  unanswered=unanswered(services, tickets))

    return router


def waiting_by_channel(tickets: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Open and pending tickets by "channel · status"."""
    counts: dict[str, float] = {}
    for t in tickets:
        if t["status"] in WAITING:
            label = f"{t['channel']} · {t['status']}"
            counts[label] = counts.get(label, 0) + 1
    return sorted(counts.items())


def first_response_times(tickets: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Answered tickets by how long their first response took."""
    buckets = {"< 15 min": 0.0, "15–60 min": 0.0, "1–4 h": 0.0, "4–24 h": 0.0, "> 1 día": 0.0}
    for t in tickets:
        if t["first_response_at"]:
            minutes = (t["first_response_at"] - t["created_at"]).total_seconds() / 60
            label = ("< 15 min" if minutes < 15 else "15–60 min" if minutes < 60 else
                     "1–4 h" if minutes < 240 else "4–24 h" if minutes < 1440 else
                     "> 1 día")
            buckets[label] += 1
    return list(buckets.items())


async def sla_by_channel(services: Services) -> list[tuple[str, float]]:
    """The share of tickets answered within the SLA over the last 30 days, by channel."""
    now = services.clock.now()
    rows = await service_report(now - timedelta(days=30), now, hours=services.hours,
                                sla=services.sla)
    return [(r.channel, round(r.sla_met_pct, 1)) for r in rows if r.sla_met_pct is not None]


def satisfaction_by_day(services: Services,
                        tickets: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """The mean survey score by day of resolution, for the last 14 days with scores."""
    days: dict[str, list[int]] = {}
    for t in tickets:
        if t["satisfaction"] and t["resolved_at"]:
            day = t["resolved_at"].astimezone(services.hours.tz).strftime("%d/%m")
            days.setdefault(day, []).append(t["satisfaction"])
    return [(d, round(sum(v) / len(v), 1)) for d, v in sorted(days.items())][-14:]


def unanswered(services: Services, tickets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open or pending tickets without a first response, for the table."""
    return [{"number": t["number"], "channel": t["channel"], "subject": t["subject"],
             "created": t["created_at"].astimezone(services.hours.tz).strftime("%d/%m %H:%M")}
            for t in tickets if t["status"] in WAITING and not t["first_response_at"]]
