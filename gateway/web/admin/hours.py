"""/admin/hours: the business hours, the closed days ahead, and what a customer writing
at a given moment would receive on each channel."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.services import Services
from gateway.store.models import Ticket
from gateway.web.admin.session import AdminSession


def hours_router(session: AdminSession, services: Services) -> APIRouter:
    """GET /admin/hours?at=YYYY-MM-DDTHH:MM (local time; now by default)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/admin/hours")
    async def hours_page(request: Request, at: str = "") -> Response:
        await session.require(request)
        hours = services.hours
        moment = moment_of(services, at)
        open_now, _ = services.opening(moment)
        return await session.page(
            request, "hours.html", title="Horario", summary=hours.summary("es"),
            week=hours.week_table("es"), closed=closed_days(services),
            at=moment.strftime("%Y-%m-%dT%H:%M"), at_text=moment.strftime("%A %d/%m/%Y %H:%M"),
            open_now=open_now, answers=await answers_at(services, moment, open_now))

    return router


def moment_of(services: Services, at: str) -> datetime:
    """`at` (a local date and time from the form) or, when empty or invalid, now."""
    tz = services.hours.tz
    try:
        return datetime.fromisoformat(at).replace(tzinfo=tz) if at else \
            services.clock.now().astimezone(tz)
    except ValueError:
        return services.clock.now().astimezone(tz)


async def answers_at(services: Services, moment: datetime,
                     open_now: bool) -> list[tuple[str, str]]:
    """The acknowledgement a sample customer writing at `moment` gets, by channel."""
    answers = []
    for channel in ("telegram", "email", "slack"):
        sample = Ticket(number=1042, subject="Mi pedido no llegó", channel=channel,
                        status="open", priority="normal", locale="es")
        sample.first_response_due = services.sla.first_response_due(channel, "normal",
                                                                     moment)
        key = "ack" if open_now else "ack_closed"
        context = services.template_context(sample, customer_name="María González",
                                            now=moment)
        rendered = await services.templates.render(key, locale="es", channel=channel,
                                                   context=context, now=moment)
        answers.append((channel, (rendered.subject + "\n\n" if rendered.subject else "")
                        + rendered.body))
    return answers


def closed_days(services: Services) -> list[tuple[str, str]]:
    """The closed days of the next 90 days, with the holiday's name."""
    hours = services.hours
    today = services.clock.now().astimezone(hours.tz).date()
    closed = []
    for offset in range(90):
        day = today + timedelta(days=offset)
        if hours.is_closed_day(day):
            closed.append((day.strftime("%d/%m/%Y"),
                           hours.holiday_name(day) or "cerrado (fecha configurada)"))
    return closed
