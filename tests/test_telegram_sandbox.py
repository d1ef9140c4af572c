"""The Telegram sandbox, exercised through python-telegram-bot itself (no mocking)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import timedelta

import httpx
import pytest
import telegram
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TimedOut,
)

from gateway.sandbox.telegram import SECRET_HEADER, TelegramSandbox

CHAT = 4242


@pytest.fixture
async def sandbox():
    server = TelegramSandbox(webhook_backoff=0.05)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def bot(sandbox):
    bot = telegram.Bot(sandbox.token, base_url=sandbox.base_url,
                       base_file_url=sandbox.base_file_url)
    async with bot:
        yield bot


async def eventually(condition, within: float = 5) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 (a state change in another task)
            await asyncio.sleep(0.01)


class Receiver:
    """A minimal HTTP endpoint on loopback that records POSTs and answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[tuple[dict[str, str], dict]] = []
        self.got = asyncio.Event()
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.add(writer)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                lines = head.decode().split("\r\n")
                headers = {k.lower(): v.strip() for k, _, v in
                           (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                self.requests.append((headers, json.loads(body)))
                status = self.statuses.pop(0) if self.statuses else 200
                writer.write(f"HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n".encode())
                await writer.drain()
                if status == 200:
                    self.got.set()
        except asyncio.IncompleteReadError:
            pass  # the sandbox closed its keep-alive connection
        finally:
            self.writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.close()
        await self.server.wait_closed()


async def test_get_me(bot, sandbox):
    me = await bot.get_me()
    assert me.is_bot and me.id == 123456 and me.username == "centralita_sandbox_bot"
    assert sandbox.calls["getMe"] >= 1


async def test_wire_errors_for_token_and_method(sandbox):
    async with httpx.AsyncClient() as client:
        wrong = await client.post(f"{sandbox.base_url}999:WRONG/getMe")
        unknown = await client.get(f"{sandbox.base_url}{sandbox.token}/noSuchMethod")
    assert wrong.status_code == 401
    assert wrong.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert unknown.status_code == 404 and unknown.json()["ok"] is False
    with pytest.raises(InvalidToken):  # Bot.initialize calls getMe
        async with telegram.Bot("999:WRONG", base_url=sandbox.base_url):
            pass


async def test_long_poll_returns_as_soon_as_an_update_is_queued(bot, sandbox):
    asyncio.get_running_loop().call_later(0.2, sandbox.inject_text, CHAT, "Hola, ¿abren hoy?")
    started = time.monotonic()
    updates = await bot.get_updates(timeout=5)
    assert time.monotonic() - started < 2
    [update] = updates
    assert update.update_id == 1 and update.message.text == "Hola, ¿abren hoy?"
    assert update.message.chat.id == CHAT and update.message.from_user.first_name == "María"


async def test_long_poll_times_out_empty(bot):
    started = time.monotonic()
    assert await bot.get_updates(timeout=0.3) == ()
    assert 0.25 < time.monotonic() - started < 2


async def test_offset_confirms_and_forgets(bot, sandbox):
    sandbox.inject_text(CHAT, "uno")
    sandbox.inject_text(CHAT, "dos", chat_type="group", user_id=7)
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [1, 2]
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == [1, 2]  # unconfirmed
    [second] = await bot.get_updates(offset=2, timeout=0)
    assert second.message.text == "dos" and second.message.from_user.id == 7
    assert await bot.get_updates(offset=3, timeout=0) == ()
    assert (await bot.get_webhook_info()).pending_update_count == 0


async def test_send_message_is_recorded_with_its_keyboard(bot, sandbox):
    asked = sandbox.inject_text(CHAT, "¿Precio?")["message"]
    keyboard = telegram.InlineKeyboardMarkup(
        [[telegram.InlineKeyboardButton("Sí", callback_data="yes"),
          telegram.InlineKeyboardButton("No", callback_data="no")]])
    sent = await bot.send_message(CHAT, "¿Le llamamos?", reply_markup=keyboard,
                                  reply_to_message_id=asked["message_id"])
    [record] = await sandbox.wait_sent(1)
    assert record["method"] == "sendMessage" and record["chat_id"] == CHAT
    assert record["text"] == "¿Le llamamos?" and record["message_id"] == sent.message_id
    assert record["reply_to_message_id"] == asked["message_id"]
    assert record["reply_markup"]["inline_keyboard"][0][1]["callback_data"] == "no"
    assert sent.reply_markup == keyboard and sent.reply_to_message.text == "¿Precio?"

    sandbox.inject_callback(CHAT, "yes", sent.message_id)
    [update] = await bot.get_updates(offset=2, timeout=1)
    query = update.callback_query
    assert query.data == "yes" and query.message.message_id == sent.message_id
    assert await bot.answer_callback_query(query.id, text="Anotado")
    assert sandbox.callback_answers[0]["text"] == "Anotado"
    edited = await bot.edit_message_text("Le llamaremos", chat_id=CHAT,
                                         message_id=sent.message_id)
    assert edited.text == "Le llamaremos" and edited.reply_markup is None
    assert sandbox.sent[-1]["method"] == "editMessageText"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
async def test_429_raises_retry_after(bot, sandbox):
    sandbox.known_chat(CHAT)
    sandbox.fail("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(CHAT, "hola")
    # PTB 22 warns (even while raising) that retry_after becomes a timedelta
    assert caught.value.retry_after in (3, timedelta(seconds=3))
    await bot.send_message(CHAT, "hola")  # only once
    assert sandbox.calls["sendMessage"] == 2 and len(sandbox.sent) == 1


async def test_limits_and_forbidden(bot, sandbox):
    sandbox.inject_text(CHAT, "hola")
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(CHAT, "x" * 4097)
    await bot.send_message(CHAT, "x" * 4096)
    await bot.send_message(CHAT, "<b>" + "x" * 4096 + "</b>", parse_mode="HTML")
    with pytest.raises(BadRequest, match="caption is too long"):
        await bot.send_photo(CHAT, photo=b"img", caption="c" * 1025)
    with pytest.raises(BadRequest, match=r"[Cc]hat not found"):
        await bot.send_message(777, "¿quién?")
    sandbox.block(CHAT)
    with pytest.raises(Forbidden, match="blocked"):
        await bot.send_message(CHAT, "hola")


async def test_dropped_and_slow_calls_are_network_errors(bot, sandbox):
    sandbox.drop("getMe")
    with pytest.raises(NetworkError):
        await bot.get_me()
    sandbox.delay("getMe", 0.3)
    with pytest.raises(TimedOut):
        await bot.get_me(read_timeout=0.1)
    assert (await bot.get_me()).is_bot


async def test_photo_round_trip_and_uploads(bot, sandbox):
    picture = bytes(range(256)) * 40
    sandbox.inject_photo(CHAT, picture, caption="mi factura")
    [update] = await bot.get_updates(timeout=1)
    assert update.message.caption == "mi factura"
    photo = update.message.photo[-1]
    assert photo.file_size == len(picture)
    file = await bot.get_file(photo.file_id)
    assert bytes(await file.download_as_bytearray()) == picture

    sandbox.inject_document(CHAT, 25 * 1024 * 1024, "video.mp4", "video/mp4", size_only=True)
    [update] = await bot.get_updates(offset=2, timeout=1)
    with pytest.raises(BadRequest, match="too big"):
        await bot.get_file(update.message.document.file_id)

    sent = await bot.send_document(CHAT, document=b"%PDF-1.4", filename="presupuesto.pdf",
                                   caption="Presupuesto")
    assert sent.document.file_name == "presupuesto.pdf"
    [upload] = sandbox.sent[-1]["files"]
    assert upload["filename"] == "presupuesto.pdf" and upload["data"] == b"%PDF-1.4"
    assert sandbox.sent[-1]["caption"] == "Presupuesto"


async def test_webhook_delivery_with_secret_and_retry(bot, sandbox):
    receiver = Receiver(statuses=[500])
    url = await receiver.start()
    try:
        assert await bot.set_webhook(url, secret_token="s3cr3t-Token_1")
        with pytest.raises(Conflict):
            await bot.get_updates(timeout=0)
        update = sandbox.inject_text(CHAT, "por webhook")
        await asyncio.wait_for(receiver.got.wait(), 5)
        await eventually(lambda: len(sandbox.webhook_log) == 2)
        assert len(receiver.requests) == 2  # the 500, then the retry
        headers, body = receiver.requests[-1]
        assert headers[SECRET_HEADER.lower()] == "s3cr3t-Token_1"
        assert body == update
        assert telegram.Update.de_json(body, bot).message.text == "por webhook"
        assert [entry["status"] for entry in sandbox.webhook_log] == [500, 200]
        info = await bot.get_webhook_info()
        assert info.url == url and info.pending_update_count == 0
        assert "500" in info.last_error_message
        assert await bot.delete_webhook()
        sandbox.inject_text(CHAT, "por polling")
        [polled] = await bot.get_updates(timeout=1)
        assert polled.message.text == "por polling"
    finally:
        await receiver.stop()


async def test_a_file_can_be_gone_refused_or_never_answered(bot, sandbox):
    photo = sandbox.inject_photo(CHAT, b"\xff\xd8jpeg")["message"]["photo"][-1]["file_id"]
    document = sandbox.inject_document(CHAT, b"%PDF", "a.pdf", "application/pdf")
    pdf = document["message"]["document"]["file_id"]
    sandbox.fail_file(photo, 404)
    found = await bot.get_file(photo)  # getFile still answers: the download is gone
    with pytest.raises(InvalidToken, match="Not Found"):  # PTB's name for 404 and 401
        await found.download_as_bytearray()
    sandbox.fail_file(photo, 401, via="getFile")
    with pytest.raises(InvalidToken, match="Unauthorized"):
        await bot.get_file(photo)
    sandbox.hang_file(pdf)
    slow = await bot.get_file(pdf)
    with pytest.raises(TimedOut):
        await slow.download_as_bytearray(read_timeout=0.2)
    assert sandbox.file_requests[-1] == {"file_id": pdf, "via": "download"}
    sandbox.mend_file(pdf)
    sandbox.mend_file(photo)
    assert bytes(await (await bot.get_file(pdf)).download_as_bytearray()) == b"%PDF"
    assert bytes(await (await bot.get_file(photo)).download_as_bytearray()) == b"\xff\xd8jpeg"


async def test_a_hanging_download_is_answered_when_the_file_is_mended(bot, sandbox):
    fid = sandbox.inject_photo(CHAT, b"img")["message"]["photo"][-1]["file_id"]
    sandbox.hang_file(fid)
    found = await bot.get_file(fid)
    download = asyncio.create_task(found.download_as_bytearray(read_timeout=10))
    await eventually(lambda: {"file_id": fid, "via": "download"} in sandbox.file_requests)
    assert not download.done()
    sandbox.mend_file(fid)
    assert bytes(await asyncio.wait_for(download, 5)) == b"img"


async def test_malformed_updates_are_handed_out_as_they_are(sandbox):
    sandbox.inject_update(message={"message_id": 1, "date": 0, "text": "sin chat"})
    sandbox.inject_update(new_kind={"x": 1})
    async with httpx.AsyncClient() as client:
        got = await client.post(f"{sandbox.base_url}{sandbox.token}/getUpdates",
                                data={"timeout": "0"})
    assert got.json()["result"] == [
        {"update_id": 1, "message": {"message_id": 1, "date": 0, "text": "sin chat"}},
        {"update_id": 2, "new_kind": {"x": 1}}]
    assert sandbox.pending_updates == [1, 2]


async def test_the_webhook_posts_chats_at_once_but_each_chat_in_order(bot, sandbox):
    """Telegram keeps one chat's updates in order, not everyone's: a slow answer for one
    chat does not hold another chat's update."""
    held = asyncio.Event()
    arrived: list[tuple[int, str]] = []

    async def hook(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length"))
        update = json.loads(await reader.readexactly(length))
        arrived.append((update["message"]["chat"]["id"], update["message"]["text"]))
        if update["message"]["text"] == "lento":
            await held.wait()
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(hook, "127.0.0.1", 0)
    try:
        await bot.set_webhook(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
        sandbox.inject_text(CHAT, "lento")
        sandbox.inject_text(CHAT, "después")
        sandbox.inject_text(CHAT + 1, "otro chat")
        await eventually(lambda: len(arrived) == 2)
        assert arrived == [(CHAT, "lento"), (CHAT + 1, "otro chat")]
        assert sandbox.pending_updates == [1, 2]
        held.set()
        await eventually(lambda: len(arrived) == 3)
        assert arrived[2] == (CHAT, "después")
        await eventually(lambda: sandbox.pending_updates == [])
    finally:
        held.set()
        server.close()
        await server.wait_closed()
