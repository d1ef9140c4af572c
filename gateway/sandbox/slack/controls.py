"""The test-facing side of `SlackSandbox`: waiting for the app to act, scheduled faults,
and the standalone control routes (`POST /sandbox/{message|block_action|...}` run a helper,
`GET /sandbox/{posted|calls|...}` read a record).

Example:
    >>> sandbox.fail("chat.postMessage", retry_after=2)  # next post: 429  # doctest: +SKIP
    >>> await sandbox.wait_for(lambda: sandbox.reactions)               # doctest: +SKIP
    >>> [post] = await sandbox.wait_posted(1)                           # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.sandbox.slack.wire import _error, _plain
from gateway.sandbox.slack.workspace import Workspace


class Controls(Workspace):
    """Waits, faults and control routes (a mixin of `SlackSandbox`)."""

    async def wait_posted(self, count: int, timeout: float = 10,  # noqa: ASYNC109
                          ) -> list[dict[str, Any]]:
        """Wait until at least `count` chat.postMessage calls were recorded; returns `posted`."""
        try:
            await self.wait_for(lambda: len(self.posted) >= count, timeout)
        except TimeoutError:
            texts = [entry["text"] for entry in self.posted]
            raise TimeoutError(f"{len(self.posted)} of {count} posts after {timeout}s: "
                               f"{texts}") from None
        return self.posted

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10,  # noqa: ASYNC109
                       ) -> Any:
        """Wait until `predicate()` is truthy (checked on every change, and every 50 ms);
        returns its value."""
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)
        return value

    def fail(self, method: str, *, error: str | None = None, status: int | None = None,
             retry_after: int | None = 1, times: int = 1) -> None:
        """The next `times` calls of `method` answer an error. Default: HTTP 429 `ratelimited`
        with `Retry-After: retry_after`; `fail(m, error="channel_not_found")` answers HTTP 200
        `{"ok": false, ...}`; `status=500` an HTTP 500. `method` "upload" is the upload URL."""
        self._check_method(method)
        if status is None:
            status = 429 if error in (None, "ratelimited") else 200
        if error is None:
            error = {429: "ratelimited", 200: "internal_error"}.get(status, "fatal_error")
        self._fails[method].extend([(error, status, retry_after if status == 429 else None)]
                                   * times)

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `method` are answered `seconds` late."""
        self._check_method(method)
        self._delays[method].extend([seconds] * times)

    def _check_method(self, method: str) -> None:
        if method != "upload" and method not in self._handlers:
            raise ValueError(f"the sandbox does not implement {method!r}")

    # -- standalone control routes -------------------------------------------------------------

    _ACTIONS = frozenset({"message", "forged", "message_changed", "message_deleted",
                          "app_mention", "block_action", "slash_command", "view_submission",
                          "url_verification", "resend", "event"})
    _SETTERS = frozenset({"add_channel", "add_user", "fail", "delay", "set_gateway"})
    _RECORDS = frozenset({"calls", "posted", "updated", "deleted", "reactions", "ephemerals",
                          "views", "uploads", "responses", "deliveries"})

    async def _control_act(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self._ACTIONS | self._SETTERS:
            return _error("unknown_action", 404)
        try:
            args = await request.json() if (await request.body()).strip() else {}
            if not isinstance(args, dict):
                raise TypeError("send a JSON object of arguments")
            if name in self._SETTERS:
                getattr(self, name)(**args)
                return JSONResponse({"ok": True})
            response = await getattr(self, name)(**args)
        except (TypeError, KeyError, ValueError, RuntimeError) as exc:
            return _error("invalid_arguments", 400, detail=str(exc))
        except httpx.HTTPError as exc:
            return _error("delivery_failed", 502, detail=f"{type(exc).__name__}: {exc}")
        return JSONResponse({"ok": True, "status": response.status_code, "body": response.text,
                             "event_id": getattr(response, "event_id", None),
                             "ts": getattr(response, "ts", None)})

    async def _control_read(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self._RECORDS:
            return _error("unknown_record", 404)
        return JSONResponse({"ok": True, name: _plain(getattr(self, name))})
