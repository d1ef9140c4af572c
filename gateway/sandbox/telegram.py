"""A fake Telegram Bot API server on loopback (Starlette + uvicorn, in the caller's loop).

python-telegram-bot (PTB) is pointed at it with
`Bot(token, base_url=sandbox.base_url, base_file_url=sandbox.base_file_url)`. It speaks the
wire format PTB uses: parameters form-encoded (non-string values JSON-encoded), multipart for
uploads, or a JSON body; answers `{"ok": true, "result": ...}` or `{"ok": false, "error_code",
"description", "parameters": {"retry_after"}}`. Telegram's limits are enforced (text 4096,
caption 1024, callback data 64 bytes, downloads 20 MB), and faults can be scheduled.

Run standalone with `python -m gateway.sandbox.telegram --port 8081 [--token T]`; customers
are then simulated with `POST /sandbox/inject/{text|photo|document|voice|edit|callback}`
(a JSON object of the inject_* arguments; bytes as `data_b64`) and `GET /sandbox/sent`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import functools
import html
import json
import re
import time
from collections import Counter, defaultdict, deque
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.web.http import QuietServer, start_server

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_TEXT_LIMIT = 200
CALLBACK_DATA_LIMIT = 64
DOWNLOAD_LIMIT = 20 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
GROUP_SENDER_ID = 1000  # default `from.id` of injected group messages
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")
# PTB sends these as plain strings; every other value arrives JSON-encoded.
_STRING_PARAMS = frozenset({
    "text", "caption", "parse_mode", "url", "secret_token", "callback_query_id", "file_id",
    "inline_message_id", "photo", "document", "voice", "ip_address", "action",
})
_STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                409: "Conflict", 413: "Request Entity Too Large", 500: "Internal Server Error",
                502: "Bad Gateway"}
_NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply "
                 "markup are exactly the same as a current content and reply markup of the message")
_P = dict[str, Any]  # decoded request parameters, or uploaded files by field
_KINDS = {"photo": ("photos", ".jpg", "image/jpeg"), "document": ("documents", "", ""),
          "voice": ("voice", ".oga", "audio/ogg")}


class ApiError(Exception):
    """An error answer: raised by the method handlers, turned into `{"ok": false, ...}`."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


def _error(status: int, description: str, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=status)


def _decode(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int(value: Any, default: int | None = None, name: str = "value") -> int:
    if value is None or value == "":
        if default is None:
            raise ApiError(400, f"Bad Request: {name} is empty")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: invalid {name} specified") from None


def _visible(text: str, parse_mode: Any) -> str:
    """The text after entity parsing (HTML only; Markdown is counted as written)."""
    if isinstance(parse_mode, str) and parse_mode.upper() == "HTML":
        return html.unescape(re.sub(r"<[^>]*>", "", text))
    return text


def _reply_to(p: dict[str, Any]) -> int | None:
    params = p.get("reply_parameters")
    if isinstance(params, dict) and params.get("message_id") is not None:
        return _int(params["message_id"], name="reply message id")
    if p.get("reply_to_message_id") not in (None, ""):
        return _int(p["reply_to_message_id"], name="reply message id")
    return None


def _checked_text(p: dict[str, Any], too_long: str) -> tuple[str, str]:
    """A message's `text` as sent and as shown, refused like Telegram refuses it (empty,
    over 4096 characters once formatted — `too_long` is the method's own wording — or
    with a malformed `reply_markup`)."""
    text = p.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    visible = _visible(text, p.get("parse_mode"))
    if len(visible) > TEXT_LIMIT:
        raise ApiError(400, too_long)
    _check_markup(p.get("reply_markup"))
    return text, visible


def _check_markup(markup: Any) -> None:
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows or []:
        for button in row:
            data = button.get("callback_data") if isinstance(button, dict) else None
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


class TelegramSandbox:
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
    every API method called (and "download" for file downloads). Webhook deliveries retry
    `webhook_attempts` times, `webhook_backoff` seconds apart, then give the update up (as
    Telegram eventually does); every attempt is appended to `webhook_log`. A callback on an
    unknown message carries date 0: PTB builds a `Message` whose `is_accessible` is False.
    """

    def __init__(self, token: str = "123456:TEST", *,  # noqa: S107 (a fake bot's token)
                 host: str = "127.0.0.1", port: int = 0, webhook_attempts: int = 5,
                 webhook_backoff: float = 0.2) -> None:
        self.token, self.host, self.port = token, host, port
        self.webhook_attempts, self.webhook_backoff = webhook_attempts, webhook_backoff
        bot_id = token.split(":", 1)[0]
        self.bot_user: dict[str, Any] = {
            "id": int(bot_id) if bot_id.isdigit() else 1, "is_bot": True,
            "first_name": "Centralita Sandbox", "username": "centralita_sandbox_bot",
            "can_join_groups": True, "can_read_all_group_messages": False,
            "supports_inline_queries": False}
        self.sent: list[dict[str, Any]] = []
        self.callback_answers: list[dict[str, Any]] = []
        self.webhook_log: list[dict[str, Any]] = []
        self.calls: Counter[str] = Counter()
        self._chats: dict[int, dict[str, Any]] = {}
        self._senders: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._message_seq: Counter[int] = Counter()
        self._files: dict[str, dict[str, Any]] = {}
        self._paths: dict[str, str] = {}
        self._callbacks: set[str] = set()
        self._pending: list[dict[str, Any]] = []
        self._next_update_id = 1
        self._webhook: dict[str, Any] | None = None
        self._hook_error: tuple[int, str] | None = None
        self._poll_generation = 0
        self._poll_wake = asyncio.Event()
        self._hook_wake = asyncio.Event()
        self._sent_event = asyncio.Event()
        self._fails: defaultdict[str, deque[tuple[int, str, int | None]]] = defaultdict(deque)
        self._delays: defaultdict[str, deque[float]] = defaultdict(deque)
        self._drops: Counter[str] = Counter()
        self._closing = False
        self._server: QuietServer | None = None
        self._tasks: list[asyncio.Task[None]] = []
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

    # -- test API ----------------------------------------------------------------------------

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

    def block(self, chat_id: int) -> None:
        """The customer blocked the bot: sends to this chat answer 403."""
        self.known_chat(chat_id)
        self._blocked.add(chat_id)

    def unblock(self, chat_id: int) -> None:
        self._blocked.discard(chat_id)

    def known_chat(self, chat_id: int, *, first_name: str = "María") -> None:
        """Make a chat known without a customer message (private if id > 0, else group)."""
        if chat_id not in self._chats:
            self._chats[chat_id] = ({"id": chat_id, "type": "private", "first_name": first_name}
                                    if chat_id > 0 else
                                    {"id": chat_id, "type": "group", "title": "Grupo de prueba"})

    def inject_text(self, chat_id: int, text: str, **who: Any) -> dict[str, Any]:
        """Queue a customer's text message. `who`: first_name="María", last_name="",
        username=None, language_code="es", chat_type="private" (or "group"/"supergroup" with a
        negative chat_id, then title= and user_id=), reply_to_message_id=None."""
        return self._queue("message", self._customer(chat_id, {"text": text}, **who))

    def inject_photo(self, chat_id: int, data: bytes | int, caption: str = "", *,
                     width: int = 800, height: int = 600, size_only: bool = False,
                     **who: Any) -> dict[str, Any]:
        """Queue a photo (one size); `size_only=True` keeps no bytes (`data` may be a size)."""
        fid = self._store("photo", data, size_only=size_only, width=width, height=height)
        return self._queue("message", self._customer(
            chat_id, {"caption": caption, "photo": self._file_obj(fid)}, **who))

    def inject_document(self, chat_id: int, data: bytes | int, filename: str, mime_type: str,
                        caption: str = "", *, size_only: bool = False,
                        **who: Any) -> dict[str, Any]:
        fid = self._store("document", data, size_only=size_only, file_name=filename,
                          mime_type=mime_type)
        return self._queue("message", self._customer(
            chat_id, {"caption": caption, "document": self._file_obj(fid)}, **who))

    def inject_voice(self, chat_id: int, data: bytes | int, duration: int = 3, *,
                     size_only: bool = False, **who: Any) -> dict[str, Any]:
        fid = self._store("voice", data, size_only=size_only, duration=duration)
        return self._queue("message", self._customer(
            chat_id, {"voice": self._file_obj(fid)}, **who))

    def inject_edit(self, chat_id: int, message_id: int, new_text: str) -> dict[str, Any]:
        """Queue an `edited_message` for a message the customer sent earlier."""
        original = self._messages.get((chat_id, message_id))
        if original is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        edited = {**original, "edit_date": int(time.time())}
        edited["text" if "text" in original or "caption" not in original else "caption"] = new_text
        self._messages[(chat_id, message_id)] = edited
        return self._queue("edited_message", edited)

    def inject_callback(self, chat_id: int, data: str, message_id: int) -> dict[str, Any]:
        """Queue a `callback_query`: the customer pressed a button of message `message_id`
        (an unknown message travels as an inaccessible one, date 0, like Telegram's)."""
        self.known_chat(chat_id)
        chat = self._chats[chat_id]
        message = self._messages.get((chat_id, message_id),
                                     {"chat": chat, "message_id": message_id, "date": 0})
        sender = self._senders.get(chat_id) or {
            "id": chat_id if chat_id > 0 else GROUP_SENDER_ID, "is_bot": False,
            "first_name": chat.get("first_name", "María")}
        query_id = f"{self.bot_user['id']}{self._next_update_id:08d}"
        self._callbacks.add(query_id)
        return self._queue("callback_query", {"id": query_id, "from": sender, "message": message,
                                              "chat_instance": f"ci{chat_id}", "data": data})

    # -- internals: state --------------------------------------------------------------------

    def _method(self, name: str) -> str:
        method = self._names.get(name.lower())
        if method is None:
            raise ValueError(f"the sandbox does not implement {name!r}")
        return method

    def _queue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": self._next_update_id, kind: payload}
        self._next_update_id += 1
        self._pending.append(update)
        self._wake_pollers()
        self._hook_wake.set()
        return update

    def _wake_pollers(self) -> None:
        self._poll_wake.set()
        self._poll_wake = asyncio.Event()

    def _customer(self, chat_id: int, content: dict[str, Any], *, first_name: str = "María",
                  last_name: str = "", username: str | None = None,
                  language_code: str | None = "es", chat_type: str = "private",
                  reply_to_message_id: int | None = None, user_id: int | None = None,
                  title: str | None = None) -> dict[str, Any]:
        private = chat_type == "private"
        names = {"first_name": first_name, **({"last_name": last_name} if last_name else {}),
                 **({"username": username} if username else {})}
        sender = {"id": user_id if user_id is not None else
                  (chat_id if private else GROUP_SENDER_ID), "is_bot": False, **names}
        if language_code:
            sender["language_code"] = language_code
        chat = ({"id": chat_id, "type": "private", **names} if private else
                {"id": chat_id, "type": chat_type, "title": title or "Grupo de prueba"})
        self._chats[chat_id], self._senders[chat_id] = chat, sender
        return self._new_message(chat_id, sender, reply_to_message_id,
                                 **{k: v for k, v in content.items() if v != ""})

    def _new_message(self, chat_id: int, sender: dict[str, Any], reply_to: int | None,
                     **content: Any) -> dict[str, Any]:
        self._message_seq[chat_id] += 1
        message = {"message_id": self._message_seq[chat_id], "date": int(time.time()),
                   "chat": self._chats[chat_id], "from": sender, **content}
        if reply_to is not None:
            original = self._messages.get((chat_id, reply_to))
            if original is not None:
                message["reply_to_message"] = {k: v for k, v in original.items()
                                               if k != "reply_to_message"}
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _store(self, kind: str, data: bytes | int, *, size_only: bool = False,
               file_name: str | None = None, mime_type: str | None = None,
               **extra: Any) -> str:
        number = len(self._files) + 1
        folder, suffix, default_mime = _KINDS[kind]
        if file_name and "." in file_name:
            suffix = "." + file_name.rsplit(".", 1)[1]
        fid = f"AgAC{kind[:3]}{number:06d}"
        path = f"{folder}/file_{number}{suffix}"
        size = data if isinstance(data, int) else len(data)
        blob = None if size_only or isinstance(data, int) else bytes(data)
        self._files[fid] = {"file_id": fid, "file_unique_id": f"AQAD{number:06d}", "kind": kind,
                            "file_size": size, "file_path": path, "data": blob,
                            "file_name": file_name, "mime_type": mime_type or default_mime,
                            **extra}
        self._paths[path] = fid
        return fid

    def _file_obj(self, fid: str) -> Any:
        f = self._files[fid]
        base = {"file_id": fid, "file_unique_id": f["file_unique_id"], "file_size": f["file_size"]}
        if f["kind"] == "photo":
            return [{**base, "width": f.get("width", 800), "height": f.get("height", 600)}]
        if f["kind"] == "voice":
            return {**base, "duration": f.get("duration", 1), "mime_type": f["mime_type"]}
        return {**base, **({"file_name": f["file_name"]} if f["file_name"] else {}),
                **({"mime_type": f["mime_type"]} if f["mime_type"] else {})}

    def _chat_for_send(self, p: dict[str, Any]) -> int:
        try:
            chat_id = _int(p.get("chat_id"), name="chat_id")
        except ApiError as exc:
            if p.get("chat_id") in (None, ""):
                raise
            raise ApiError(400, "Bad Request: chat not found") from exc
        if chat_id in self._blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _bot_message(self, chat_id: int, p: dict[str, Any], **content: Any) -> dict[str, Any]:
        reply_to, params = _reply_to(p), p.get("reply_parameters")
        allow = (params if isinstance(params, dict) else p).get("allow_sending_without_reply")
        if reply_to is not None and (chat_id, reply_to) not in self._messages and not allow:
            raise ApiError(400, "Bad Request: message to be replied not found")
        sender = {k: self.bot_user[k] for k in ("id", "is_bot", "first_name", "username")}
        message = self._new_message(chat_id, sender, reply_to, **content)
        markup = p.get("reply_markup")
        if isinstance(markup, dict) and "inline_keyboard" in markup:
            message["reply_markup"] = markup
        return message

    def _record(self, method: str, chat_id: int, message: dict[str, Any], p: dict[str, Any],
                **extra: Any) -> None:
        self.sent.append({"method": method, "chat_id": chat_id,
                          "message_id": message["message_id"],
                          "reply_markup": p.get("reply_markup"),
                          "reply_to_message_id": _reply_to(p), "parse_mode": p.get("parse_mode"),
                          "params": p, **extra})
        self._sent_event.set()

    # -- internals: HTTP ---------------------------------------------------------------------

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

    async def _download(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return _error(401, "Unauthorized")
        self.calls["download"] += 1
        fid = self._paths.get(request.path_params["path"])
        blob = self._files[fid]["data"] if fid else None
        if blob is None:
            return _error(404, "Not Found")
        mime = self._files[fid]["mime_type"] or "application/octet-stream"
        return Response(blob, media_type=mime)

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

    # -- the Bot API methods -----------------------------------------------------------------

    async def _get_me(self, p: _P, files: _P, request: Request) -> Any:
        return self.bot_user

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

    async def _set_webhook(self, p: _P, files: _P, request: Request) -> Any:
        url, secret = p.get("url") or "", p.get("secret_token") or None
        if not url:
            return await self._delete_webhook(p, files, request)
        if not str(url).startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: bad webhook: invalid URL")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook, self._hook_error = {"url": url, "secret": secret}, None
        self._wake_pollers()
        self._hook_wake.set()
        return True

    async def _delete_webhook(self, p: _P, files: _P, request: Request) -> Any:
        if p.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook = None
        return True

    async def _get_webhook_info(self, p: _P, files: _P, request: Request) -> Any:
        info: dict[str, Any] = {"url": self._webhook["url"] if self._webhook else "",
                                "has_custom_certificate": False,
                                "pending_update_count": len(self._pending)}
        if self._webhook:
            info["max_connections"] = 40
        if self._hook_error:
            info["last_error_date"], info["last_error_message"] = self._hook_error
        return info

    async def _send_message(self, p: _P, files: _P, request: Request) -> Any:
        chat_id = self._chat_for_send(p)
        text, visible = _checked_text(p, "Bad Request: message is too long")
        message = self._bot_message(chat_id, p, text=visible)
        self._record("sendMessage", chat_id, message, p, text=text)
        return message

    async def _send_media(self, method: str, kind: str, p: _P, files: _P,
                          request: Request) -> Any:
        chat_id = self._chat_for_send(p)
        caption = p.get("caption") or ""
        visible = _visible(str(caption), p.get("parse_mode"))
        if len(visible) > CAPTION_LIMIT:
            raise ApiError(400, "Bad Request: message caption is too long")
        _check_markup(p.get("reply_markup"))
        upload, ref = files.get(kind), p.get(kind)
        if upload is not None:
            limit = PHOTO_UPLOAD_LIMIT if kind == "photo" else UPLOAD_LIMIT
            if len(upload["data"]) > limit:
                raise ApiError(413, "Request Entity Too Large")
            fid = self._store(kind, upload["data"], file_name=upload["filename"],
                              mime_type=upload["content_type"])
        elif isinstance(ref, str) and ref in self._files:
            fid = ref
        elif not ref:
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        else:
            raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
        content: dict[str, Any] = {kind: self._file_obj(fid)}
        if visible:
            content["caption"] = visible
        message = self._bot_message(chat_id, p, **content)
        self._record(method, chat_id, message, p, caption=caption, file_id=fid,
                     files=list(files.values()))
        return message

    async def _edit_message_text(self, p: _P, files: _P, request: Request) -> Any:
        chat_id = self._chat_for_send(p)
        message_id = _int(p.get("message_id"), name="message_id")
        message = self._messages.get((chat_id, message_id))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        if message["from"]["id"] != self.bot_user["id"] or "text" not in message:
            raise ApiError(400, "Bad Request: message can't be edited")
        text, visible = _checked_text(p, "Bad Request: MESSAGE_TOO_LONG")
        markup = p.get("reply_markup")
        markup = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        if visible == message["text"] and markup == message.get("reply_markup"):
            raise ApiError(400, _NOT_MODIFIED)
        edited = {k: v for k, v in message.items() if k != "reply_markup"}
        edited.update(text=visible, edit_date=int(time.time()))
        if markup is not None:
            edited["reply_markup"] = markup
        self._messages[(chat_id, message_id)] = edited
        self._record("editMessageText", chat_id, edited, p, text=text)
        return edited

    async def _send_chat_action(self, p: _P, files: _P, request: Request) -> Any:
        self._chat_for_send(p)
        return True

    async def _answer_callback_query(self, p: _P, files: _P, request: Request) -> Any:
        query_id = p.get("callback_query_id")
        if query_id not in self._callbacks:
            raise ApiError(400, "Bad Request: query is too old and response timeout expired "
                                "or query ID is invalid")
        if len(str(p.get("text") or "")) > CALLBACK_TEXT_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._callbacks.discard(query_id)
        self.callback_answers.append({"callback_query_id": query_id, "text": p.get("text"),
                                      "show_alert": bool(p.get("show_alert")),
                                      "url": p.get("url"), "params": p})
        return True

    async def _get_file(self, p: _P, files: _P, request: Request) -> Any:
        f = self._files.get(p.get("file_id") or "")
        if f is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if f["file_size"] > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {k: f[k] for k in ("file_id", "file_unique_id", "file_size", "file_path")}

    # -- webhook delivery --------------------------------------------------------------------

    async def _deliver_webhooks(self) -> None:
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            while not self._closing:
                await self._hook_wake.wait()
                self._hook_wake.clear()
                while self._webhook is not None and self._pending and not self._closing:
                    hook, update = self._webhook, self._pending[0]
                    await self._post_update(client, hook, update)
                    if self._webhook is not hook:
                        break  # changed or deleted meanwhile: the update stays queued
                    if self._pending and self._pending[0] is update:
                        self._pending.pop(0)  # delivered, or given up on like Telegram

    async def _post_update(self, client: httpx.AsyncClient, hook: dict[str, Any],
                           update: dict[str, Any]) -> bool:
        headers = {"content-type": "application/json"}
        if hook["secret"]:
            headers[SECRET_HEADER] = hook["secret"]
        body = json.dumps(update, ensure_ascii=False).encode()
        for attempt in range(1, self.webhook_attempts + 1):
            status: int | None = None
            try:
                response = await client.post(hook["url"], content=body, headers=headers)
                status = response.status_code
                error = None if 200 <= status < 300 else (
                    f"Wrong response from the webhook: {status} {response.reason_phrase}")
            except httpx.HTTPError as exc:
                error = f"Connection failed: {type(exc).__name__} {exc}".strip()
            self.webhook_log.append({"update_id": update["update_id"], "attempt": attempt,
                                     "status": status, "error": error})
            if error is None:
                return True
            self._hook_error = (int(time.time()), error)
            if self._webhook is not hook or self._closing:
                return False
            if attempt < self.webhook_attempts:
                await asyncio.sleep(self.webhook_backoff)
        return False


async def _serve_forever(args: argparse.Namespace) -> None:
    sandbox = TelegramSandbox(args.token, host=args.host, port=args.port)
    await sandbox.start()
    print(f"Telegram sandbox on {sandbox.url}\n  token         {sandbox.token}\n"
          f"  base_url      {sandbox.base_url}\n  base_file_url {sandbox.base_file_url}\n"
          f"  customers:    curl -d '{{\"chat_id\": 42, \"text\": \"Hola\"}}' "
          f"{sandbox.url}/sandbox/inject/text\nCtrl-C stops.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Telegram Bot API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
