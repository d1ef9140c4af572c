"""The Telegram channel, on python-telegram-bot's `Bot` (v22).

Receiving, at least once, one update never holding another (`handle_update`):
- polling: our own loop on `getUpdates` (`adapters/telegram/polling.py`): each update is
  handled in a task of its own, and Telegram's offset moves past an update only once it and
  every update before it are committed; a crash re-reads them and the gateway's dedup makes
  the repeat a no-op;
- webhook: the gateway's HTTP app serves `webhook_path`, refuses a wrong or missing
  `X-Telegram-Bot-Api-Secret-Token` with 403, and answers 200 only after the commit.

One customer's update cannot stop the others: a file that cannot be fetched (gone,
refused, too big, not answered within `file_timeout`) is recorded on her message without
its contents (`adapters/telegram/files.py`) and the message is stored; an update that
cannot be read at all (no chat, not JSON, a shape PTB cannot parse) is logged and
confirmed. Only a failed commit makes Telegram deliver an update again.

Sending: plain text (no parse mode, so no customer or template text can break the
formatting), split at 4096 characters, at most one message a second per chat, survey
buttons 1–5, agent files as documents. 429 → TransientError with Telegram's retry_after;
a blocked bot or an unknown chat → PermanentError (agents are told).

Example:
    >>> adapter = TelegramAdapter.from_settings(load_settings())    # doctest: +SKIP
    >>> await adapter.start(gateway.receive)                         # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from typing import Any, ClassVar

from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    ReplyParameters,
    Update,
)
from telegram import Message as TgMessage
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter
from telegram.error import TelegramError as TgError

from adapters.telegram.convert import command, message_ref, platform_id, split_text
from adapters.telegram.files import fetch, file_parts
from adapters.telegram.polling import UPDATES, Polling, retry_after
from adapters.telegram.settings import TelegramSettings
from gateway.core.adapter import Capabilities, Port
from gateway.core.clock import Clock, SystemClock
from gateway.core.messages import (
    SURVEY_SCORES,
    Attachment,
    Inbound,
    InboundRejected,
    Outbound,
    Party,
    PermanentError,
    Receipt,
    ThreadHint,
    TransientError,
    score_label,
)
from gateway.core.ratelimit import PerKeyLimiter
from gateway.settings import Settings, SettingsError, channel_settings

log = logging.getLogger("centralita.telegram")
PER_CHAT_RATE = 1.0  # messages a second to one chat (Telegram answers bursts with 429)


def _chat_key(update: Update) -> int | None:
    """The chat whose updates must reach the gateway in order (a press without a message:
    its sender's private chat); None when the update names none."""
    try:
        if (chat := update.effective_chat) is not None:
            return int(chat.id)
        query = update.callback_query
        return int(query.from_user.id) if query and query.from_user else None
    except Exception:  # a shape PTB let through; the update is logged when it is read
        return None


class TelegramAdapter:
    """`start` receives updates (polling or webhook); `send` delivers one answer."""

    channel = "telegram"
    # No subjects; survey buttons; how customers ask for their tickets' status here, named
    # in the texts ([channels.telegram] status_command overrides it).
    capabilities: ClassVar[Capabilities] = Capabilities(
        subjects=False, buttons=True, status_commands={"es": "/estado", "en": "/status"})

    def __init__(self, settings: TelegramSettings, *, token: str, public_url: str = "",
                 clock: Clock | None = None) -> None:
        if not token:
            raise SettingsError(f"channels.telegram.token: no bot token (set it, or the "
                                f"environment variable {settings.token_env})")
        if settings.mode == "webhook" and not public_url:
            raise SettingsError("http.public_url: required for channels.telegram.mode = "
                                "'webhook' (the https address Telegram posts updates to)")
        self.settings = settings
        self.public_url = public_url.rstrip("/")
        self.clock = clock or SystemClock()
        self.bot = Bot(token, base_url=settings.base_url, base_file_url=settings.base_file_url)
        self.port: Port | None = None
        self._polling: Polling | None = None
        self._chats: dict[int, asyncio.Event] = {}  # each chat's last update in hand
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._per_chat = PerKeyLimiter(PER_CHAT_RATE, self.clock)
        self._started = False

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> TelegramAdapter:
        """The adapter `[channels.telegram]` describes (SettingsError names a wrong key)."""
        telegram = channel_settings(settings, "telegram", TelegramSettings)
        return cls(telegram, token=telegram.bot_token(), public_url=settings.http.public_url,
                   clock=clock)

    # -- receiving ---------------------------------------------------------------------

    async def start(self, port: Port) -> None:
        self.port = port
        self._stop.clear()
        try:
            await self.bot.initialize()
        except InvalidToken as exc:
            raise SettingsError(f"channels.telegram.token: Telegram refused it ({exc})") from None
        self._started = True
        if self.settings.mode == "webhook":
            await self.bot.set_webhook(self.public_url + self.settings.webhook_path,
                                       secret_token=self.settings.webhook_secret,
                                       allowed_updates=UPDATES)
            log.info("telegram: webhook at %s%s", self.public_url, self.settings.webhook_path)
        else:
            await self.bot.delete_webhook()
            self._polling = Polling(self.bot, port, self.handle_update, clock=self.clock,
                                    poll_timeout=self.settings.poll_timeout)
            self._task = asyncio.create_task(self._polling.run(self._stop),
                                             name="telegram polling")

    @property
    def polls(self) -> int:
        """getUpdates calls answered so far (tests wait on it)."""
        return self._polling.polls if self._polling is not None else 0

    async def handle_update(self, update: Update) -> None:
        """Store one update, then stop its button's spinner. Its files are fetched at once,
        but it reaches the gateway only after the earlier updates of its chat, in order.
        A part that cannot be fetched or read is recorded on its message; an update that
        cannot be read at all is logged and dropped. Raises only when the gateway did not
        commit it (it is then delivered again, and dedup makes that safe)."""
        assert self.port is not None
        chat = _chat_key(update)
        before = self._chats.get(chat) if chat is not None else None
        done = asyncio.Event()
        if chat is not None:
            self._chats[chat] = done
        try:
            inbound = await self._readable(update)
            if before is not None:
                await before.wait()
            if inbound is not None:
                try:
                    await self.port.receive(inbound)
                except InboundRejected as exc:
                    log.info("telegram: update %s not stored: %s", update.update_id, exc)
            if update.callback_query is not None:  # answered only once stored
                await self._answer_callback(update.callback_query)
        finally:
            done.set()
            if chat is not None and self._chats.get(chat) is done:
                del self._chats[chat]

    async def _readable(self, update: Update) -> Inbound | None:
        """`to_inbound`, with anything unexpected in the update logged instead of raised."""
        try:
            return await self.to_inbound(update)
        except Exception as exc:
            log.warning("telegram: update %s cannot be read (%s: %s); confirmed without "
                        "storing it", update.update_id, type(exc).__name__, exc)
            return None

    async def _answer_callback(self, query: CallbackQuery) -> None:
        """Stop the button's spinner, with the core's word of thanks in her language."""
        assert self.port is not None
        user = query.from_user
        thanks = await self.port.text("button_thanks", ((user.language_code if user else "")
                                                         or "")[:2])
        with contextlib.suppress(TgError):
            await self.bot.answer_callback_query(query.id, text=thanks[:200])

    async def to_inbound(self, update: Update) -> Inbound | None:
        """One update as an Inbound (None: not for us, e.g. a group when groups are off)."""
        if update.callback_query is not None:
            return self._score(update.callback_query)
        edited = update.edited_message is not None
        message = update.edited_message or update.message
        if message is None:
            log.info("telegram: update %s is not a message, an edit or a button press; "
                     "ignored", update.update_id)
            return None
        chat = message.chat
        if chat is None:
            log.warning("telegram: update %s has no chat; confirmed without storing it",
                        update.update_id)
            return None
        if chat.type != "private" and not self.settings.allow_groups:
            log.info("telegram: ignored a message from group %s (allow_groups is off)", chat.id)
            return None
        user = message.from_user
        name = (user.full_name if user else "") if chat.type == "private" else (chat.title or "")
        language = ((user.language_code or "")[:2] if user else "") or None
        text = message.text or message.caption or ""
        reply_to: tuple[str, ...] = ()
        if message.reply_to_message is not None:
            reply_to = (platform_id(chat.id, message.reply_to_message.message_id),)
        external_id = platform_id(chat.id, message.message_id)
        kind, new_ticket = "message", False
        if edited:
            kind = "edit"
            stamp = message.edit_date.timestamp() if message.edit_date else update.update_id
            external_id = f"{external_id}:edit:{int(stamp)}"
            reply_to = (platform_id(chat.id, message.message_id),)
        elif (found := command(text)) and found[0] in self.settings.commands:
            action = self.settings.commands[found[0]]
            if action == "new":
                text, new_ticket = found[1] or text, True
            else:
                return Inbound(channel="telegram", sender=Party("customer", str(chat.id), name),
                               text=action, external_id=external_id, kind="command",
                               locale=language, thread=ThreadHint(conversation=str(chat.id)),
                               received_at=message.date)
        return Inbound(
            channel="telegram", sender=Party("customer", str(chat.id), name), text=text,
            external_id=external_id, kind=kind, locale=language,
            attachments=await self._files(message, update.update_id),
            thread=ThreadHint(reply_to=reply_to, conversation=str(chat.id),
                              new_ticket=new_ticket),
            received_at=message.date)

    def _score(self, query: CallbackQuery) -> Inbound | None:
        parts = (query.data or "").split(":")
        if len(parts) != 3 or parts[0] != "score" or not parts[1].isdigit():
            log.info("telegram: ignored a button press with data %r", query.data)
            return None
        user = query.from_user
        chat = query.message.chat if query.message is not None else None
        chat_id = chat.id if chat is not None else user.id if user is not None else None
        if chat_id is None:
            log.warning("telegram: ignored a button press from nobody (no chat, no sender)")
            return None
        return Inbound(
            channel="telegram", sender=Party("customer", str(chat_id),
                                             user.full_name if user else ""),
            text=parts[2], external_id=f"callback:{query.id}", kind="score",
            locale=((user.language_code if user else "") or "")[:2] or None,
            thread=ThreadHint(ticket_number=int(parts[1]), conversation=str(chat_id)))

    async def _files(self, message: TgMessage, update_id: int) -> tuple[Attachment, ...]:
        """The message's files, each fetched or recorded without its contents."""
        attachments = []
        for part in file_parts(message):
            if not isinstance(part, Attachment):
                part = await fetch(self.bot, part, max_bytes=self.settings.max_file_bytes,
                                   budget=self.settings.file_timeout.total_seconds(),
                                   where=f"update {update_id}")
            attachments.append(part)
        return tuple(attachments)

    # -- webhook -------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        """The webhook route for the gateway's HTTP app (webhook mode only)."""
        from starlette.routing import Route

        if self.settings.mode != "webhook":
            return []
        return [Route(self.settings.webhook_path, self.webhook, methods=["POST"])]

    async def webhook(self, request: Any) -> Any:
        """POST from Telegram: 403 without the right secret; 200 only after the commit —
        or at once for a body that is not an update (logged: a retry cannot mend it)."""
        from starlette.responses import Response

        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not hmac.compare_digest(given.encode(), self.settings.webhook_secret.encode()):
            log.warning("telegram: refused a webhook call without the right secret from %s",
                        request.client.host if request.client else "?")
            return Response(status_code=403)
        update = self._update_of(await request.body())
        if update is None:
            return Response(status_code=200)
        try:
            await self.handle_update(update)
        except Exception:
            log.exception("telegram: webhook update %s not stored; Telegram will retry",
                          update.update_id)
            return Response(status_code=500)
        return Response(status_code=200)

    def _update_of(self, body: bytes) -> Update | None:
        """The update a webhook call carries, None (logged) when it carries none."""
        try:
            data = json.loads(body)
        except ValueError:
            log.warning("telegram: a webhook call whose body is not JSON (%d bytes) was "
                        "confirmed without storing it", len(body))
            return None
        if not isinstance(data, dict):
            log.warning("telegram: a webhook call that is not an update was confirmed "
                        "without storing it: %.300r", data)
            return None
        try:
            return Update.de_json(data, self.bot)
        except Exception as exc:
            log.warning("telegram: update %s cannot be read (%s: %s); confirmed without "
                        "storing it: %.300r", data.get("update_id"), type(exc).__name__, exc,
                        data)
            return None

    # -- sending -------------------------------------------------------------------------

    async def send(self, message: Outbound) -> Receipt:
        try:
            chat_id = int(message.recipient)
        except ValueError:
            raise PermanentError(f"not a Telegram chat id: {message.recipient!r}") from None
        await self._pace(chat_id)
        reply_to = next((ref for p in reversed(message.reply_to)
                         if (ref := message_ref(p, chat_id)) is not None), None)
        buttons = None
        if message.survey is not None:
            buttons = InlineKeyboardMarkup([[
                InlineKeyboardButton(score_label(n),
                                     callback_data=f"score:{message.survey.ticket_number}:{n}")
                for n in SURVEY_SCORES]])
        pieces = split_text(message.text)
        first: TgMessage | None = None
        try:
            for index, piece in enumerate(pieces):
                sent = await self.bot.send_message(
                    chat_id, piece,
                    reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True)
                    if reply_to and index == 0 else None,
                    reply_markup=buttons if index == len(pieces) - 1 else None)
                first = first or sent
                if index < len(pieces) - 1:
                    await self._pace(chat_id)
            for attachment in message.attachments:
                if attachment.data is not None:
                    await self._pace(chat_id)
                    await self.bot.send_document(chat_id, attachment.data,
                                                 filename=attachment.filename)
        except RetryAfter as exc:
            raise TransientError(f"Telegram asks to wait: {exc}",
                                 retry_after=retry_after(exc)) from exc
        except Forbidden as exc:
            raise PermanentError(f"Telegram refused: {exc.message} (the customer may have "
                                 "blocked the bot)") from exc
        except BadRequest as exc:
            raise PermanentError(f"Telegram refused the message: {exc.message}") from exc
        except (NetworkError, TgError) as exc:
            raise TransientError(f"Telegram unreachable: {exc}") from exc
        assert first is not None
        return Receipt(platform_id=platform_id(chat_id, first.message_id))

    async def _pace(self, chat_id: int) -> None:
        """At most one message a second per chat (Telegram answers bursts with 429)."""
        await self._per_chat.acquire(chat_id)

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        if self._polling is not None:
            try:
                await self._polling.save()
            except Exception as exc:  # the updates come again, and dedup drops them
                log.warning("telegram: could not store the offset at stop: %s", exc)
        if self._started:
            with contextlib.suppress(Exception):
                await self.bot.shutdown()
            self._started = False
