"""Looking at the desk: `centralita tickets`, `ticket`, `schedule` and `report`."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gateway.cli.common import Failure, _local, _run, _settings, check_channel, out
from gateway.store.db import database


def schedule(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option(help="how many, soonest first")] = 30,
) -> None:
    """What the scheduler will do next: progress updates, SLA warnings, surveys, closing."""
    s = _settings(ctx)
    from gateway.store.models import ScheduledAction

    tz = s.hours.build().tz

    async def go() -> None:
        async with database(s.database.url):
            rows = await ScheduledAction.filter(status__in=["pending", "running"]).order_by(
                "due_at").limit(limit).values("due_at", "kind", "ticket__number", "status",
                                              "attempts")
            total = await ScheduledAction.filter(status="pending").count()
        if not rows:
            out.print("Nothing is scheduled.")
            return
        table = Table(title=f"Next {len(rows)} of {total} scheduled actions ({tz.key})")
        for column in ("due", "ticket", "what", "state"):
            table.add_column(column)
        for row in rows:
            table.add_row(_local(row["due_at"], tz), f"#{row['ticket__number']}",
                          row["kind"], row["status"] + (f" (attempt {row['attempts']})"
                                                        if row["attempts"] else ""))
        out.print(table)

    _run(go)


def tickets(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(help="open, pending, resolved or closed")] = None,
    channel: Annotated[str | None, typer.Option(help="email, telegram, slack…")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 50,
) -> None:
    """List tickets, newest first."""
    s = _settings(ctx)
    from gateway.store.models import TICKET_STATUSES, Ticket

    if status is not None and status not in TICKET_STATUSES:
        raise Failure(f"--status: expected one of {', '.join(TICKET_STATUSES)}, got {status!r}")
    if channel is not None:
        check_channel(channel)
    tz = ZoneInfo(s.hours.timezone)

    async def go() -> None:
        async with database(s.database.url):
            query = Ticket.all().select_related("contact").order_by("-id").limit(limit)
            if status:
                query = query.filter(status=status)
            if channel:
                query = query.filter(channel=channel)
            out.print(_tickets_table(await query, tz))

    _run(go)


def _tickets_table(rows: list[Any], tz: ZoneInfo) -> Table:
    # Times are never cut: on a narrow terminal they drop the year, and the
    # customer and subject wrap instead.
    fmt = "%Y-%m-%d %H:%M" if out.width >= 130 else "%m-%d %H:%M"
    table = Table(title=f"{len(rows)} ticket(s)", box=box.SIMPLE_HEAD,
                  pad_edge=False, show_edge=False)
    for col, width in (("#", 4), ("status", 8), ("channel", 8)):
        table.add_column(col, no_wrap=True, min_width=width)
    table.add_column("customer")
    table.add_column("subject")
    table.add_column("created", no_wrap=True)
    table.add_column("answer", no_wrap=True)
    for t in rows:
        if t.first_response_at:
            answer = _local(t.first_response_at, tz, fmt)
        elif t.first_response_due:
            answer = "due " + _local(t.first_response_due, tz, fmt)
        else:
            answer = "—"
        table.add_row(str(t.number), t.status, t.channel, t.contact.name or "—",
                      t.subject[:50], _local(t.created_at, tz, fmt), answer)
    return table


def ticket(ctx: typer.Context, number: int) -> None:
    """Show one ticket: the whole thread, notes, deliveries and audit."""
    s = _settings(ctx)
    from gateway.store.models import AuditEvent, Identity, Ticket

    tz = ZoneInfo(s.hours.timezone)

    async def go() -> None:
        async with database(s.database.url):
            t = await Ticket.get_or_none(number=number).select_related("contact", "parent")
            if t is None:
                raise Failure(f"there is no ticket #{number}")
            idents = await Identity.filter(contact=t.contact).values_list("channel", "address")
            out.print(f"[bold]Ticket #{t.number}[/bold] — {t.status}, priority {t.priority}, "
                      f"{t.channel}" + (f" (follows #{t.parent.number})" if t.parent else ""))
            out.print(f"Customer: {t.contact.name or '—'} · "
                      + ", ".join(f"{c}:{a}" for c, a in idents))
            out.print(f"Created {_local(t.created_at, tz)} · answer due "
                      f"{_local(t.first_response_due, tz)} · answered "
                      f"{_local(t.first_response_at, tz)} · resolved {_local(t.resolved_at, tz)}")
            await _print_thread(t, tz)
            events = await AuditEvent.filter(ticket=t).order_by("id")
            if events:
                table = Table(title="audit")
                for col in ("when", "who", "what", "detail"):
                    table.add_column(col)
                for e in events:
                    table.add_row(_local(e.created_at, tz), e.actor, e.action, str(e.detail)[:80])
                out.print(table)

    _run(go)


async def _print_thread(t: Any, tz: ZoneInfo) -> None:
    """Every message of the ticket, oldest first, with its delivery state."""
    from gateway.store.models import Message, OutboxItem

    deliveries = {o.message_id: o for o in await OutboxItem.filter(ticket=t)}  # type: ignore[attr-defined]
    for m in await Message.filter(ticket=t).order_by("created_at", "id"):
        arrow = "→" if m.direction == "out" else "←"
        who = m.author_name or m.author_address or m.author_kind
        note = " [note]" if m.visibility == "internal" else ""
        state = ""
        if m.id in deliveries:
            d = deliveries[m.id]
            state = f" · {d.status}" + (f" ({d.last_error})" if d.last_error else "")
        when = _local(m.created_at, tz)
        title = f"{arrow} {who} on {m.channel} · {m.kind}{note} · {when}{state}"
        out.print(Panel(Text(m.text or "(no text)"), title=title, title_align="left",
                        border_style="green" if m.direction == "out" else "white"))


def report(
    ctx: typer.Context,
    since: Annotated[str, typer.Option(help="how far back: 7d, 24h, 30d…")] = "7d",
    channel: Annotated[str | None, typer.Option(help="only this channel: email, telegram…")
                       ] = None,
) -> None:
    """Service figures for tickets created lately: first response, SLA and satisfaction.

    Per channel: median and p90 first response, SLA met, resolution time, first-contact
    resolution, CSAT and its response rate, and what is still unanswered.
    """
    s = _settings(ctx)
    from gateway.desk.report import service_report
    from gateway.services import Services

    span = _parse_since(since)
    if channel is not None:
        check_channel(channel)
    services = Services.from_settings(s)
    tz = services.hours.tz
    until = services.clock.now()
    start = until - span

    async def go() -> None:
        async with database(s.database.url):
            rows = await service_report(start, until, channel=channel, hours=services.hours,
                                        sla=services.sla)
        period = f"{_local(start, tz)} → {_local(until, tz)} ({tz.key})"
        if rows[-1].tickets == 0:
            where = f" on {channel}" if channel else ""
            out.print(f"No tickets created{where} from {period}.")
            return
        out.print(_report_table(f"{s.gateway.name} — tickets created {period}", rows))

    _run(go)


def _parse_since(since: str) -> timedelta:
    from gateway.settings import parse_duration

    try:
        span = parse_duration(since)
    except ValueError:
        span = None
    if span is None or span.total_seconds() <= 0:
        raise Failure(f"--since: expected a duration like 7d, 24h or 30d, got {since!r}")
    return span


def _report_table(title: str, rows: list[Any]) -> Table:
    """One row per channel, then the total (`rows[-1]`) in a section of its own."""
    from gateway.desk.report import format_minutes

    def pct(value: float | None, part: int, whole: int) -> str:
        return "—" if value is None else f"{value:.0f}% ({part}/{whole})"

    def times(calendar: float | None, business: float | None) -> str:
        if calendar is None:
            return "—"
        return f"{format_minutes(business)} · {format_minutes(calendar)}"

    table = Table(title=title, caption="response times: business time · calendar time")
    for col in ("channel", "tickets", "1st response median", "p90", "SLA met",
                "resolution median", "first-contact resolution", "CSAT (avg · response rate)",
                "unanswered"):
        table.add_column(col, justify="left" if col == "channel" else "right")
    for r in rows:
        csat = "—" if r.csat_average is None else f"{r.csat_average:.1f} · " + (
            "—" if r.csat_response_rate_pct is None
            else f"{r.csat_response_rate_pct:.0f}% of {r.surveys_sent}")
        table.add_row(
            r.channel, str(r.tickets),
            times(r.first_response_median, r.first_response_business_median),
            times(r.first_response_p90, r.first_response_business_p90),
            pct(r.sla_met_pct, r.sla_met, r.sla_measured),
            format_minutes(r.resolution_median),
            pct(r.first_contact_resolution_pct, r.first_contact_resolved, r.resolved),
            csat, str(r.unanswered), end_section=r is rows[-2])
    return table
