"""getUpdates: long polling over the queued updates, with Telegram's offsets and its 409s
(a newer poll ends an older one; no polling while a webhook is set).

Example:
    >>> sandbox.inject_text(42, "Hola")                                 # doctest: +SKIP
    >>> [update] = await bot.get_updates(timeout=5)   # answered at once  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request

from gateway.sandbox.telegram.state import SandboxState
from gateway.sandbox.telegram.wire import _P, ApiError, _int


class LongPolling(SandboxState):
    """getUpdates (a mixin of `TelegramSandbox`)."""

    async def _get_updates(self, p: _P, files: _P, request: Request) -> Any:
        offset = _int(p.get("offset"), 0, "offset")
        limit = min(max(_int(p.get("limit"), 100, "limit"), 1), 100)
        try:
            timeout = max(float(p.get("timeout") or 0), 0.0)
        except (TypeError, ValueError):
            raise ApiError(400, "Bad Request: invalid timeout specified") from None
        self._check_polling_allowed()
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # an older long poll now answers 409, like Telegram
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        gone = asyncio.create_task(self._wait_disconnect(request))
        try:
            while True:
                self._check_polling_allowed()
                if generation != self._poll_generation:
                    raise ApiError(409, "Conflict: terminated by other getUpdates request; make "
                                        "sure that only one bot instance is running")
                remaining = deadline - loop.time()
                if self._pending or remaining <= 0 or self._closing or gone.done():
                    return self._pending[:limit]
                woken = asyncio.create_task(self._poll_wake.wait())
                await asyncio.wait({woken, gone}, timeout=remaining,
                                   return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        finally:
            gone.cancel()

    def _check_polling_allowed(self) -> None:
        if self._webhook is not None:
            raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                "use deleteWebhook to delete the webhook first")

    @staticmethod
    async def _wait_disconnect(request: Request) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
