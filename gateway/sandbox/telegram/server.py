"""`TelegramSandbox`: the Bot API server itself — its routes, the method dispatch (with the
scheduled faults applied), the request decoding, and start/stop.

Example:
    >>> sandbox = TelegramSandbox("123456:TEST")                        # doctest: +SKIP
    >>> await sandbox.start()                    # port 0: a free one   # doctest: +SKIP
    >>> bot = telegram.Bot(sandbox.token, base_url=sandbox.base_url)    # doctest: +SKIP
    >>> await sandbox.stop()                                            # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.sandbox.telegram.controls import Controls
from gateway.sandbox.telegram.customers import Customers
from gateway.sandbox.telegram.files import Files
from gateway.sandbox.telegram.methods import BotApiMethods
from gateway.sandbox.telegram.updates import LongPolling
from gateway.sandbox.telegram.webhook import Webhooks
from gateway.sandbox.telegram.wire import ApiError, _decode, _error
from gateway.web.http import start_server


class TelegramSandbox(Customers, BotApiMethods, LongPolling, Webhooks, Files, Controls):
    """A Telegram Bot API server on loopback, with scripted customers and faults.

    Example:
        >>> sandbox = TelegramSandbox("123456:TEST")                         # doctest: +SKIP
        >>> await sandbox.start()                                            # doctest: +SKIP
        >>> bot = telegram.Bot("123456:TEST", base_url=sandbox.base_url,
        ...                    base_file_url=sandbox.base_file_url)          # doctest: +SKIP
        >>> sandbox.inject_text(42, "Hola, ¿está abierto?")                  # doctest: +SKIP
        >>> async with bot:                                                  # doctest: +SKIP
        ...     [update] = await bot.get_updates(timeout=5)
        ...     sandbox.fail("sendMessage", status=429, retry_after=3)   # next send: RetryAfter
        ...     await bot.send_message(42, "Recibido")
        >>> await sandbox.wait_sent(1); await sandbox.stop()                 # doctest: +SKIP

    `sent` records every sendMessage/sendPhoto/sendDocument/editMessageText; `calls` counts
    every API method called (and "download" for file downloads); `file_requests` every
    getFile and download of a stored file (`fail_file`, `hang_file` and `mend_file` decide
    how each is answered); `pending_updates` what Telegram still holds. Webhook deliveries
    go several at once (one at a time per chat), retry `webhook_attempts` times,
    `webhook_backoff` seconds apart, then give the update up (as Telegram eventually
    does); every attempt is appended to `webhook_log`. A callback on an
    unknown message carries date 0: PTB builds a `Message` whose `is_accessible` is False.
    """

    def __init__(self, token: str = "123456:TEST", *,  # noqa: S107 (a fake bot's token)
                 host: str = "127.0.0.1", port: int = 0, webhook_attempts: int = 5,
                 webhook_backoff: float = 0.2) -> None:
        super().__init__(token, host=host, port=port, webhook_attempts=webhook_attempts,
                         webhook_backoff=webhook_backoff)
        self._handlers = {
            "getMe": self._get_me, "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook, "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info, "sendMessage": self._send_message,
            "sendPhoto": functools.partial(self._send_media, "sendPhoto", "photo"),
            "sendDocument": functools.partial(self._send_media, "sendDocument", "document"),
            "editMessageText": self._edit_message_text, "sendChatAction": self._send_chat_action,
            "answerCallbackQuery": self._answer_callback_query, "getFile": self._get_file}
        self._names = {name.lower(): name for name in self._handlers}
        self.app = Starlette(routes=[
            Route("/bot{token}/{method}", self._api, methods=["GET", "POST"]),
            Route("/file/bot{token}/{path:path}", self._download, methods=["GET"]),
            Route("/sandbox/inject/{kind}", self._control_inject, methods=["POST"]),
            Route("/sandbox/sent", self._control_sent, methods=["GET"]),
        ])

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/bot"

    @property
    def base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    async def start(self) -> None:
        """Bind (port 0 picks a free port), serve in this loop, return once listening."""
        self._server, serving, self.port = await start_server(self.app, self.host, self.port)
        self._tasks = [serving, asyncio.create_task(self._deliver_webhooks())]

    async def stop(self) -> None:
        """Release long polls, stop webhook delivery and the server."""
        self._closing = True
        self._wake_pollers()
        self._mend_all_files()  # hanging downloads are answered, so the server can stop
        if self._server is not None:
            self._server.should_exit = True
        serving, *others = self._tasks or [None]
        for task in others:
            task.cancel()
        for task in others:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if serving is not None:
            await serving

    # -- HTTP --------------------------------------------------------------------------------

    async def _read_params(self, request: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        raw: dict[str, Any] = dict(request.query_params)
        files: dict[str, Any] = {}
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("multipart/form-data"):
            async with request.form(max_files=100) as form:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        files[key] = {"field": key, "filename": value.filename,
                                      "content_type": value.content_type,
                                      "data": await value.read()}
                    else:
                        raw[key] = value
        elif ctype.startswith("application/json"):
            body = await request.body()
            obj = json.loads(body) if body.strip() else {}
            if not isinstance(obj, dict):
                raise ValueError("a JSON body must be an object")
            return {**{k: _decode(k, v) for k, v in raw.items()}, **obj}, files
        else:
            raw.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        return {k: _decode(k, v) for k, v in raw.items()}, files

    async def _api(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        method = self._names.get(request.path_params["method"].lower())
        if method is None:
            return _error(404, "Not Found")
        self.calls[method] += 1
        try:
            params, files = await self._read_params(request)
        except ValueError:
            return _error(400, "Bad Request: can't parse request parameters")
        if self._delays[method]:
            await asyncio.sleep(self._delays[method].popleft())
        if self._drops[method] > 0:
            self._drops[method] -= 1
            await self._drop_connection(request)
            return Response(status_code=204)  # goes nowhere: the connection is gone
        if self._fails[method]:
            return _error(*self._fails[method].popleft())
        try:
            result = await self._handlers[method](params, files, request)
        except ApiError as exc:
            return _error(exc.status, exc.description, exc.retry_after)
        return JSONResponse({"ok": True, "result": result})

    async def _drop_connection(self, request: Request) -> None:
        """Abort the TCP connection of `request` (uvicorn keeps the transports we need)."""
        client = tuple(request.scope.get("client") or ())
        assert self._server is not None
        for connection in list(self._server.server_state.connections):
            if tuple(getattr(connection, "client", None) or ()) == client:
                connection.transport.abort()
                break
        else:
            raise RuntimeError(f"sandbox: no connection from {client} to drop")
        with contextlib.suppress(TimeoutError):  # let uvicorn notice, so nothing is answered
            async with asyncio.timeout(1):
                while (await request.receive())["type"] != "http.disconnect":
                    pass
