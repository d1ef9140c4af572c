"""The sandbox's state — chats, messages, the update queue, the record of sends — and the
helpers every part of `TelegramSandbox` shares.

Example:
    >>> state = SandboxState("123456:TEST")
    >>> state.bot_user["id"], state._queue("message", {"text": "Hola"})["update_id"]
    (123456, 1)
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

from gateway.sandbox.telegram.wire import ApiError, _int, _reply_to
from gateway.web.http import QuietServer


@dataclass
class FileFault:
    """How the sandbox mistreats one file: `via` "getFile" or "download"; `status` the error
    it answers, or None to leave the request hanging until `released`."""

    via: str
    status: int | None
    released: asyncio.Event = field(default_factory=asyncio.Event)


class SandboxState:
    """What the Bot API methods, the scripted customers and the deliveries share (the
    mixins of `TelegramSandbox` build on it)."""

    _names: dict[str, str]  # the Bot API methods by lower-case name: set by TelegramSandbox

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
        self.file_requests: list[dict[str, str]] = []  # {"file_id", "via": getFile|download}
        self.calls: Counter[str] = Counter()
        self._chats: dict[int, dict[str, Any]] = {}
        self._senders: dict[int, dict[str, Any]] = {}
        self._blocked: set[int] = set()
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._message_seq: Counter[int] = Counter()
        self._files: dict[str, dict[str, Any]] = {}
        self._paths: dict[str, str] = {}
        self._file_faults: dict[str, FileFault] = {}
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

    # -- the update queue ----------------------------------------------------------------------

    def _queue(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._queue_update({kind: payload})

    def _queue_update(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Queue `fields` as an update with the next update_id; polling and the webhook
        are woken."""
        update = {"update_id": self._next_update_id, **fields}
        self._next_update_id += 1
        self._pending.append(update)
        self._wake_pollers()
        self._hook_wake.set()
        return update

    @property
    def pending_updates(self) -> list[int]:
        """The ids of the updates Telegram still holds for the bot: not yet confirmed by a
        getUpdates offset, nor delivered to (or given up on by) the webhook."""
        return [update["update_id"] for update in self._pending]

    def _wake_pollers(self) -> None:
        self._poll_wake.set()
        self._poll_wake = asyncio.Event()

    # -- messages ------------------------------------------------------------------------------

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
