"""Telegram: one customer's update — a file Telegram will not hand over, a payload that is
not what the Bot API promises — never stops the others, and never loses a message.

Everything goes through the Bot API sandbox and the real adapter (python-telegram-bot on
loopback), polling and webhook; SQLite, like the channel's other tests.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.sandbox.telegram import SECRET_HEADER, TelegramSandbox
from gateway.store.models import Attachment, Message
from tests.mailservers import eventually, free_port
from tests.test_telegram_channel import MARIA, Bot, open_bot

PEDRO = 5551002
SECRET = "s3cret-hook"
Fault = Callable[[TelegramSandbox, str], None]

# How Telegram can refuse María's photo, and where: the download answers 404 (the file is
# gone: PTB says InvalidToken), getFile answers 401 (InvalidToken), or the download is
# never answered (the adapter's own timeout, `file_timeout`, ends it).
FAULTS: dict[str, Fault] = {
    "gone (404)": lambda sandbox, fid: sandbox.fail_file(fid, 404),
    "refused (401)": lambda sandbox, fid: sandbox.fail_file(fid, 401, via="getFile"),
    "never answered (timeout)": lambda sandbox, fid: sandbox.hang_file(fid),
}


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/centralita.sqlite3"


@pytest.fixture
async def sandbox() -> AsyncIterator[TelegramSandbox]:
    box = TelegramSandbox(webhook_backoff=0.05)
    await box.start()
    yield box
    await box.stop()


async def polling_bot(tmp_path: Path, sandbox: TelegramSandbox) -> Bot:
    """The gateway polling the sandbox, giving a file half a second."""
    return await open_bot(tmp_path, sandbox, file_timeout="0.5s")


async def webhook_bot(tmp_path: Path, sandbox: TelegramSandbox,
                      **telegram: Any) -> tuple[Bot, str]:
    """The gateway in webhook mode and the address of its HTTP app, once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    running = await open_bot(tmp_path, sandbox, mode="webhook", webhook_secret=SECRET,
                             public_url=url, listen=f"127.0.0.1:{port}",
                             **{"file_timeout": "0.5s", **telegram})
    async with httpx.AsyncClient(base_url=url) as client:
        await eventually(lambda: _up(client))
    return running, url


async def _up(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


def photo_of(update: dict[str, Any]) -> str:
    return str(update["message"]["photo"][-1]["file_id"])


def acknowledged(sandbox: TelegramSandbox) -> dict[int, str]:
    """Each chat's first message from the bot: its acknowledgement."""
    said: dict[int, str] = {}
    for sent in sandbox.sent:
        said.setdefault(sent["chat_id"], sent.get("text") or "")
    return said


async def maria_s_photo_fails_and_pedro_writes(sandbox: TelegramSandbox, fault: Fault) -> None:
    """María sends a photo Telegram will not hand over; Pedro writes "hola" after her.
    The fault is set before the bot can ask for the file (nothing awaits in between)."""
    photo = sandbox.inject_photo(MARIA, b"\xff\xd8jpeg", caption="Así llegó la caja",
                                 first_name="María")
    fault(sandbox, photo_of(photo))
    sandbox.inject_text(PEDRO, "hola", first_name="Pedro")


async def both_are_stored_and_answered(sandbox: TelegramSandbox) -> None:
    """Both got their number; María's message has its photo recorded without its bytes;
    Telegram holds neither update any more."""
    await sandbox.wait_sent(2, timeout=10)
    acks = acknowledged(sandbox)
    assert set(acks) == {MARIA, PEDRO}
    assert all("#100" in text for text in acks.values())
    maria = await Message.get(text="Así llegó la caja", direction="in")
    [photo] = await Attachment.filter(message=maria)
    assert (photo.filename, photo.storage, photo.content_type) == (
        "foto-1.jpg", "skipped", "image/jpeg")
    assert await Message.filter(text="hola", direction="in").count() == 1
    await eventually(lambda: sandbox.pending_updates == [])


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_maria_s_photo_cannot_be_fetched_and_pedro_s_hola_is_stored_all_the_same(
        db: str, sandbox: TelegramSandbox, tmp_path: Path, fault: Fault,
        caplog: pytest.LogCaptureFixture) -> None:
    bot = await polling_bot(tmp_path, sandbox)
    try:
        with caplog.at_level(logging.INFO, logger="centralita.telegram"):
            await maria_s_photo_fails_and_pedro_writes(sandbox, fault)
            await both_are_stored_and_answered(sandbox)
        assert "file foto-1.jpg could not be downloaded" in caplog.text
    finally:
        await bot.close()


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
async def test_over_the_webhook_the_failed_photo_is_answered_200_and_stored(
        db: str, sandbox: TelegramSandbox, tmp_path: Path, fault: Fault) -> None:
    bot, _ = await webhook_bot(tmp_path, sandbox)
    try:
        await maria_s_photo_fails_and_pedro_writes(sandbox, fault)
        await both_are_stored_and_answered(sandbox)
        # Each update was posted once and answered 200: nothing for Telegram to retry.
        assert sorted((e["update_id"], e["status"]) for e in sandbox.webhook_log) == [
            (1, 200), (2, 200)]
    finally:
        await bot.close()


async def test_a_photo_whose_download_answers_500_is_recorded_too(
        db: str, sandbox: TelegramSandbox, tmp_path: Path) -> None:
    bot = await polling_bot(tmp_path, sandbox)
    try:
        await maria_s_photo_fails_and_pedro_writes(
            sandbox, lambda box, fid: box.fail_file(fid, 500))
        await both_are_stored_and_answered(sandbox)
    finally:
        await bot.close()


# -- updates that are not what the Bot API promises ------------------------------------------

WITHOUT_CHAT = {"message_id": 1, "date": 0, "text": "hi"}
SOMEONE = {"id": 31337, "is_bot": False, "first_name": "Nadie"}
MALFORMED: dict[str, dict[str, Any]] = {
    "a message without a chat": {"message": WITHOUT_CHAT},
    "an edit without a chat": {"edited_message": {**WITHOUT_CHAT, "edit_date": 1}},
    "a message without a date": {"message": {
        "message_id": 2, "text": "hi", "chat": {"id": 31337, "type": "private"}}},
    "a message that is a string": {"message": "hola"},
    "a button press without a message": {"callback_query": {
        "id": "cb1", "from": SOMEONE, "chat_instance": "ci", "data": "score:1001:5"}},
    "a button press without a message or a sender": {"callback_query": {
        "id": "cb2", "chat_instance": "ci", "data": "score:1001:5"}},
    "a channel post": {"channel_post": {
        "message_id": 3, "date": 0, "text": "anuncio",
        "chat": {"id": -1001, "type": "channel", "title": "Canal"}}},
    "a kind the bot never asked for": {"a_kind_from_the_future": {"text": "¿?"}},
    "a business message without a date": {"business_message": {"text": "¿?"}},
}


async def test_malformed_updates_are_confirmed_and_a_good_one_beside_them_is_stored(
        db: str, sandbox: TelegramSandbox, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    """Polling: all in one getUpdates batch, María's good message last."""
    bot = await polling_bot(tmp_path, sandbox)
    try:
        with caplog.at_level(logging.INFO, logger="centralita.telegram"):
            for update in MALFORMED.values():
                sandbox.inject_update(**update)
            sandbox.inject_text(MARIA, "Hola, ¿me ayudan?", first_name="María")
            [ack] = await sandbox.wait_sent(1, timeout=10)
            assert ack["chat_id"] == MARIA and "#1001" in ack["text"]
            await eventually(lambda: sandbox.pending_updates == [])
        assert [m.text for m in await Message.filter(direction="in")] == ["Hola, ¿me ayudan?"]
        assert "update 1 " in caplog.text and "update 4 " in caplog.text  # logged by id
        assert not bot.lifecycle.done()
    finally:
        await bot.close()


WEBHOOK_BODIES: dict[str, bytes] = {
    **{name: httpx.Request("POST", "/", json={"update_id": 100 + i, **update}).content
       for i, (name, update) in enumerate(MALFORMED.items())},
    "the update of the issue": b'{"update_id": 5, "message": '
                               b'{"message_id": 1, "date": 0, "text": "hi"}}',
    "not JSON": b"{",
    "not UTF-8": b"\xff\xfe{}",
    "a JSON list": b"[1, 2]",
    "a JSON string": b'"update"',
    "an update without an id": b'{"message": {"message_id": 1, "date": 0, "text": "hi"}}',
}


async def test_the_webhook_answers_200_to_malformed_updates_and_stores_the_next_good_one(
        db: str, sandbox: TelegramSandbox, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    bot, url = await webhook_bot(tmp_path, sandbox)
    headers = {SECRET_HEADER: SECRET, "content-type": "application/json"}
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            with caplog.at_level(logging.INFO, logger="centralita.telegram"):
                for name, body in WEBHOOK_BODIES.items():
                    answer = await client.post("/telegram/webhook", content=body,
                                               headers=headers)
                    assert answer.status_code == 200, name
        assert "not JSON" in caplog.text
        sandbox.inject_text(MARIA, "Hola por webhook", first_name="María")
        [ack] = await sandbox.wait_sent(1, timeout=10)
        assert ack["chat_id"] == MARIA and "#1001" in ack["text"]
        assert [m.text for m in await Message.filter(direction="in")] == ["Hola por webhook"]
    finally:
        await bot.close()


# -- isolation: while one update is in hand, the others go on ---------------------------------

async def test_while_maria_s_download_hangs_pedro_is_acknowledged_within_a_second(
        db: str, sandbox: TelegramSandbox, tmp_path: Path) -> None:
    bot = await open_bot(tmp_path, sandbox, file_timeout="60s")
    try:
        await pedro_is_answered_while_maria_s_photo_hangs(sandbox)
    finally:
        await bot.close()


async def test_over_the_webhook_pedro_is_acknowledged_while_maria_s_download_hangs(
        db: str, sandbox: TelegramSandbox, tmp_path: Path) -> None:
    bot, _ = await webhook_bot(tmp_path, sandbox, file_timeout="8s")
    try:
        await pedro_is_answered_while_maria_s_photo_hangs(sandbox)
    finally:
        await bot.close()


async def pedro_is_answered_while_maria_s_photo_hangs(sandbox: TelegramSandbox) -> None:
    """María's download hangs (the adapter is still waiting for it); Pedro writes and is
    answered within a second; then Telegram hands María's photo over and she is stored
    with it and answered; Telegram holds neither update any more."""
    photo = sandbox.inject_photo(MARIA, b"\xff\xd8jpeg", caption="Así llegó la caja",
                                 first_name="María")
    fid = photo_of(photo)
    sandbox.hang_file(fid)
    await eventually(lambda: {"file_id": fid, "via": "download"} in sandbox.file_requests)
    sandbox.inject_text(PEDRO, "hola", first_name="Pedro")
    [ack] = await sandbox.wait_sent(1, timeout=1)
    assert ack["chat_id"] == PEDRO and "#1001" in ack["text"]
    assert not await Message.filter(text="Así llegó la caja").exists()  # still in hand
    sandbox.mend_file(fid)
    await sandbox.wait_sent(2, timeout=10)
    maria = await Message.get(text="Así llegó la caja", direction="in")
    [stored] = await Attachment.filter(message=maria)
    assert stored.storage != "skipped" and stored.size == len(b"\xff\xd8jpeg")
    assert set(acknowledged(sandbox)) == {MARIA, PEDRO}
    await eventually(lambda: sandbox.pending_updates == [])
