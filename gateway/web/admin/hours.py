"""/admin/hours: the business hours, the closed days ahead, and what a customer writing
at a given moment would receive on each channel."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gateway.services import Services
from gateway.store.models import Ticket
from gateway.web.admin.session import AdminSession
from gateway.web.refusals import say

YEARS = 10  # how far from today the "what would a customer receive" moment may be


def hours_router(session: AdminSession, services: Services) -> APIRouter:
    """GET /admin/hours?at=YYYY-MM-DDTHH:MM (local time; now by default). An `at` that is
    not a date and time, or more than YEARS from today, gets the page at now with a 400
    and a message saying why."""
    router = APIRouter(include_in_schema=False)

    @router.get("/admin/hours")
    async def hours_page(request: Request, at: str = "") -> Response:
        await session.require(request)
        hours = services.hours
        now = services.clock.now().astimezone(hours.tz)
        error = ""
        try:
            moment = moment_of(services, at)
        except ValueError:
            moment = now
            shown = at if len(at) <= 40 else at[:40] + "…"
            error = say(request.headers, "bad_moment",
                        services.settings.gateway.default_locale, value=shown,
                        first=now.year - YEARS, last=now.year + YEARS)
        open_now, _ = services.opening(moment)
        return await session.page(
            request, "hours.html", 400 if error else 200, title="Horario", error=error,
            summary=hours.summary("es"), week=hours.week_table("es"),
            closed=closed_days(services), at=moment.strftime("%Y-%m-%dT%H:%M"),
            at_text=moment.strftime("%A %d/%m/%Y %H:%M"), open_now=open_now,
            answers=await answers_at(services, moment, open_now))

    return router


def moment_of(services: Services, at: str) -> datetime:
    """`at` (a local date and time from the form) or, when empty, now. Raises ValueError
    when it is not a date and time, or is more than YEARS from today."""
    tz = services.hours.tz
    now = services.clock.now().astimezone(tz)
    if not at:
        return now
    moment = datetime.fromisoformat(at).replace(tzinfo=tz)
    if abs(moment.year - now.year) > YEARS:
        raise ValueError(f"{at!r} is more than {YEARS} years from today")
    return moment


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
