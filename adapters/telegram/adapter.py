"""The Telegram channel, on python-telegram-bot's `Bot` (v22).

Receiving, at least once:
- polling: our own loop on `getUpdates` (PTB's Updater advances the offset before the
  update is handled, so it can lose updates): a batch is handed to the gateway, and only
  when every update of it is committed is the offset stored and sent back to Telegram;
  a crash re-reads the batch and the gateway's dedup makes the repeat a no-op;
- webhook: the gateway's HTTP app serves `webhook_path`, refuses a wrong or missing
  `X-Telegram-Bot-Api-Secret-Token` with 403, and answers 200 only after the commit.

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
import logging
import warnings
from collections.abc import Sequence
from datetime import timedelta
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
from telegram.warnings import PTBDeprecationWarning

from adapters.telegram.convert import command, message_ref, platform_id, split_text
from adapters.telegram.settings import TelegramSettings
from gateway.core.adapter import Capabilities, Port
from gateway.core.backoff import Backoff
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
OFFSET_EVERY = 1.0  # seconds between stores of the polling offset (see _save_offset)
# PTB 22 warns on every read of RetryAfter.retry_after that its type will change; we
# accept both types (see _retry_after).
warnings.filterwarnings("ignore", message=".*retry_after.*", category=PTBDeprecationWarning)

UPDATES = ["message", "edited_message", "callback_query"]
PER_CHAT_RATE = 1.0  # messages a second to one chat (Telegram answers bursts with 429)
RECONNECT = Backoff(base=1, ceiling=60, jitter=False)  # 1, 2, 4 … 60 s between polls


def _retry_after(exc: RetryAfter) -> float:
    """Seconds Telegram asked us to wait (PTB 22 warns that the type becomes timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


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
        self.polls = 0                    # getUpdates calls answered (tests wait on it)
        self._offset: int | None = None   # the next update to read, once stored …
        self._offset_saved = True         # … and whether the database has it
        self._saved_at = float("-inf")
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
            self._task = asyncio.create_task(self._poll(), name="telegram polling")

    async def _poll(self) -> None:
        assert self.port is not None
        offset = int((await self.port.load_state("telegram", "updates")).get("offset", 0)
                     ) or None
        failures = 0
        while not self._stop.is_set():
            try:
                updates = await self.bot.get_updates(
                    offset=offset, timeout=self.settings.poll_timeout, allowed_updates=UPDATES)
                self.polls += 1
                if updates:
                    await self.handle_updates(updates)
                    offset = self._offset = updates[-1].update_id + 1
                    self._offset_saved = False
                if not self._offset_saved and \
                        self.clock.monotonic() - self._saved_at >= OFFSET_EVERY:
                    await self._save_offset()
                failures = 0
            except asyncio.CancelledError:
                raise
            except RetryAfter as exc:
                await self._pause(_retry_after(exc), f"getUpdates: {exc}")
            except Exception as exc:  # network, 5xx, a failed commit: read the batch again
                failures += 1
                delay = RECONNECT.delay(failures)
                level = logging.WARNING if isinstance(exc, NetworkError) else logging.ERROR
                log.log(level, "telegram: %s; polling again in %.1f s", exc, delay,
                        exc_info=not isinstance(exc, NetworkError))
                await self._pause(delay, str(exc))

    async def _save_offset(self) -> None:
        """Store where to resume after a restart. At most every OFFSET_EVERY seconds: each
        save is a commit, and getUpdates itself tells Telegram what we have, so an older
        stored offset only means re-reading a few stored updates (dedup drops them)."""
        assert self.port is not None
        await self.port.save_state("telegram", "updates", {"offset": self._offset})
        self._offset_saved, self._saved_at = True, self.clock.monotonic()

    async def _pause(self, seconds: float, why: str) -> None:
        """Wait `seconds` before polling again (or until the adapter stops)."""
        log.debug("telegram: polling again in %.1f s (%s)", seconds, why)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def handle_updates(self, updates: Sequence[Update]) -> None:
        """Hand updates to the gateway; returns when all are committed, raises if any is
        not (the caller then reads them again: dedup makes that safe)."""
        assert self.port is not None
        inbounds = [await self.to_inbound(update) for update in updates]
        wanted = [i for i in inbounds if i is not None]
        results = await asyncio.gather(*(self.port.receive(i) for i in wanted),
                                       return_exceptions=True)
        failed = [r for r in results if isinstance(r, Exception)
                  and not isinstance(r, InboundRejected)]
        for result in results:
            if isinstance(result, Exception) and result not in failed:
                log.info("telegram: update not stored: %s", result)
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(wanted)} update(s) not stored: "
                               f"{failed[0]!r}")
        for update in updates:  # answered only once stored: the spinner stops
            if update.callback_query is not None:
                await self._answer_callback(update.callback_query)

    async def _answer_callback(self, query: CallbackQuery) -> None:
        """Stop the button's spinner, with the core's word of thanks in her language."""
        assert self.port is not None
        thanks = await self.port.text("button_thanks", (query.from_user.language_code or "")[:2])
        with contextlib.suppress(TgError):
            await self.bot.answer_callback_query(query.id, text=thanks[:200])

    async def to_inbound(self, update: Update) -> Inbound | None:
        """One update as an Inbound (None: not for us, e.g. a group when groups are off)."""
        if update.callback_query is not None:
            return self._score(update.callback_query)
        edited = update.edited_message is not None
        message = update.edited_message or update.message
        if message is None:
            return None
        chat = message.chat
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
            attachments=await self._files(message),
            thread=ThreadHint(reply_to=reply_to, conversation=str(chat.id),
                              new_ticket=new_ticket),
            received_at=message.date)

    def _score(self, query: CallbackQuery) -> Inbound | None:
        parts = (query.data or "").split(":")
        if len(parts) != 3 or parts[0] != "score" or not parts[1].isdigit():
            log.info("telegram: ignored a button press with data %r", query.data)
            return None
        chat_id = query.message.chat.id if query.message else query.from_user.id
        return Inbound(
            channel="telegram",
            sender=Party("customer", str(chat_id), query.from_user.full_name),
            text=parts[2], external_id=f"callback:{query.id}", kind="score",
            locale=(query.from_user.language_code or "")[:2] or None,
            thread=ThreadHint(ticket_number=int(parts[1]), conversation=str(chat_id)))

    async def _files(self, message: TgMessage) -> tuple[Attachment, ...]:
        found: list[tuple[str, str, str, int | None]] = []  # file_id, name, type, size
        if message.photo:
            big = message.photo[-1]
            found.append((big.file_id, f"foto-{message.message_id}.jpg", "image/jpeg",
                          big.file_size))
        for item, default_name, default_type in (
                (message.document, "documento", "application/octet-stream"),
                (message.voice, f"voz-{message.message_id}.ogg", "audio/ogg"),
                (message.audio, "audio", "audio/mpeg"),
                (message.video, f"video-{message.message_id}.mp4", "video/mp4")):
            if item is not None:
                found.append((item.file_id, getattr(item, "file_name", None) or default_name,
                              getattr(item, "mime_type", None) or default_type,
                              item.file_size))
        attachments = []
        for file_id, name, content_type, size in found:
            data = None
            if size is None or size <= self.settings.max_file_bytes:
                try:
                    data = bytes(await (await self.bot.get_file(file_id))
                                 .download_as_bytearray())
                except BadRequest as exc:  # e.g. "file is too big": recorded, not stored
                    log.info("telegram: file %s not downloaded: %s", name, exc)
            attachments.append(Attachment(filename=name, content_type=content_type, data=data,
                                          size=size if data is None else None))
        return tuple(attachments)

    # -- webhook -------------------------------------------------------------------------

    def routes(self) -> list[Any]:
        """The webhook route for the gateway's HTTP app (webhook mode only)."""
        from starlette.routing import Route

        if self.settings.mode != "webhook":
            return []
        return [Route(self.settings.webhook_path, self.webhook, methods=["POST"])]

    async def webhook(self, request: Any) -> Any:
        """POST from Telegram: 403 without the right secret; 200 only after the commit."""
        from starlette.responses import Response

        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not hmac.compare_digest(given.encode(), self.settings.webhook_secret.encode()):
            log.warning("telegram: refused a webhook call without the right secret from %s",
                        request.client.host if request.client else "?")
            return Response(status_code=403)
        try:
            update = Update.de_json(await request.json(), self.bot)
        except Exception:
            return Response(status_code=400)
        try:
            await self.handle_updates([update])
        except Exception:
            log.exception("telegram: webhook update %s not stored; Telegram will retry",
                          update.update_id)
            return Response(status_code=500)
        return Response(status_code=200)

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
                                 retry_after=_retry_after(exc)) from exc
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
        if not self._offset_saved:
            try:
                await self._save_offset()
            except Exception as exc:  # the updates come again, and dedup drops them
                log.warning("telegram: could not store the offset at stop: %s", exc)
        if self._started:
            with contextlib.suppress(Exception):
                await self.bot.shutdown()
            self._started = False
