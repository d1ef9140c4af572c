"""The Bot API methods the gateway calls: getMe, sendMessage, sendPhoto, sendDocument,
editMessageText, sendChatAction and answerCallbackQuery, refused like Telegram refuses them.

Each takes the decoded parameters, the uploaded files and the request, and returns the
`result` (or raises `ApiError`).

Example:
    >>> await bot.send_message(42, "Hola")                              # doctest: +SKIP
    >>> sandbox.sent[-1]["method"], sandbox.sent[-1]["text"]            # doctest: +SKIP
    ('sendMessage', 'Hola')
    >>> await bot.send_message(42, "x" * 4097)    # BadRequest: too long  # doctest: +SKIP
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request

from gateway.sandbox.telegram.state import SandboxState
from gateway.sandbox.telegram.wire import (
    _P,
    CALLBACK_TEXT_LIMIT,
    CAPTION_LIMIT,
    PHOTO_UPLOAD_LIMIT,
    UPLOAD_LIMIT,
    ApiError,
    _check_markup,
    _checked_text,
    _int,
    _visible,
)

_NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply "
                 "markup are exactly the same as a current content and reply markup of the message")


class BotApiMethods(SandboxState):
    """The Bot API methods but updates, webhooks and files (a mixin of `TelegramSandbox`)."""

    async def _get_me(self, p: _P, files: _P, request: Request) -> Any:
        return self.bot_user

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
