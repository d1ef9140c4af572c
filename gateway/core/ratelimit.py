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

    def try_acquire(self) -> float:
        """Take a token if there is one now and return 0.0; otherwise take nothing and
        return the seconds until there is one (for callers that refuse rather than wait)."""
        now = self.clock.monotonic()
        if now < self._paused_until:
            return self._paused_until - now
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / self.rate

    def give_back(self) -> None:
        """Return a token taken by `try_acquire` (what it was taken for did not count)."""
        self._tokens = min(self.burst, self._tokens + 1)


class PerKeyLimiter:
    """A `RateLimiter` per key (a chat), forgetting keys idle for a while once there are
    many, so that a bot writing to a million chats keeps a small table."""

    def __init__(self, rate: float, clock: Clock, *, burst: float | None = None,
                 keep: int = 10_000) -> None:
        self.rate, self.burst, self.clock, self.keep = rate, burst, clock, keep
        self._limiters: dict[Hashable, RateLimiter] = {}

    async def acquire(self, key: Hashable) -> None:
        await self._limiter(key).acquire()

    def try_acquire(self, key: Hashable) -> float:
        """`RateLimiter.try_acquire` for `key`: 0.0 when taken, else seconds to wait."""
        return self._limiter(key).try_acquire()

    def give_back(self, key: Hashable) -> None:
        """`RateLimiter.give_back` for `key`."""
        if (limiter := self._limiters.get(key)) is not None:
            limiter.give_back()

    def _limiter(self, key: Hashable) -> RateLimiter:
        limiter = self._limiters.get(key)
        if limiter is None:
            if len(self._limiters) >= self.keep:
                self._forget_idle()
            limiter = self._limiters[key] = RateLimiter(self.rate, self.clock, self.burst)
        return limiter

    def _forget_idle(self) -> None:
        """Drop limiters whose bucket is full again (they would let a message through)."""
        now = self.clock.monotonic()
        full_after = (self.burst or max(1.0, self.rate)) / self.rate
        self._limiters = {key: limiter for key, limiter in self._limiters.items()
                          if now - limiter.idle_since() < full_after}
