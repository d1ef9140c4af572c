"""Shared fixtures: a database (SQLite file, and real PostgreSQL when reachable), a manual
clock, and a `world` — a gateway with in-memory channels that tests talk to like people.

PostgreSQL: CENTRALITA_TEST_PG (default postgres://postgres@127.0.0.1:5432/centralita_test).
The database is created if missing, migrated once per session and truncated between
tests. When it cannot be reached, its tests are skipped with the reason — unless
CENTRALITA_REQUIRE_PG=1 (set by .ci/run), which turns that into a failure.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import pytest
from tortoise import Tortoise, connections
from tortoise.backends.base.executor import EXECUTOR_CACHE

from adapters.memory import MemoryAdapter
from gateway.app import App, assemble
from gateway.core.clock import ManualClock
from gateway.core.commands import Actor, Command, CommandResult
from gateway.core.messages import Accepted, Attachment, Inbound, Party, ThreadHint
from gateway.settings import Settings, load_settings
from gateway.store.db import init_db, migrate

ROOT = Path(__file__).resolve().parent.parent
SANTIAGO = ZoneInfo("America/Santiago")
PG_URL = os.environ.get("CENTRALITA_TEST_PG", "postgres://postgres@127.0.0.1:5432/centralita_test")
TABLES = ("admin_user", "channel_state", "audit_event", "scheduled_action", "outbox",
          "attachment", "message",
          "template", "ticket", "identity", "counter", "contact")


# An agent on the tests' console ("agents", room C0AGENTS).
LAURA = Actor(console="agents", address="U0LAURA", name="Laura", rooms=frozenset({"C0AGENTS"}))


def santiago(*args: int) -> datetime:
    """A wall-clock time in Santiago: santiago(2026, 11, 22, 22, 30)."""
    return datetime(*args, tzinfo=SANTIAGO)  # type: ignore[misc]


async def _prepare_postgres(url: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    conn = await asyncpg.connect(admin, timeout=5)
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    conn = await asyncpg.connect(url, timeout=5)
    try:  # a fresh schema, so the migrations under test build it from nothing
        await conn.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    finally:
        await conn.close()
    await migrate(url)
    await Tortoise.close_connections()


@pytest.fixture(scope="session")
def postgres_url() -> str:
    try:
        asyncio.run(_prepare_postgres(PG_URL))
    except Exception as exc:
        reason = f"PostgreSQL at {PG_URL} is not reachable ({type(exc).__name__}: {exc})"
        if os.environ.get("CENTRALITA_REQUIRE_PG") == "1":
            pytest.fail(reason + " and CENTRALITA_REQUIRE_PG=1")
        pytest.skip(reason + "; set CENTRALITA_TEST_PG to run the PostgreSQL tests")
    return PG_URL


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite://{tmp_path}/centralita.sqlite3"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[str]:
    """A connected, migrated, empty database."""
    # tortoise caches generated SQL per (connection name, table), not per dialect: a
    # process that switches between SQLite and PostgreSQL must forget it.
    EXECUTOR_CACHE.clear()
    if db_url.startswith("sqlite"):
        await migrate(db_url)
        await Tortoise.close_connections()
        await init_db(db_url)
    else:
        await init_db(db_url)
        await connections.get("default").execute_script(
            f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
    try:
        yield db_url
    finally:
        await Tortoise.close_connections()


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    sections: dict[str, dict[str, Any]] = {
        "gateway": {"data_dir": str(tmp_path / "data")},
        "agents": {"console": "agents", "channel": "C0AGENTS"},
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    return load_settings(ROOT / "settings.toml", **sections)


@dataclass
class World:
    """A running gateway with in-memory channels and a clock that moves when told."""

    app: App
    clock: ManualClock
    channels: dict[str, MemoryAdapter]
    counter: int = field(default=0)

    @property
    def agents(self) -> MemoryAdapter:
        return self.channels["agents"]

    def sent_to(self, channel: str, recipient: str | None = None) -> list[Any]:
        return [m for m in self.channels[channel].sent
                if recipient is None or m.recipient == recipient]

    async def write(self, channel: str, address: str, text: str = "", *, name: str = "",
                    external_id: str | None = None, kind: str = "customer",
                    conversation: str | None = "same", subject: str = "",
                    reply_to: tuple[str, ...] = (), ticket_number: int | None = None,
                    automated: bool = False, internal: bool = False,
                    attachments: tuple[Attachment, ...] = (), locale: str | None = None,
                    new_ticket: bool = False, raw: bytes | None = None) -> Accepted:
        """Someone writes on a channel, as the platform would deliver it."""
        self.counter += 1
        if conversation == "same":
            conversation = address if channel != "email" else None
        inbound = Inbound(
            channel=channel, sender=Party(kind, address, name), text=text, subject=subject,
            external_id=external_id or f"{channel}-in-{self.counter}",
            thread=ThreadHint(reply_to=reply_to, conversation=conversation,
                              ticket_number=ticket_number, new_ticket=new_ticket),
            automated=automated, internal=internal, attachments=attachments, locale=locale,
            raw=raw)
        return await self.channels[channel].inject(inbound)

    async def agent_does(self, command: type[Command], *args: Any,
                         who: Actor | None = None) -> CommandResult:
        """An agent gives a command on the console, e.g. `agent_does(Resolve, 1001)`;
        Laura, of the agents' room, unless `who` says otherwise."""
        return await self.app.gateway.command(command(who or LAURA, *args))  # type: ignore[call-arg]

    async def deliver(self, rounds: int = 20) -> int:
        """Run the outbox until nothing is due now; returns rows handled."""
        total = 0
        for _ in range(rounds):
            done = await self.app.outbox.dispatch_once()
            total += done
            if done == 0:
                break
        return total


async def build_world(tmp_path: Path, start: datetime, **overrides: Any) -> World:
    settings = make_settings(tmp_path, **overrides)
    clock = ManualClock(start)
    channels = {c: MemoryAdapter(c) for c in ("telegram", "email", "slack", "agents")}
    app = assemble(settings, adapters=channels, clock=clock)
    await app.start()
    return World(app=app, clock=clock, channels=channels)


@pytest.fixture
async def world(db: str, tmp_path: Path) -> World:
    """Monday 23 November 2026, 10:00 in Santiago: we are open."""
    return await build_world(tmp_path, santiago(2026, 11, 23, 10, 0))
