"""`centralita`: the command line.

    centralita migrate
    centralita run
    centralita demo
    centralita simulate --channel telegram --from 12345 --name "María" --text "Hola"
    centralita tickets --status open
    centralita ticket 1001
    centralita check
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import typer
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gateway.core.clock import ManualClock, SystemClock
from gateway.core.messages import Inbound, Party, ThreadHint
from gateway.pipeline.receive import InboundRejected
from gateway.settings import Settings, SettingsError, default_settings_path, load_settings
from gateway.store.db import DatabaseNotReady, database
from gateway.store.db import migrate as run_migrations

T = TypeVar("T")

app = typer.Typer(
    name="centralita",
    help="Centralita: one inbox for email, Telegram and Slack, answered from Slack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays on one line, even in logs


class Failure(Exception):
    """A user-facing error: printed in one line, exit status 2."""


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj["load"]()


def _run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


@app.callback()
def main_options(
    ctx: typer.Context,
    settings: Annotated[Path | None, typer.Option(
        "--settings", "-s", help="settings file (default: $CENTRALITA_SETTINGS or ./settings.toml)",
        show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what happens")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cache: dict[str, Settings] = {}

    def load() -> Settings:
        if "s" not in cache:
            cache["s"] = load_settings(settings or default_settings_path())
        return cache["s"]

    ctx.obj = {"load": load}


@app.command()
def check(ctx: typer.Context) -> None:
    """Check settings.toml and show what it means: hours, SLA, database."""
    s = _settings(ctx)
    from gateway.app import build_adapters, load_responders

    load_responders(s)  # [responders] order must name installed responders
    channels = build_adapters(s)  # every [channels.<name>] table is checked by its adapter
    hours = s.hours.build()
    table = Table(title=f"{s.gateway.name} — settings are valid", show_header=False)
    table.add_row("database", s.database.url)
    table.add_row("time zone", s.hours.timezone)
    table.add_row("opening hours (es)", hours.summary("es"))
    table.add_row("opening hours (en)", hours.summary("en"))
    now = datetime.now(hours.tz)
    table.add_row("now", f"{now:%Y-%m-%d %H:%M} — {'open' if hours.is_open(now) else 'closed'}")
    for channel, minutes in s.sla.first_response.items():
        kind = "business" if s.sla.business.get(channel, True) else "calendar"
        table.add_row(f"first response, {channel}", f"{minutes} {kind} minutes")
    table.add_row("responders", ", ".join(s.responders.order))
    table.add_row("channels", ", ".join(channels) or "none configured")
    out.print(table)


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Create or upgrade the database (tortoise-orm migrations)."""
    s = _settings(ctx)
    steps: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        steps.append(f"{event} {app_label}.{name}")
        out.print(f"  {event:>8} {app_label}.{name}")

    async def go() -> None:
        from tortoise import Tortoise

        try:
            await run_migrations(s.database.url, progress=progress)
        finally:
            await Tortoise.close_connections()

    _run(go)
    out.print(f"[green]database is up to date[/green] ({s.database.url})"
              + ("" if steps else " — nothing to do"))


@app.command()
def run(ctx: typer.Context) -> None:
    """Run the gateway: read every configured channel, deliver answers, until Ctrl-C.

    A first email sync shows a progress bar on a terminal (counts go to the log always).
    """
    import signal

    from rich.progress import Progress

    from gateway.app import assemble, build_adapters, settle_memory

    s = _settings(ctx)
    if not s.channels:
        raise Failure("no channels to run: add a [channels.<name>] table to settings.toml "
                      "(e.g. [channels.email] with a [[channels.email.mailboxes]] entry)")
    logging.getLogger("centralita").setLevel(logging.INFO)
    bar = Progress(console=err, transient=True) if err.is_terminal else None
    tasks: dict[str, Any] = {}

    def progress(key: str, done: int, total: int) -> None:
        if bar is None:
            return
        if key not in tasks:
            tasks[key] = bar.add_task(f"importing {key}", total=total)
        bar.update(tasks[key], completed=done, total=total)

    async def go() -> None:
        await run_migrations(s.database.url)
        async with database(s.database.url):
            running = assemble(s, adapters=build_adapters(s, progress=progress))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)

            def started() -> None:
                settle_memory()
                out.print(f"[green]running[/green]: {', '.join(running.adapters)}; admin "
                          f"pages at http://{s.http.listen}/admin/ — Ctrl-C stops")

            await running.run(stop, started=started)

    if bar is not None:
        with bar:
            _run(go)
    else:
        _run(go)
    out.print("stopped: nothing pending is lost (it waits in the database)")


admin_cli = typer.Typer(help="Admins of the admin pages.", no_args_is_help=True)
app.add_typer(admin_cli, name="admin")


@admin_cli.command("create")
def admin_create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="the admin's user name")],
    password_env: Annotated[str | None, typer.Option(
        help="read the password from this environment variable instead of asking")] = None,
) -> None:
    """Create an admin, or set a new password for an existing one."""
    import os

    from gateway.store.models import AdminUser
    from gateway.web.auth import hash_password

    s = _settings(ctx)
    if password_env:
        if password_env not in os.environ:
            raise Failure(f"--password-env: the environment variable {password_env} is not set")
        password = os.environ[password_env]
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise Failure("the password must have at least 10 characters")
    hashed = hash_password(password)

    async def go() -> None:
        await run_migrations(s.database.url)
        async with database(s.database.url):
            admin = await AdminUser.get_or_none(username=username)
            if admin is None:
                await AdminUser.create(username=username, password_hash=hashed,
                                       created_at=datetime.now(ZoneInfo("UTC")))
                out.print(f"admin [bold]{username}[/bold] created")
            else:
                admin.password_hash = hashed
                await admin.save(update_fields=["password_hash"])
                out.print(f"new password set for [bold]{username}[/bold]")

    _run(go)


@app.command()
def demo(
    serve: Annotated[bool, typer.Option(
        "--serve", help="afterwards, leave the admin pages up on a local URL")] = False,
) -> None:
    """A scripted day of customer service on this machine, in under a minute.

    No accounts or credentials: the Telegram and Slack sandboxes, a local SMTP server and
    a temporary database; simulated time runs from Sunday 22:30 to the next Monday.
    """
    from gateway.sandbox.demo import main as play

    play(out, Path(__file__).resolve().parent.parent, keep_serving=serve)


@app.command()
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


def _parse_at(value: str | None, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Failure(f"--at: expected a date and time like 2026-11-22T22:30, got {value!r}"
                      ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


@app.command()
def simulate(
    ctx: typer.Context,
    channel: Annotated[str, typer.Option(help="channel the customer writes on")] = "telegram",
    sender: Annotated[str, typer.Option("--from", help="the customer's address on the channel")
                      ] = "12345",
    name: Annotated[str, typer.Option(help="the customer's name")] = "",
    text: Annotated[str, typer.Option(help="what the customer writes")] = "Hola",
    text_file: Annotated[Path | None, typer.Option(
        help="read what the customer writes from this file ('-' for standard input)")] = None,
    subject: Annotated[str, typer.Option(help="email subject")] = "",
    at: Annotated[str | None, typer.Option(
        help="when, e.g. 2026-11-22T22:30 (in the hours time zone); default: now")] = None,
    lang: Annotated[str | None, typer.Option(help="the customer's language: es or en")] = None,
    automated: Annotated[bool, typer.Option(help="mark as an automated sender")] = False,
    eml: Annotated[Path | None, typer.Option(
        help="an email file (.eml) to receive as it would arrive in the support mailbox")
                   ] = None,
) -> None:
    """Run one message through the real pipeline and show what everyone would receive.

    The message and its ticket are stored in the configured database; what would be sent
    is delivered to an in-memory channel, never to the real platform.
    """
    s = _settings(ctx)
    from adapters.memory import MemoryAdapter
    from gateway.app import assemble

    if text_file is not None:
        try:
            text = (sys.stdin.read() if str(text_file) == "-"
                    else text_file.read_text(encoding="utf-8", errors="surrogateescape"))
        except OSError as exc:
            raise Failure(f"--text-file: cannot read {text_file}: {exc.strerror}") from None
    if eml is not None:
        channel = "email"
    from gateway.core.adapter import adapter_class, channel_factories

    if not hasattr(adapter_class(channel), "from_settings"):  # every adapter loads only here
        raise Failure(f"--channel: expected one of {', '.join(sorted(channel_factories()))}, "
                      f"got {channel!r}")
    hours = s.hours.build()
    moment = _parse_at(at, hours.tz)
    clock = ManualClock(moment) if moment else SystemClock()
    if lang not in (None, "es", "en"):
        raise Failure(f"--lang: expected 'es' or 'en', got {lang!r}")

    async def go() -> None:
        await run_migrations(s.database.url)
        async with database(s.database.url):
            channels = {channel, s.agents.console or "agents"}
            memory = {c: MemoryAdapter(c) for c in channels}
            running = assemble(s, adapters=memory, clock=clock, accept_any_channel=True)
            now = clock.now()
            inbound = Inbound(
                channel=channel, sender=Party("customer", sender, name), text=text,
                subject=subject, external_id=f"simulate-{now.timestamp()}-{id(clock)}",
                thread=ThreadHint(conversation=sender if channel != "email" else None),
                automated=automated, locale=lang, received_at=now)
            if eml is not None:
                inbound = _read_eml(s, eml, now)
            try:
                accepted = await running.gateway.receive(inbound)
            except InboundRejected as exc:
                raise Failure(f"rejected: {exc}") from None
            ids = [o.outbox_id for o in accepted.outbound if o.outbox_id is not None]
            if ids:
                await running.outbox.dispatch_once(only=ids)
            _show_simulation(s, hours, now, inbound, accepted)

    _run(go)


def _read_eml(s: Settings, path: Path, now: datetime) -> Inbound:
    """An .eml file as the email channel would receive it (the first configured mailbox,
    or a stand-in when none is configured: simulate never connects to a server)."""
    from adapters.email.parse import parse_email
    from adapters.email.settings import EmailSettings, MailboxSettings
    from adapters.email.tokens import ReplyTokens
    from gateway.settings import channel_settings

    try:
        raw = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as exc:
        raise Failure(f"--eml: cannot read {path}: {exc.strerror}") from None
    email = channel_settings(s, "email", EmailSettings)
    box = email.mailboxes[0] if email.mailboxes else MailboxSettings(
        name="soporte", address="soporte@example.com", imap_host="localhost",
        imap_user="soporte", smtp_host="localhost")
    return parse_email(raw, mailbox=box, settings=email, tokens=ReplyTokens(email.token_secret),
                       max_attachment=s.attachments.max_bytes, received_at=now)


def _show_simulation(s: Settings, hours: Any, now: datetime, inbound: Inbound,
                     accepted: Any) -> None:
    local = now.astimezone(hours.tz)
    state = "open" if hours.is_open(now) else "closed"
    who = inbound.sender.name or inbound.sender.address
    out.print(f"[bold]{who}[/bold] writes on [bold]{inbound.channel}[/bold] "
              f"({inbound.sender.address}) at {local:%A %Y-%m-%d %H:%M} {hours.tz.key} "
              f"— we are [bold]{state}[/bold]")
    out.print(Panel(Text(inbound.text or "(no text)"), title="message", expand=False))
    what = "new ticket" if accepted.new_ticket else (
        "reopened" if accepted.reopened else "existing ticket")
    if accepted.duplicate:
        what = "already received (duplicate): nothing done"
    out.print(f"Ticket [bold]#{accepted.ticket_number}[/bold] — {what}")
    customer = [o for o in accepted.outbound if o.audience == "customer"]
    agents = [o for o in accepted.outbound if o.audience == "agents"]
    if not customer:
        out.print("[yellow]The customer receives nothing[/yellow] (no acknowledgement is due).")
    for o in customer:
        body = (f"Subject: {o.subject}\n\n" if o.subject and o.channel == "email" else "") + o.text
        out.print(Panel(Text(body), title=f"{who} receives on {o.channel} ({o.kind})",
                        border_style="green", expand=False))
    for o in agents:
        console = s.agents.console or "log only: no console in settings"
        out.print(Panel(Text(o.text), title=Text(f"agents are told ({console})"),
                        border_style="blue", expand=False))


def _local(moment: datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(tz).strftime(fmt) if moment else "—"


@app.command()
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
    tz = ZoneInfo(s.hours.timezone)

    async def go() -> None:
        async with database(s.database.url):
            query = Ticket.all().select_related("contact").order_by("-id").limit(limit)
            if status:
                query = query.filter(status=status)
            if channel:
                query = query.filter(channel=channel)
            rows = await query
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
            out.print(table)

    _run(go)


@app.command()
def ticket(ctx: typer.Context, number: int) -> None:
    """Show one ticket: the whole thread, notes, deliveries and audit."""
    s = _settings(ctx)
    from gateway.store.models import AuditEvent, Identity, Message, OutboxItem, Ticket

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
            events = await AuditEvent.filter(ticket=t).order_by("id")
            if events:
                table = Table(title="audit")
                for col in ("when", "who", "what", "detail"):
                    table.add_column(col)
                for e in events:
                    table.add_row(_local(e.created_at, tz), e.actor, e.action, str(e.detail)[:80])
                out.print(table)

    _run(go)


@app.command()
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
    from gateway.desk.report import format_minutes, service_report
    from gateway.services import Services
    from gateway.settings import parse_duration

    try:
        span = parse_duration(since)
    except ValueError:
        span = None
    if span is None or span.total_seconds() <= 0:
        raise Failure(f"--since: expected a duration like 7d, 24h or 30d, got {since!r}")
    services = Services.from_settings(s)
    tz = services.hours.tz
    until = services.clock.now()
    start = until - span

    def pct(value: float | None, part: int, whole: int) -> str:
        return "—" if value is None else f"{value:.0f}% ({part}/{whole})"

    def times(calendar: float | None, business: float | None) -> str:
        if calendar is None:
            return "—"
        return f"{format_minutes(business)} · {format_minutes(calendar)}"

    async def go() -> None:
        async with database(s.database.url):
            rows = await service_report(start, until, channel=channel, hours=services.hours,
                                        sla=services.sla)
        period = f"{_local(start, tz)} → {_local(until, tz)} ({tz.key})"
        if rows[-1].tickets == 0:
            where = f" on {channel}" if channel else ""
            out.print(f"No tickets created{where} from {period}.")
            return
        table = Table(title=f"{s.gateway.name} — tickets created {period}",
                      caption="response times: business time · calendar time")
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
        out.print(table)

    _run(go)


def main() -> None:
    """Console entry point: user errors in one line (exit 2), never a traceback."""
    try:
        app(standalone_mode=False)
    except (SettingsError, Failure, DatabaseNotReady) as exc:
        err.print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # e.g. the database is unreachable
        # typer 0.29 ships its own copy of click (click itself may not be installed):
        # its usage errors are typer.TyperException.
        if isinstance(exc, typer.TyperException):
            exc.show()
            sys.exit(exc.exit_code)
        err.print(Text.assemble(("error:", "red"), f" {type(exc).__name__}: {exc}"),
                  highlight=False)
        err.print("(run with -v for details)")
        if logging.getLogger().isEnabledFor(logging.INFO):
            raise
        sys.exit(1)


if __name__ == "__main__":
    main()
