"""tortoise-orm's SQLite client, run on the event loop's own thread.

tortoise talks to SQLite through aiosqlite, which runs every statement on a worker thread
and wakes the event loop with the result. For the gateway that is mostly a loss: one
process owns the file, and every statement of a batch waits for the one before. So the
loop sat idle while the worker ran, then the worker waited for the loop, and each hop
cost ~0.3 ms of waking and handing over (measured: a batch of 64 new tickets makes ~25 of
them). Here aiosqlite's own `Connection` API runs each call where it is awaited, and
tortoise's client, transactions and queries stay exactly as they are.
`python -m bench.pipeline` went from ~1350 to ~1850 msgs/s with this alone.

The price: while SQLite works (a commit's fsync, a long report query, waiting for
another process's write lock up to `busy_timeout`) nothing else in the process runs, and
SQLite's own work no longer uses a second core. That shows only when the loop is full of
other work (README: Telegram at 150 updates/s). It is used for the gateway's one runtime
connection only (`gateway.store.db`), never for migrations, which open a second connection to
the same file: two on one thread would wait on each other.

Example:
    >>> tortoise_config("sqlite://data/c.sqlite3", inline=True)[   # doctest: +SKIP
    ...     "connections"]["default"]["engine"]
    'gateway.store.sqlite_engine'
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite
from tortoise.backends.sqlite.client import SqliteClient


class LoopConnection(aiosqlite.Connection):
    """aiosqlite's connection API with no worker thread: each call runs when awaited."""

    def __init__(self, path: str) -> None:
        super().__init__(lambda: sqlite3.connect(path, isolation_level=None), 64)

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._connection is None:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    async def _connect(self) -> LoopConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    def __await__(self):  # type: ignore[no-untyped-def]
        return self._connect().__await__()  # no thread to start

    def stop(self) -> None:  # type: ignore[override]
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


class LoopSqliteClient(SqliteClient):
    """tortoise's `SqliteClient` on a `LoopConnection` (same pragmas, same row type)."""

    async def create_connection(self, with_db: bool) -> None:
        if not self._connection:
            self._connection = await LoopConnection(self.filename)
            self._connection._conn.row_factory = sqlite3.Row
            for pragma, value in self.pragmas.items():
                self._connection._conn.execute(f"PRAGMA {pragma}={value}").close()
            await self._post_connect()


client_class = LoopSqliteClient
