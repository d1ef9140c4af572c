"""`centralita simulate`: one message through the real pipeline, shown as everyone sees it."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.panel import Panel
from rich.text import Text

from gateway.cli.common import Failure, _run, _settings, check_channel, out
from gateway.core.clock import ManualClock, SystemClock
from gateway.core.messages import Inbound, Party, ThreadHint
from gateway.pipeline.receive import InboundRejected
from gateway.settings import Settings
from gateway.store.db import database
from gateway.store.db import migrate as run_migrations


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
        text = _read_text(text_file)
    if eml is not None:
        channel = "email"
    check_channel(channel)
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


def _read_text(text_file: Path) -> str:
    """What the customer writes, from `--text-file` ('-' for standard input)."""
    try:
        return (sys.stdin.read() if str(text_file) == "-"
                else text_file.read_text(encoding="utf-8", errors="surrogateescape"))
    except OSError as exc:
        raise Failure(f"--text-file: cannot read {text_file}: {exc.strerror}") from None


def _parse_at(value: str | None, tz: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Failure(f"--at: expected a date and time like 2026-11-22T22:30, got {value!r}"
                      ) from None
    return moment.replace(tzinfo=tz) if moment.tzinfo is None else moment


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
