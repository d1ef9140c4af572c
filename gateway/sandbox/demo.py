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
    logging.getLogger("centralita").setLevel(logging.WARNING)
    # Simulated time jumps hours at a time: every action is "late" by design here.
    logging.getLogger("centralita.scheduler").setLevel(logging.ERROR)
    day = _Day(out)
    await day.start(root)
    try:
        await day.maria_writes_on_sunday_night()
        await day.the_digest_at_opening()
        await day.ana_emails()
        await day.rosa_dms_on_slack()
        await day.pedro_claims_and_answers()
        await day.the_progress_update_for_ana()
        await day.resolution_survey_and_score()
        await day.check_in_and_closing()
        await day.the_report()
        if keep_serving:
            await _serve_admin(out, day.settings.http.listen, day.clock.now())
    finally:
        await day.stop()


def _monday(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, 23, hour, minute, tzinfo=TZ)


class _Day:
    """The demo's world (the platforms' sandboxes, the gateway on a simulated clock) and
    its scenes, one method each, in the order they happen."""

    def __init__(self, out: Console) -> None:
        from gateway.sandbox.slack import SlackSandbox
        from gateway.sandbox.telegram import TelegramSandbox

        self.out = out
        self.telegram_api, self.slack_api, self.mailroom = (
            TelegramSandbox(), SlackSandbox(), _Mailroom())
        self.clock = ManualClock(datetime(2026, 11, 22, 22, 30, tzinfo=TZ))  # Sunday night
        self.maria: Any = None  # María's ticket, once she wrote
        self.card = ""  # its card in the agents' channel (the thread's ts)
        self.ack: Any = None  # the acknowledgement Ana received by email

    # The stage.

    async def start(self, root: Path) -> None:
        """Start the sandboxes, the SMTP server and the gateway (temporary database)."""
        await self.telegram_api.start()
        await self.slack_api.start()
        self.mailroom.controller.start()
        self.slack_api.add_user(PEDRO, "Pedro Soto")
        self.slack_api.add_user(ROSA, "Rosa Díaz")
        self.slack_api.add_channel(AGENTS, [PEDRO])
        http_port = free_port()
        self.slack_api.set_gateway(f"http://127.0.0.1:{http_port}/slack/events")
        workdir = Path(tempfile.mkdtemp(prefix="centralita-demo-"))
        self.settings = _settings(workdir, self.telegram_api, self.slack_api,
                                  self.mailroom.port, http_port, root)
        await migrate(self.settings.database.url)
        await Tortoise.close_connections()
        await init_db(self.settings.database.url)
        await self._start_gateway()

    async def _start_gateway(self) -> None:
        from adapters.slack.adapter import SlackAdapter
        from adapters.telegram.adapter import TelegramAdapter
        from gateway.app import assemble

        telegram = TelegramAdapter.from_settings(self.settings, clock=self.clock)
        slack = SlackAdapter.from_settings(self.settings, clock=self.clock)
        self.email = _local_mailbox(self.settings, self.clock)
        adapters = {"telegram": telegram, "slack": slack, "email": self.email}
        self.app = assemble(self.settings, adapters=adapters, clock=self.clock)
        self._stop = asyncio.Event()
        running = asyncio.Event()
        # The outbox and the scheduler do not run on their own here: the story moves the
        # simulated clock and steps them (`settle`).
        self._lifecycle = asyncio.create_task(self.app.run(
            self._stop, dispatch=False, tick=False, started=running.set))
        await _until(running.is_set)

    async def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(Exception):
            await self._lifecycle
        await Tortoise.close_connections()
        await self.telegram_api.stop()
        await self.slack_api.stop()
        self.mailroom.controller.stop()

    async def settle(self) -> None:
        """Let the scheduler and the outbox do everything due at the simulated now."""
        for _ in range(40):
            fired = await self.app.scheduler.run_due()
            sent = await self.app.outbox.dispatch_once()
            if not fired and not sent:
                return
            await asyncio.sleep(0.02)

    def at(self, moment: datetime, what: str) -> None:
        """Move the simulated clock to `moment`, and say what happens then."""
        self.clock.set(moment)
        local = moment.astimezone(TZ)
        self.out.print(Rule(Text.assemble((f"{local:%A %d %H:%M}", "bold"), f" — {what}"),
                            align="left"))

    def show(self, title: str, texts: list[str], style: str = "green") -> None:
        _show(self.out, title, texts, style)

    def maria_chat(self) -> list[dict[str, Any]]:
        """What the bot sent María on Telegram, oldest first."""
        return [s for s in self.telegram_api.sent if s["chat_id"] == MARIA_CHAT]

    # The scenes.

    async def maria_writes_on_sunday_night(self) -> None:
        """Sunday 22:30, closed: María on Telegram gets her number and the hours."""
        from gateway.store.models import Ticket

        self.at(self.clock.now(), "María writes to the shop's Telegram bot (we are closed)")
        self.telegram_api.inject_text(MARIA_CHAT, "Hola, mi pedido 5531 no llegó 😟",
                                      first_name="María", last_name="Pérez")
        await _until(lambda: Ticket.filter(channel="telegram").exists())
        await self.settle()
        await _until(self.maria_chat)
        self.show("María sees on Telegram", [s.get("text", "") for s in self.maria_chat()])

    async def the_digest_at_opening(self) -> None:
        """Monday 09:00: we open; the agents get what arrived while we were closed."""
        self.at(_monday(9), "we open: the agents get the digest")
        digest = await self.app.scheduler.digest_if_due()
        await self.settle()
        if digest is not None:
            self.show("The agents' channel in Slack", [digest.text], style="blue")

    async def ana_emails(self) -> None:
        """09:40: Ana's email; her acknowledgement carries the ticket number."""
        self.at(_monday(9, 40), "Ana emails soporte@")
        await self.email.deliver(
            b"From: Ana Rojas <ana@cliente.example>\r\nTo: " + SUPPORT.encode() +
            b"\r\nSubject: Factura duplicada\r\nMessage-ID: <ana-1@cliente.example>\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nMe cobraron dos veces la "
            b"factura 88. \xc2\xbfPueden revisar?\r\n\r\nEnviado desde mi iPhone\r\n")
        await self.settle()
        self.ack = self.mailroom.received[-1]
        self.show(f"Ana receives by email: {self.ack['Subject']}",
                  [self.ack.get_body(("plain",)).get_content()])

    async def rosa_dms_on_slack(self) -> None:
        """10:00: Rosa, a customer on Slack, writes to the bot in a DM."""
        self.at(_monday(10), "Rosa, a customer on Slack, DMs the bot")
        await self.slack_api.message("D0ROSA", ROSA, "Hola, ¿tienen stock del modelo X?",
                                     channel_type="im")
        await self.settle()
        self.show("Rosa sees in her Slack DM", [p["text"] for p in self.slack_api.posted
                                                 if p["channel"].startswith("D")])

    async def pedro_claims_and_answers(self) -> None:
        """10:05: Pedro claims María's ticket and answers from the card's thread."""
        from gateway.store.models import Ticket

        self.at(_monday(10, 5), "Pedro claims María's ticket and answers")
        self.maria = await Ticket.get(channel="telegram")
        self.card = self.maria.console_thread.split(":", 1)[1]
        await self.slack_api.block_action(PEDRO, AGENTS, self.card, "claim",
                                          str(self.maria.number))
        answer = "Hola María, tu pedido salió hoy por Chilexpress, llega mañana."
        await self.slack_api.message(AGENTS, PEDRO, answer, thread_ts=self.card)
        await self.settle()
        self.clock.advance(seconds=11)  # the undo window passes
        await self.settle()
        if not any(answer in s.get("text", "") for s in self.telegram_api.sent):
            raise DemoBroken("Pedro's answer from the Slack thread did not reach María")

    async def the_progress_update_for_ana(self) -> None:
        """13:40: nobody answered Ana yet: she is told we are on it."""
        self.at(_monday(13, 40), "no news for Ana in 4 business hours")
        await self.settle()
        if self.mailroom.received[-1] is not self.ack:
            self.show("Ana receives", [self.mailroom.received[-1].get_body(("plain",))
                                       .get_content()])

    async def resolution_survey_and_score(self) -> None:
        """14:00 Pedro resolves María's ticket; 15:00 the survey, and she presses 5."""
        from gateway.store.models import Ticket

        self.at(_monday(14), "Pedro resolves María's ticket")
        await self.slack_api.block_action(PEDRO, AGENTS, self.card, "resolve",
                                          str(self.maria.number))
        await self.settle()
        if (await Ticket.get(id=self.maria.id)).status != "resolved":
            raise DemoBroken("Pedro pressed Resolve on the card, and the ticket is not resolved")
        self.at(_monday(15), "the survey, and María presses 5")
        await self.settle()
        survey = self.maria_chat()[-1]
        self.telegram_api.inject_callback(MARIA_CHAT, f"score:{self.maria.number}:5",
                                          survey["message_id"])
        await _until(lambda: self.telegram_api.callback_answers)
        await self.settle()

    async def check_in_and_closing(self) -> None:
        """Two days later the check-in, a week later the ticket closes: María's whole chat
        and the agents' thread of her ticket."""
        self.at(datetime(2026, 11, 25, 15, 0, tzinfo=TZ), "two days later, the check-in")
        await self.settle()
        self.at(datetime(2026, 11, 30, 15, 0, tzinfo=TZ),
                "a week without news: the ticket closes")
        await self.settle()
        self.show("María's whole chat with the shop, as she sees it",
                  [s.get("text", "") for s in self.maria_chat()])
        thread = [p["text"] for p in self.slack_api.posted if p.get("thread_ts") == self.card]
        self.show(f"The agents' thread of ticket #{self.maria.number} in Slack", thread,
                  style="blue")

    async def the_report(self) -> None:
        """The day in figures, as `centralita report` tells it, and how María's ticket ends."""
        from gateway.desk.report import format_minutes, service_report
        from gateway.store.models import Ticket

        rows = await service_report(datetime(2026, 11, 22, tzinfo=TZ), self.clock.now(),
                                    hours=self.app.services.hours, sla=self.app.services.sla)
        table = Table(title="centralita report — the day in figures")
        for column in ("channel", "tickets", "1st response (median)", "SLA met",
                       "CSAT", "unanswered"):
            table.add_column(column)
        for r in rows:
            table.add_row(r.channel, str(r.tickets), format_minutes(r.first_response_median),
                          "—" if r.sla_met_pct is None else f"{r.sla_met_pct:.0f}%",
                          "—" if r.csat_average is None else f"{r.csat_average:.1f}",
                          str(r.unanswered))
        self.out.print(table)
        maria = await Ticket.get(id=self.maria.id)
        self.out.print(f"María's ticket #{self.maria.number} is [bold]{maria.status}[/bold], "
                       f"satisfaction {maria.satisfaction}/5.")


def _local_mailbox(settings: Settings, clock: ManualClock) -> Any:
    """The email channel; the customer's mail is handed over as IMAP would (`deliver`)."""
    from adapters.email.adapter import EmailAdapter

    class LocalMailbox(EmailAdapter):
        async def start(self, port: Any) -> None:
            self.port = port

        async def deliver(self, raw: bytes) -> Any:
            return await self.port.receive(self.parse(raw, self.settings.mailboxes[0],
                                                      self.clock.now()))

    return LocalMailbox.from_settings(settings, clock=clock)


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
