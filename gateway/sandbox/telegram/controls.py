"""The test-facing side of `TelegramSandbox`: waiting for sends, scheduled faults (errors,
delays, dropped connections) and the standalone control routes
(`POST /sandbox/inject/{kind}`, `GET /sandbox/sent`).

Example:
    >>> sandbox.fail("sendMessage", retry_after=3)    # next send: 429   # doctest: +SKIP
    >>> sandbox.drop("getMe")         # next getMe: connection closed   # doctest: +SKIP
    >>> await sandbox.wait_sent(1)                                      # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.sandbox.telegram.state import SandboxState
from gateway.sandbox.telegram.wire import _STATUS_TEXT, _error


class Controls(SandboxState):
    """Waits, faults and control routes (a mixin of `TelegramSandbox`)."""

    async def wait_sent(self, count: int, timeout: float = 10,  # noqa: ASYNC109
                        ) -> list[dict[str, Any]]:
        """Wait until at least `count` sends were recorded; returns `sent`."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.sent) < count:
                    self._sent_event.clear()
                    await self._sent_event.wait()
        except TimeoutError:
            methods = [entry["method"] for entry in self.sent]
            raise TimeoutError(f"{len(self.sent)} of {count} sends after {timeout}s: "
                               f"{methods}") from None
        return self.sent

    def fail(self, method: str, *, status: int = 429, retry_after: int | None = None,
             description: str | None = None, times: int = 1) -> None:
        """The next `times` calls of `method` answer this error (429 carries retry_after)."""
        if status == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (f"Too Many Requests: retry after {retry_after}" if status == 429
                           else _STATUS_TEXT.get(status, "Error"))
        self._fails[self._method(method)].extend([(status, description, retry_after)] * times)

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `method` are answered `seconds` late."""
        self._delays[self._method(method)].extend([seconds] * times)

    def drop(self, method: str, times: int = 1) -> None:
        """The next `times` calls of `method` get their connection closed, no HTTP answer."""
        self._drops[self._method(method)] += times

    def _method(self, name: str) -> str:
        method = self._names.get(name.lower())
        if method is None:
            raise ValueError(f"the sandbox does not implement {name!r}")
        return method

    # -- standalone control routes -------------------------------------------------------------

    async def _control_inject(self, request: Request) -> Response:
        inject = getattr(self, f"inject_{request.path_params['kind']}", None)
        if inject is None:
            return _error(404, "Not Found")
        try:
            args = await request.json()
            if "data_b64" in args:
                args["data"] = base64.b64decode(args.pop("data_b64"))
            return JSONResponse({"ok": True, "result": inject(**args)})
        except (TypeError, KeyError, ValueError) as exc:
            return _error(400, f"Bad Request: {exc}")

    async def _control_sent(self, request: Request) -> Response:
        sent = [{k: v for k, v in entry.items() if k != "files"} for entry in self.sent]
        return JSONResponse({"ok": True, "result": sent})
