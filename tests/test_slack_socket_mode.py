"""Slack in Socket Mode: the console with no public URL (a small team behind a firewall).

The gateway's real adapter connects to the Slack sandbox's websocket (apps.connections.open
with the app token, then Bolt's aiohttp Socket Mode client); the sandbox sends every event,
button press and slash command over it as an envelope and waits for the acknowledgement.
Nothing listens on HTTP here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.memory import MemoryAdapter
from adapters.slack.adapter import SlackAdapter
from gateway.app import assemble
from gateway.core.messages import Inbound, Party, ThreadHint
from gateway.sandbox.slack import SlackSandbox
from gateway.store.models import Ticket
from tests.conftest import make_settings
from tests.mailservers import eventually

AGENTS = "C0AGENTS"
PEDRO = "U0PEDRO"


@pytest.fixture
async def socket_console(db: str, tmp_path: Path) -> AsyncIterator[tuple]:
    sandbox = SlackSandbox()
    await sandbox.start()
    sandbox.socket_mode = True
    sandbox.add_user(PEDRO, "Pedro Soto")
    sandbox.add_user("U0CLIENTE", "Rosa Cliente")
    sandbox.add_channel(AGENTS, [PEDRO])
    settings = make_settings(
        tmp_path, agents={"console": "slack", "channel": AGENTS, "undo_seconds": 0},
        outbox={"poll_interval": "0.1s"},
        channels={"slack": {"mode": "socket", "bot_token": sandbox.bot_token,
                            "app_token": sandbox.app_token, "base_url": sandbox.api_url}})
    slack = SlackAdapter.from_settings(settings)
    telegram = MemoryAdapter("telegram")
    app = assemble(settings, adapters={"slack": slack, "telegram": telegram})
    stop = asyncio.Event()
    await app.start()  # opens the websocket
    dispatcher = asyncio.create_task(app.outbox.run(stop))
    yield app, sandbox, telegram
    stop.set()
    app.outbox.wake()
    await dispatcher
    await app.stop()
    await sandbox.stop()


async def test_without_a_public_url_the_console_works_over_socket_mode(
        socket_console: tuple) -> None:
    _, sandbox, telegram = socket_console
    assert [c["method"] for c in sandbox.calls if c["method"] == "apps.connections.open"]
    # María writes on Telegram: her card appears in the agents' channel.
    await telegram.inject(Inbound(channel="telegram", sender=Party("customer", "555", "María"),
                                  text="Hola, mi pedido no llegó", external_id="tg-1",
                                  thread=ThreadHint(conversation="555")))
    ticket = await eventually(lambda: Ticket.get_or_none(number=1001,
                                                         console_thread__isnull=False))
    ts = ticket.console_thread.split(":", 1)[1]
    # Pedro answers in the thread (an event on the socket): it reaches María.
    answer = await sandbox.message(AGENTS, PEDRO, "Hola María, sale hoy.", thread_ts=ts)
    assert answer.status_code == 200  # acknowledged on the socket
    reply = await eventually(lambda: [m for m in telegram.sent if m.kind == "agent_reply"])
    assert reply[0].text.startswith("Hola María, sale hoy.")
    # Claim (a button) and /ticket resolve (a slash command) travel on the socket too.
    await sandbox.block_action(PEDRO, AGENTS, ts, "claim", "1001")
    await eventually(lambda: Ticket.get_or_none(number=1001, assignee="Pedro Soto"))
    await sandbox.slash_command(PEDRO, AGENTS, "/ticket", "resolve 1001")
    await eventually(lambda: Ticket.get_or_none(number=1001, status="resolved"))
    await sandbox.wait_for(lambda: any("resuelto" in r.get("text", "")
                                       for r in sandbox.responses))
    assert all(d["url"] == "socket-mode" and d["status"] == 200 for d in sandbox.deliveries)


async def test_a_slack_dm_customer_over_socket_mode_gets_her_acknowledgement(
        socket_console: tuple) -> None:
    _, sandbox, _ = socket_console
    await sandbox.message("D0ROSA", "U0CLIENTE", "Hola, necesito ayuda", channel_type="im")
    await sandbox.wait_for(lambda: [p for p in sandbox.posted if p["channel"] == "D0ROSA"])
    ack = next(p for p in sandbox.posted if p["channel"] == "D0ROSA")
    assert "#1001" in ack["text"]
