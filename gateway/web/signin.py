"""Checking an admin's password, guarded: the sign-in form and the API's HTTP Basic both
come through `SignInGuard.admin`.

- Throttled per client address and per user name: a token bucket each
  (`gateway.core.ratelimit`, on the gateway's clock), `[http] signin_attempts` and
  `signin_attempts_per_user` a minute. Every attempt takes a token from both before the
  password is looked at, and a right password gives them back, so only wrong passwords
  count; an empty bucket refuses even the right password (`TooManyAttempts`, shown as 429
  with Retry-After), or the refusal itself would tell a guess was right.
- scrypt runs on a worker thread (`asyncio.to_thread`, at most two at a time): the event
  loop that serves webhooks and customers never waits for a hash.
- An unknown user name costs the same scrypt as a known one (`auth.verify_password`), so
  the answer's time does not tell which names exist.

Example:
    >>> guard = SignInGuard(settings.http, clock)                   # doctest: +SKIP
    >>> await guard.admin("203.0.113.7", "carla", "una-clave")      # doctest: +SKIP
    <AdminUser: 1>
"""

from __future__ import annotations

import asyncio
import math

from starlette.requests import Request

from gateway.core.clock import Clock
from gateway.core.ratelimit import PerKeyLimiter
from gateway.settings import HttpSettings
from gateway.store.models import AdminUser
from gateway.web import auth

NAME_LENGTH = 100  # AdminUser.username's max_length: a longer name is nobody


class TooManyAttempts(Exception):
    """Too many wrong passwords lately from this address or for this name."""

    def __init__(self, seconds: float) -> None:
        self.retry_after = max(1, math.ceil(seconds))
        super().__init__(f"too many sign-in attempts; retry after {self.retry_after} s")


class SignInGuard:
    """Who may try a password now, and whose it is (see the module docstring)."""

    def __init__(self, settings: HttpSettings, clock: Clock, hashing: int = 2) -> None:
        per_address, per_name = settings.signin_attempts, settings.signin_attempts_per_user
        self.by_address = PerKeyLimiter(per_address / 60, clock, burst=per_address)
        self.by_name = PerKeyLimiter(per_name / 60, clock, burst=per_name)
        self._hashing = asyncio.Semaphore(hashing)

    async def admin(self, address: str, username: str, password: str) -> AdminUser | None:
        """The admin these credentials are right for, or None. Raises TooManyAttempts."""
        name = username.strip().casefold()[:NAME_LENGTH]
        wait = self.by_address.try_acquire(address)
        if wait:
            raise TooManyAttempts(wait)
        wait = self.by_name.try_acquire(name)
        if wait:
            self.by_address.give_back(address)  # refused before any check: not counted
            raise TooManyAttempts(wait)
        admin = (await AdminUser.get_or_none(username=username)
                 if len(username) <= NAME_LENGTH else None)
        async with self._hashing:
            right = await asyncio.to_thread(auth.verify_password, password,
                                            admin.password_hash if admin else None)
        if not right:
            return None
        self.by_address.give_back(address)
        self.by_name.give_back(name)
        return admin


def client_address(request: Request) -> str:
    """The address a request came from (uvicorn takes X-Forwarded-For from a proxy on
    127.0.0.1, see FORWARDED_ALLOW_IPS), the throttle's first key."""
    return request.client.host if request.client else "unknown"
