"""The gateway under test, running as `centralita run` runs it (`App.run`): started for a
block, stopped in order after it.

Example:
    >>> async with running(app, listen=None):                  # doctest: +SKIP
    ...     await app.gateway.receive(inbound)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.app import App, settle_memory
from gateway.app import running as app_running


@asynccontextmanager
async def running(app: App, *, listen: str | None = None,
                  tick: bool = False) -> AsyncIterator[App]:
    """`gateway.app.running`, with start-up frozen out of the garbage collector, as
    `centralita run` does."""
    async with app_running(app, listen=listen, tick=tick, started=settle_memory):
        yield app
