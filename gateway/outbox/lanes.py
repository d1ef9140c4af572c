"""The outbox's lanes: one per channel, and one for the agents' console, so that nothing
one channel waits for (its rate limit, a platform's retry-after, a slow or silent server)
holds back another. A customer's acknowledgement never queues behind agents' cards.

A lane holds the rows handed over for it from the pipeline, knows which rows of the
database are its own (`among`, for its claims), when to look there next, its rate limit,
and the rows it has taken and not yet sent (given back at stop: `Outbox.run`).

Example:
    >>> lane = Lane("telegram", console=False, limiter=limiter,
    ...             among={"channel": "telegram"}, capacity=50)   # doctest: +SKIP
    >>> lane.name                                                  # doctest: +SKIP
    'telegram'
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from gateway.core.ratelimit import RateLimiter


@dataclass(frozen=True)
class Claimed:
    """One claimed outbox row: what sending it and recording the outcome need."""

    id: int
    ticket_id: int | None
    message_id: int | None
    channel: str
    audience: str
    recipient: str
    kind: str
    subject: str
    text: str
    automatic: bool
    payload: dict[str, Any]
    attempts: int
    lease_until: datetime


CLAIMED_FIELDS = [f.name for f in fields(Claimed)]
ROW_FIELDS = [name for name in CLAIMED_FIELDS if name not in ("id", "attempts")]


def claimed_of(row_id: int, row: dict[str, Any]) -> Claimed:
    """A handed-over row (as the pipeline wrote it, leased) as a claimed one."""
    return Claimed(id=row_id, **{name: row[name] for name in ROW_FIELDS},
                   attempts=row["attempts"])


class Lane:
    """One channel's, or the console's, queue, send loop state and rate limit."""

    def __init__(self, channel: str, *, console: bool, limiter: RateLimiter,
                 among: dict[str, Any], capacity: int) -> None:
        self.channel = channel
        self.console = console
        self.limiter = limiter
        self.among = among          # the rows of the database that are this lane's
        self.capacity = capacity    # at most this many claimed at once (see `Outbox`)
        self.handed: dict[int, dict[str, Any]] = {}
        self.wake = asyncio.Event()
        self.search_now = True      # look in the database at the next turn
        self.search_at = 0.0        # …or once the clock's monotonic time reaches this
        self.held: dict[int, Claimed] = {}  # taken, not sent yet
        self.sending: Claimed | None = None  # on the wire now
        self.busy = False           # claiming or sending: let it finish at stop
        self.task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return f"{self.channel} (agents' console)" if self.console else self.channel

    def leases(self) -> dict[int, datetime]:
        """Rows leased to this process and not sent, with their leases: those taken and
        not on the wire, and those handed over and not taken yet."""
        held = {i: item.lease_until for i, item in self.held.items()
                if self.sending is None or i != self.sending.id}
        held.update((i, row["lease_until"]) for i, row in self.handed.items())
        return held

    def forget(self) -> None:
        """Drop what it holds (the rows' leases, in the database, bring them back)."""
        self.held.clear()
        self.handed.clear()
        self.sending = None
