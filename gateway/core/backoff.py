"""Backoff, written once: how long to wait before trying again after `attempt` failures,
doubling from `base` up to `ceiling`, with jitter so that many waiting parties do not
retry in step, and never sooner than the platform's own word (`retry_after`).

Used by the outbox and the scheduler (a row's next due time), and by the channels'
reconnecting loops (Telegram polling, IMAP). A library's retry loop (tenacity, stamina)
does not fit the first two: there the wait is a due time in the database, not a loop in
memory, and tests hand in the random source.

Example:
    >>> Backoff(base=10, ceiling=3600, jitter=False).delay(3)
    40.0
    >>> Backoff(base=10, ceiling=3600, jitter=False).delay(1, retry_after=30) >= 30
    True
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """`base` seconds after the first failure, doubling up to `ceiling`; with `jitter`,
    each wait is drawn between half of that and all of it."""

    base: float
    ceiling: float
    jitter: bool = True
    rng: Callable[[], float] = field(default=random.random, compare=False)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `attempt`-th failure (1 = the first)."""
        delay = min(self.ceiling, self.base * 2.0 ** min(max(0, attempt - 1), 62))
        if self.jitter:
            delay *= 0.5 + self.rng() / 2
        if retry_after is not None:
            delay = max(delay, retry_after * (1 + self.rng() / 10))
        return delay
