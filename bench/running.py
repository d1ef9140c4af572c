"""The gateway under test, running as `centralita run` runs it (`App.run`): started for a
block, stopped in order after it.

Example:
    >>> async with running(app, listen=None):                  # doctest: +SKIP
    ...     await app.gateway.receive(inbound)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from gateway.app import App, settle_memory


@asynccontextmanager
async def running(app: App, *, listen: str | None = None,
                  tick: bool = False) -> AsyncIterator[App]:
    """`app.run` in the background (HTTP on `listen`, the scheduler's ticker with `tick`)
    for the block; start-up is frozen out of the garbage collector, as `centralita run`
    does."""
    stop, started = asyncio.Event(), asyncio.Event()

    def ready() -> None:
        settle_memory()
        started.set()

    lifecycle = asyncio.create_task(app.run(stop, listen=listen, tick=tick, started=ready))
    try:
        await asyncio.wait_for(started.wait(), 60)
        yield app
    finally:
        stop.set()
        await lifecycle
