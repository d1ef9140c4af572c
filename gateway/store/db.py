"""The database: tortoise-orm configuration, start-up and migrations.

SQLite (the default) is one file under `data/`, in WAL mode with full durability, for one
gateway process. A PostgreSQL URL switches to asyncpg with no other change, and is what
several gateway processes share.

Example:
    >>> tortoise_config("sqlite://data/c.sqlite3")["connections"]["default"]   # doctest: +SKIP
    'sqlite://data/c.sqlite3?journal_mode=WAL&synchronous=FULL&busy_timeout=5000'
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import tortoise.backends.sqlite.executor  # noqa: F401 (registers adapters we override below)
from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.migrations.api import migrate as tortoise_migrate

from gateway.store.diagnosis import DatabaseNotReady, diagnose, shown_url

__all__ = ["DatabaseNotReady", "database", "init_db", "migrate", "tortoise_config"]

MODELS = ["gateway.store.models"]


def apps_config() -> dict[str, Any]:
    """tortoise's `apps` table: one app, our models and migrations (a new dict each
    time, since tortoise keeps what it is given)."""
    return {"models": {"models": list(MODELS), "default_connection": "default",
                       "migrations": "gateway.store.migrations"}}


def _utc_text(value: datetime) -> str:
    """SQLite keeps datetimes as text and compares them as text: with mixed UTC offsets
    ("…17:00-03:00" vs "…18:00+00:00") a due time would compare wrongly. Every aware
    datetime is therefore stored, and queried, in UTC."""
    return (value.astimezone(UTC) if value.tzinfo is not None else value).isoformat(" ")


sqlite_time = _utc_text  # the text a datetime is stored as on SQLite


# Replaces tortoise's adapter (isoformat(" ") with whatever offset the value carried).
sqlite3.register_adapter(datetime, _utc_text)
SQLITE_PRAGMAS = {"journal_mode": "WAL", "synchronous": "FULL", "busy_timeout": "5000"}


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite://")


def normalise_url(url: str) -> str:
    """Give SQLite URLs our durability pragmas and PostgreSQL URLs the asyncpg driver."""
    if is_sqlite(url):
        parts = urlsplit(url)
        query = dict(SQLITE_PRAGMAS)
        query.update(dict(parse_qsl(parts.query)))
        return urlunsplit(parts._replace(query=urlencode(query)))
    if url.startswith("postgresql://"):
        return "asyncpg://" + url.removeprefix("postgresql://")
    if url.startswith("postgres://"):
        return "asyncpg://" + url.removeprefix("postgres://")
    return url


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL (None for in-memory databases or other backends)."""
    if not is_sqlite(url):
        return None
    path = urlsplit(url).netloc + urlsplit(url).path
    return None if path in ("", ":memory:") else Path(path)


def tortoise_config(url: str, *, inline: bool = False) -> dict[str, Any]:
    """tortoise's configuration; `inline` runs SQLite on the event loop's thread
    (`gateway.store.sqlite_engine`), for the one connection the running gateway uses."""
    connection: str | dict[str, Any] = normalise_url(url)
    if inline and is_sqlite(url):
        connection = expand_db_url(connection)
        connection["engine"] = "gateway.store.sqlite_engine"
    return {
        "connections": {"default": connection},
        "apps": apps_config(),
        "use_tz": True,
        "timezone": "UTC",
    }


def _prepare(url: str) -> None:
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


async def init_db(url: str) -> None:
    """Open the connection (in this task's context; see LIBRARIES.md on contextvars).

    On SQLite its statements run on the event loop's thread (`gateway.store.sqlite_engine`)."""
    _prepare(url)
    await Tortoise.init(config=tortoise_config(url, inline=True),
                        _enable_global_fallback=True)


async def close_db() -> None:
    await Tortoise.close_connections()


async def migrate(url: str, progress: Any = None) -> None:
    """Create or upgrade every table with tortoise-orm's migrations; a database that
    cannot be reached is a `DatabaseNotReady` saying why (see `diagnosis`)."""
    _prepare(url)
    try:
        await tortoise_migrate(config=tortoise_config(url), progress=progress)
    except Exception as exc:
        if (problem := diagnose(url, exc)) is not None:
            raise problem from None
        raise




async def pending_migrations() -> list[Any]:
    """The migrations (tortoise `Migration`s: `.name`, `.initial`) this version has and
    the connected database has not applied — all of them for a new, empty database — in
    the order they would run."""
    from tortoise.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(Tortoise.get_connection("default"), apps_config())
    return [step.migration for step in await executor.plan() if not step.backward]


@asynccontextmanager
async def database(url: str, *, upgrade: bool = False) -> AsyncIterator[None]:
    """`async with database(url):` — connected (and migrated when asked) for the block.

    Without `upgrade`, a database that lacks migrations raises `DatabaseNotReady` naming
    them, rather than letting the first query fail on a missing table."""
    if upgrade:
        await migrate(url)
        await Tortoise.close_connections()
    elif (path := sqlite_path(url)) is not None and not path.exists():
        # A command that only reads must not leave an empty database file behind.
        raise DatabaseNotReady(f"the database file {path} does not exist yet: run "
                               f"`centralita migrate`")
    try:
        await init_db(url)
        # Connect now: tortoise's migration plan reads an unreachable server as empty.
        await Tortoise.get_connection("default").execute_query("SELECT 1")
        missing = [] if upgrade else await pending_migrations()
    except Exception as exc:
        await close_db()
        if (problem := diagnose(url, exc)) is not None:
            raise problem from None
        raise
    try:
        if missing:
            what = ("has no tables yet" if any(m.initial for m in missing)
                    else f"lacks migration(s) {', '.join(m.name for m in missing)}")
            raise DatabaseNotReady(f"the database {shown_url(url)} {what}: run "
                                   f"`centralita migrate`")
        yield
    finally:
        await close_db()
