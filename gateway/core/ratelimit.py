"""Rate limits, written once, on the gateway's clock (so tests move time instead of
waiting): a token bucket per channel in the outbox, and one per chat where a platform
limits each conversation (Telegram: about one message a second per chat).

Example:
    >>> limiter = RateLimiter(rate=1.0, clock=ManualClock(start))   # doctest: +SKIP
    >>> await limiter.acquire(); await limiter.acquire()             # the second waits 1 s
"""

from __future__ import annotations

from collections.abc import Hashable

from gateway.core.clock import Clock


class RateLimiter:
    """A token bucket: `rate` messages a second, bursts of `burst` (default: the rate, at
    least one)."""

    def __init__(self, rate: float, clock: Clock, burst: float | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate)
        self.clock = clock
        self._tokens = self.burst
        self._stamp = clock.monotonic()
        self._paused_until = 0.0

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (a platform's retry-after)."""
        self._paused_until = max(self._paused_until, self.clock.monotonic() + seconds)

    def idle_since(self) -> float:
        """When it last gave a token (on the clock's monotonic scale)."""
        return self._stamp

    async def acquire(self) -> None:
        while True:
            now = self.clock.monotonic()
            if now < self._paused_until:
                await self.clock.sleep(self._paused_until - now)
                continue
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await self.clock.sleep(max(0.001, (1 - self._tokens) / self.rate))


class PerKeyLimiter:
    """A `RateLimiter` per key (a chat), forgetting keys idle for a while once there are
    many, so that a bot writing to a million chats keeps a small table."""

    def __init__(self, rate: float, clock: Clock, *, burst: float | None = None,
                 keep: int = 10_000) -> None:
        self.rate, self.burst, self.clock, self.keep = rate, burst, clock, keep
        self._limiters: dict[Hashable, RateLimiter] = {}

    async def acquire(self, key: Hashable) -> None:
        limiter = self._limiters.get(key)
        if limiter is None:
            if len(self._limiters) >= self.keep:
                self._forget_idle()
            limiter = self._limiters[key] = RateLimiter(self.rate, self.clock, self.burst)
        await limiter.acquire()

    def _forget_idle(self) -> None:
        """Drop limiters whose bucket is full again (they would let a message through)."""
        now = self.clock.monotonic()
        full_after = (self.burst or max(1.0, self.rate)) / self.rate
        self._limiters = {key: limiter for key, limiter in self._limiters.items()
                          if now - limiter.idle_since() < full_after}
