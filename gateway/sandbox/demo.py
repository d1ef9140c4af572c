"""`centralita demo`: a scripted day of customer service, on one machine, in under a minute.

Everything is real except the platforms: the gateway (temporary SQLite database), the
Telegram adapter polling the Telegram sandbox through python-telegram-bot, the Slack
console on slack-bolt behind the gateway's HTTP app with the Slack sandbox delivering
signed events, the email channel answering through a real SMTP server on loopback
(aiosmtpd; the customer's mail is handed to the channel as its IMAP reader would), the
scheduler and the outbox. Simulated time moves forward from Sunday 22:30.

Example:
    $ centralita demo
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Awaitable, Callable
from datetime import datetime
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule
from rich.table import Table
from rich.text import Text
from tortoise import Tortoise

from gateway.core.clock import ManualClock
from gateway.settings import Settings, load_settings
from gateway.store.db import init_db, migrate
from gateway.web.http import free_port

TZ = ZoneInfo("America/Santiago")
AGENTS, PEDRO, ROSA = "C0AGENTS", "U0PEDRO", "U0ROSA"
MARIA_CHAT = 5551001
SUPPORT = "soporte@demo.example"


class _Mailroom:
    """A real SMTP server on loopback keeping what the gateway sends."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.port = free_port()
        self.received: list[Any] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # aiosmtpd
        self.received.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


class DemoBroken(RuntimeError):
    """A step of the day did not have its effect: the demo stops instead of telling a
    story that did not happen."""


async def _until(check: Callable[[], Any], seconds: float = 20) -> Any:
    for _ in range(int(seconds / 0.05)):
        value = check()
        if asyncio.iscoroutine(value) or isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.05)
    raise TimeoutError(f"the demo waited {seconds} s for {check}")


def _settings(workdir: Path, telegram: Any, slack: Any, smtp_port: int, http_port: int,
              root: Path) -> Settings:
    shipped = root / "settings.toml"
    if not shipped.exists():  # installed without the repository: the built-in defaults
        shipped = workdir / "settings.toml"
        shipped.write_text("", encoding="utf-8")
    return load_settings(
        shipped,
        database={"url": f"sqlite://{workdir}/demo.sqlite3"},
        gateway={"data_dir": str(workdir), "name": "Tienda Aurora"},
        http={"listen": f"127.0.0.1:{http_port}"},
        agents={"console": "slack", "channel": AGENTS, "undo_seconds": 10},
        outbox={"poll_interval": "0.05s", "backoff_base": "0.2s"},
        channels={
            "telegram": {"token": telegram.token, "base_url": telegram.base_url,
                         "base_file_url": telegram.base_file_url, "poll_timeout": 1},
            "slack": {"bot_token": slack.bot_token, "signing_secret": slack.signing_secret,
                      "base_url": slack.api_url},
            "email": {"token_secret": "demo-secret", "mailboxes": [{
                "name": "soporte", "address": SUPPORT, "display_name": "Tienda Aurora",
                "imap_host": "127.0.0.1", "imap_user": SUPPORT, "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port, "smtp_security": "none"}]}})


async def run_demo(out: Console, root: Path, *, keep_serving: bool = False) -> None:
    """Play the day; print what each customer saw, the agents' thread and the report.

    With `keep_serving`, the admin pages stay up afterwards (Ctrl-C stops)."""
    from adapters.email.adapter import EmailAdapter
    from adapters.slack.adapter import SlackAdapter
    from adapters.telegram.adapter import TelegramAdapter
    from gateway.app import assemble
    from gateway.desk.report import format_minutes, service_report
    from gateway.sandbox.slack import SlackSandbox
    from gateway.sandbox.telegram import TelegramSandbox
    from gateway.store.models import Ticket

    logging.getLogger("centralita").setLevel(logging.WARNING)
    # Simulated time jumps hours at a time: every action is "late" by design here.
    logging.getLogger("centralita.scheduler").setLevel(logging.ERROR)
    telegram_api, slack_api, mailroom = TelegramSandbox(), SlackSandbox(), _Mailroom()
    await telegram_api.start()
    await slack_api.start()
    mailroom.controller.start()
    slack_api.add_user(PEDRO, "Pedro Soto")
    slack_api.add_user(ROSA, "Rosa Díaz")
    slack_api.add_channel(AGENTS, [PEDRO])
    http_port = free_port()
    slack_api.set_gateway(f"http://127.0.0.1:{http_port}/slack/events")
    clock = ManualClock(datetime(2026, 11, 22, 22, 30, tzinfo=TZ))  # Sunday night
    workdir = Path(tempfile.mkdtemp(prefix="centralita-demo-"))
    settings = _settings(workdir, telegram_api, slack_api, mailroom.port, http_port, root)
    await migrate(settings.database.url)
    await Tortoise.close_connections()
    await init_db(settings.database.url)

    class LocalMailbox(EmailAdapter):
        """The email channel; the customer's mail is handed over as IMAP would."""

        async def start(self, port: Any) -> None:
            self.port = port

        async def deliver(self, raw: bytes) -> Any:
            return await self.port.receive(self.parse(raw, self.settings.mailboxes[0],
                                                      clock.now()))

    telegram = TelegramAdapter.from_settings(settings, clock=clock)
    slack = SlackAdapter.from_settings(settings, clock=clock)
    email = LocalMailbox.from_settings(settings, clock=clock)
    app = assemble(settings, adapters={"telegram": telegram, "slack": slack, "email": email},
                   clock=clock)
    stop = asyncio.Event()
    running = asyncio.Event()
    # The outbox and the scheduler do not run on their own here: the story moves the
    # simulated clock and steps them (`settle`).
    lifecycle = asyncio.create_task(app.run(stop, dispatch=False, tick=False,
                                            started=running.set))
    await _until(running.is_set)

    async def settle() -> None:
        """Let the scheduler and the outbox do everything due at the simulated now."""
        for _ in range(40):
            fired = await app.scheduler.run_due()
            sent = await app.outbox.dispatch_once()
            if not fired and not sent:
                return
            await asyncio.sleep(0.02)

    def at(moment: datetime, what: str) -> None:
        clock.set(moment)
        local = moment.astimezone(TZ)
        out.print(Rule(Text.assemble((f"{local:%A %d %H:%M}", "bold"), f" — {what}"),
                       align="left"))

    try:
        # 1. Sunday 22:30, closed: María on Telegram.
        at(clock.now(), "María writes to the shop's Telegram bot (we are closed)")
        telegram_api.inject_text(MARIA_CHAT, "Hola, mi pedido 5531 no llegó 😟",
                                 first_name="María", last_name="Pérez")
        await _until(lambda: Ticket.filter(channel="telegram").exists())
        await settle()
        await _until(lambda: [s for s in telegram_api.sent if s["chat_id"] == MARIA_CHAT])
        _show(out, "María sees on Telegram", [s.get("text", "") for s in telegram_api.sent
                                               if s["chat_id"] == MARIA_CHAT])
        # 2. Monday 09:00: we open; the digest. 09:40 Ana writes an email.
        at(datetime(2026, 11, 23, 9, 0, tzinfo=TZ), "we open: the agents get the digest")
        digest = await app.scheduler.digest_if_due()
        await settle()
        if digest is not None:
            _show(out, "The agents' channel in Slack", [digest.text], style="blue")
        at(datetime(2026, 11, 23, 9, 40, tzinfo=TZ), "Ana emails soporte@")
        await email.deliver(
            b"From: Ana Rojas <ana@cliente.example>\r\nTo: " + SUPPORT.encode() +
            b"\r\nSubject: Factura duplicada\r\nMessage-ID: <ana-1@cliente.example>\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nMe cobraron dos veces la "
            b"factura 88. \xc2\xbfPueden revisar?\r\n\r\nEnviado desde mi iPhone\r\n")
        await settle()
        ack = mailroom.received[-1]
        _show(out, f"Ana receives by email: {ack['Subject']}",
              [ack.get_body(("plain",)).get_content()])
        # 3. 10:00 Rosa writes to the bot in a Slack DM.
        at(datetime(2026, 11, 23, 10, 0, tzinfo=TZ), "Rosa, a customer on Slack, DMs the bot")
        await slack_api.message("D0ROSA", ROSA, "Hola, ¿tienen stock del modelo X?",
                                channel_type="im")
        await settle()
        _show(out, "Rosa sees in her Slack DM", [p["text"] for p in slack_api.posted
                                                  if p["channel"].startswith("D")])
        # 4. 10:05 Pedro claims María's ticket and answers from the card's thread.
        at(datetime(2026, 11, 23, 10, 5, tzinfo=TZ), "Pedro claims María's ticket and answers")
        maria = await Ticket.get(channel="telegram")
        card = maria.console_thread.split(":", 1)[1]
        await slack_api.block_action(PEDRO, AGENTS, card, "claim", str(maria.number))
        answer = "Hola María, tu pedido salió hoy por Chilexpress, llega mañana."
        await slack_api.message(AGENTS, PEDRO, answer, thread_ts=card)
        await settle()
        clock.advance(seconds=11)  # the undo window passes
        await settle()
        if not any(answer in s.get("text", "") for s in telegram_api.sent):
            raise DemoBroken("Pedro's answer from the Slack thread did not reach María")
        # 5. 13:40: nobody answered Ana yet: her progress update.
        at(datetime(2026, 11, 23, 13, 40, tzinfo=TZ), "no news for Ana in 4 business hours")
        await settle()
        if mailroom.received[-1] is not ack:
            _show(out, "Ana receives", [mailroom.received[-1].get_body(("plain",))
                                        .get_content()])
        # 6. 14:00 Pedro resolves María's ticket; 15:00 the survey; she presses 5.
        at(datetime(2026, 11, 23, 14, 0, tzinfo=TZ), "Pedro resolves María's ticket")
        await slack_api.block_action(PEDRO, AGENTS, card, "resolve", str(maria.number))
        await settle()
        if (await Ticket.get(id=maria.id)).status != "resolved":
            raise DemoBroken("Pedro pressed Resolve on the card, and the ticket is not resolved")
        at(datetime(2026, 11, 23, 15, 0, tzinfo=TZ), "the survey, and María presses 5")
        await settle()
        survey = [s for s in telegram_api.sent if s["chat_id"] == MARIA_CHAT][-1]
        telegram_api.inject_callback(MARIA_CHAT, f"score:{maria.number}:5",
                                     survey["message_id"])
        await _until(lambda: telegram_api.callback_answers)
        await settle()
        at(datetime(2026, 11, 25, 15, 0, tzinfo=TZ), "two days later, the check-in")
        await settle()
        at(datetime(2026, 11, 30, 15, 0, tzinfo=TZ), "a week without news: the ticket closes")
        await settle()
        _show(out, "María's whole chat with the shop, as she sees it",
              [s.get("text", "") for s in telegram_api.sent if s["chat_id"] == MARIA_CHAT])
        thread = [p["text"] for p in slack_api.posted if p.get("thread_ts") == card]
        _show(out, f"The agents' thread of ticket #{maria.number} in Slack", thread,
              style="blue")
        rows = await service_report(datetime(2026, 11, 22, tzinfo=TZ), clock.now(),
                                    hours=app.services.hours, sla=app.services.sla)
        table = Table(title="centralita report — the day in figures")
        for column in ("channel", "tickets", "1st response (median)", "SLA met",
                       "CSAT", "unanswered"):
            table.add_column(column)
        for r in rows:
            table.add_row(r.channel, str(r.tickets), format_minutes(r.first_response_median),
                          "—" if r.sla_met_pct is None else f"{r.sla_met_pct:.0f}%",
                          "—" if r.csat_average is None else f"{r.csat_average:.1f}",
                          str(r.unanswered))
        out.print(table)
        status = (await Ticket.get(id=maria.id)).status
        out.print(f"María's ticket #{maria.number} is [bold]{status}[/bold], "
                  f"satisfaction {(await Ticket.get(id=maria.id)).satisfaction}/5.")
        if keep_serving:
            await _serve_admin(out, settings.http.listen, clock.now())
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await lifecycle
        await Tortoise.close_connections()
        await telegram_api.stop()
        await slack_api.stop()
        mailroom.controller.stop()


async def _serve_admin(out: Console, listen: str, now: datetime) -> None:
    """Leave the admin pages up with a throw-away admin until Ctrl-C."""
    import secrets
    import signal

    from gateway.store.models import AdminUser
    from gateway.web.auth import hash_password

    password = secrets.token_urlsafe(12)
    await AdminUser.create(username="demo", password_hash=hash_password(password),
                           created_at=now)
    out.print(Panel(Text(f"http://{listen}/admin/\nuser: demo\npassword: {password}\n\n"
                         "Templates, hours and the dashboard of this demo day. "
                         "Ctrl-C stops."), title="Admin pages", border_style="magenta",
                    expand=False))
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    await done.wait()


def _show(out: Console, title: str, texts: list[str], style: str = "green") -> None:
    body = "\n\n".join(t.strip() for t in texts if t and t.strip()) or "(nothing)"
    out.print(Panel(Text(body), title=Text(title), border_style=style, expand=False))


def main(out: Console, root: Path, *, keep_serving: bool = False) -> None:
    asyncio.run(run_demo(out, root, keep_serving=keep_serving))
