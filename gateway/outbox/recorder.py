"""Recording what was sent, in the background: whatever `RECORD_LINGER` gathers (several
passes' worth under load) is recorded in one transaction, in order. A record that fails
is logged; its rows stay leased and are sent again when the lease runs out (at least
once, as after a crash).

Example:
    >>> recorder = Recorder(outbox.record)            # doctest: +SKIP
    >>> recorder.add(outcome); await recorder.close()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("centralita.outbox")

RECORD_LINGER = 0.05  # seconds sent rows wait to be recorded together


class Recorder:
    """Records outcomes in the background (see the module docstring)."""

    def __init__(self, record: Callable[[list[Any]], Awaitable[None]]) -> None:
        self._record = record
        self._pending: list[Any] = []
        self._task: asyncio.Task[None] | None = None

    def add(self, outcome: Any) -> None:
        """One row's outcome, recorded with the others gathered meanwhile (from every
        lane: one commit for all)."""
        self._pending.append(outcome)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending:
            # Let a few passes' outcomes gather: each record is a commit, and on SQLite a
            # commit's fsync is most of its cost (at 1000 msgs/s, one record per pass
            # spent a quarter of the time in fsync). The rows stay leased meanwhile.
            await asyncio.sleep(RECORD_LINGER)
            outcomes, self._pending = self._pending, []
            try:
                await self._record(outcomes)
            except Exception:
                log.exception("recording %d sent outbox row(s) failed; they are sent again "
                              "when their lease runs out", len(outcomes))

    async def close(self) -> None:
        """Wait until everything added is recorded."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)
