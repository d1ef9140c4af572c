"""Time, handed in: the system clock in production, a manual one in tests and the demo.

Example:
    >>> from datetime import UTC, datetime
    >>> clock = ManualClock(datetime(2026, 11, 23, 1, 30, tzinfo=UTC))
    >>> clock.advance(minutes=5).isoformat()
    '2026-11-23T01:35:00+00:00'
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where every part of Centralita reads the time and waits."""

    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for rate limits and latencies."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait; a manual clock moves forward instead."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to (or when something sleeps on it)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start.astimezone(UTC)
        self._mono = 0.0

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def set(self, when: datetime) -> datetime:
        """Jump to `when` (never backwards)."""
        when = when.astimezone(UTC)
        if when > self._now:
            self.advance(seconds=(when - self._now).total_seconds())
        return self._now

    def advance(self, **delta: float) -> datetime:
        """Move forward by a timedelta given as keywords: `advance(minutes=5)`."""
        step = timedelta(**delta)
        self._now += step
        self._mono += step.total_seconds()
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:  # at least a microsecond, or a sleeper could wait forever
            self.advance(seconds=max(seconds, 1e-6))
        await asyncio.sleep(0)
