"""Scripted customers: the messages, edits and button presses `TelegramSandbox` queues as
updates for the bot, and the chats they come from.

Example:
    >>> customers = Customers()
    >>> customers.inject_text(42, "Hola", first_name="Ana")["message"]["from"]["first_name"]
    'Ana'
    >>> customers.block(42)              # sends to chat 42 now answer 403
"""

from __future__ import annotations

import time
from typing import Any

from gateway.sandbox.telegram.state import SandboxState

GROUP_SENDER_ID = 1000  # default `from.id` of injected group messages


class Customers(SandboxState):
    """The customers' side of the chats (a mixin of `TelegramSandbox`)."""

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

    def inject_update(self, **fields: Any) -> dict[str, Any]:
        """Queue an update exactly as given, with the next update_id: a malformed one
        (`message={"message_id": 1, "date": 0, "text": "hi"}`, no chat), a kind the bot did
        not ask for (`channel_post=…`) or one Telegram may add later (`new_kind={…}`)."""
        if not fields:
            raise ValueError("an update needs at least one field besides update_id")
        return self._queue_update(fields)

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
