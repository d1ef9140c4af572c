"""The Telegram channel end to end: python-telegram-bot talking to the gateway's Bot API
sandbox on loopback, the gateway storing, acknowledging and answering in the chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.memory import MemoryAdapter
from adapters.telegram.adapter import TelegramAdapter
from gateway.app import App, assemble
from gateway.core.messages import Inbound, Party, ThreadHint
from gateway.sandbox.telegram import TelegramSandbox
from gateway.settings import SettingsError
from gateway.store.models import Attachment, Message, OutboxItem, Ticket
from tests.conftest import make_settings
from tests.mailservers import eventually, free_port

MARIA = 5551001


async def counts(query: Any, expected: int) -> bool:
    return await query.count() == expected


async def all_sent() -> bool:
    """The outbox holds nothing waiting or in flight: everything queued so far has left."""
    return not await OutboxItem.filter(status__in=["pending", "sending"]).exists()


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/centralita.sqlite3"


@pytest.fixture
async def sandbox() -> AsyncIterator[TelegramSandbox]:
    box = TelegramSandbox()
    await box.start()
    yield box
    await box.stop()


@dataclass
class Bot:
    """The support bot: the gateway with its Telegram channel and the outbox running."""

    app: App
    telegram: TelegramAdapter
    agents: MemoryAdapter
    sandbox: TelegramSandbox
    stop: asyncio.Event
    lifecycle: asyncio.Task[None]

    def said_to(self, chat: int) -> list[str]:
        return [s.get("text") or "" for s in self.sandbox.sent if s["chat_id"] == chat]

    async def close(self) -> None:
        self.stop.set()
        await self.lifecycle


def telegram_settings(tmp_path: Path, sandbox: TelegramSandbox, **telegram: Any):
    table = {"token": sandbox.token, "base_url": sandbox.base_url,
             "base_file_url": sandbox.base_file_url, "poll_timeout": 1, **telegram}
    http = {"public_url": telegram.pop("public_url", "")} if "public_url" in telegram else {}
    table.pop("public_url", None)
    return make_settings(tmp_path, channels={"telegram": table},
                         agents={"undo_seconds": 0},  # the memory console offers no undo
                         outbox={"poll_interval": "0.1s", "backoff_base": "0.2s"}, http=http)


async def open_bot(tmp_path: Path, sandbox: TelegramSandbox, *, listen: str | None = None,
                   **telegram: Any) -> Bot:
    """The gateway running (`App.run`): Telegram, the memory console, the outbox, and
    the HTTP app on `listen` when given."""
    settings = telegram_settings(tmp_path, sandbox, **telegram)
    adapter = TelegramAdapter.from_settings(settings)
    agents = MemoryAdapter("agents")
    app = assemble(settings, adapters={"telegram": adapter, "agents": agents})
    stop, running = asyncio.Event(), asyncio.Event()
    lifecycle = asyncio.create_task(app.run(stop, listen=listen, tick=False,
                                            started=running.set))
    await asyncio.wait_for(running.wait(), 10)
    return Bot(app, adapter, agents, sandbox, stop, lifecycle)


class CrashingPort:
    """The gateway as the adapter sees it, with `receive` replaced."""

    def __init__(self, gateway: Any, receive: Any) -> None:
        self._gateway, self.receive = gateway, receive

    def __getattr__(self, name: str) -> Any:
        return getattr(self._gateway, name)


@pytest.fixture
async def bot(db: str, sandbox: TelegramSandbox, tmp_path: Path) -> AsyncIterator[Bot]:
    running = await open_bot(tmp_path, sandbox)
    yield running
    await running.close()


async def test_maria_gets_her_number_and_her_second_message_joins_the_ticket(bot: Bot) -> None:
    bot.sandbox.inject_text(MARIA, "Hola, mi pedido no llegó", first_name="María")
    ack = (await bot.sandbox.wait_sent(1))[0]
    ticket = await Ticket.get(channel="telegram")
    assert f"#{ticket.number}" in ack["text"] and "María" in ack["text"]
    assert ack["reply_to_message_id"] is not None  # it answers her message in the chat
    bot.sandbox.inject_text(MARIA, "Es el pedido 5531", first_name="María")
    await eventually(lambda: counts(Message.filter(direction="in"), 2))
    stored = await Message.filter(direction="in").order_by("id")
    assert {m.ticket_id for m in stored} == {ticket.id}
    # Her second message and whatever it queued were committed together; once all that
    # has left the outbox, she has still been answered once.
    await eventually(all_sent)
    assert len(bot.said_to(MARIA)) == 1  # no second acknowledgement
    assert bot.agents.sent[0].kind == "new_ticket"


async def test_an_agents_reply_reaches_the_chat_and_long_texts_are_split(bot: Bot) -> None:
    bot.sandbox.inject_text(MARIA, "¿Tienen la talla M?")
    await bot.sandbox.wait_sent(1)
    ticket = await Ticket.get(channel="telegram")
    words = "Sí, tenemos la talla M. " + "Detalle del producto. " * 250  # > 4096 characters
    await bot.app.gateway.receive(Inbound(
        channel="agents", sender=Party("agent", "U0PEDRO", "Pedro"), text=words,
        external_id="slack-1", thread=ThreadHint(ticket_number=ticket.number)))
    sent = await bot.sandbox.wait_sent(3)
    answer = [s["text"] for s in sent[1:]]
    assert answer[0].startswith("Sí, tenemos la talla M.") and len(answer) == 2
    assert all(len(piece) <= 4096 for piece in answer)
    whole = "".join(answer).replace(" ", "").replace("\n", "")
    assert whole.startswith(words.strip().replace(" ", ""))
    assert whole.endswith("—Pedro,SoporteCentralita")  # signed by the agent


async def test_a_429_storm_delays_but_loses_nothing(bot: Bot) -> None:
    bot.sandbox.fail("sendMessage", status=429, retry_after=1, times=4)
    for chat in (7001, 7002, 7003):
        bot.sandbox.inject_text(chat, "Hola", first_name=f"Cliente {chat}")
    await bot.sandbox.wait_sent(3, timeout=30)
    assert sorted(s["chat_id"] for s in bot.sandbox.sent) == [7001, 7002, 7003]
    await eventually(lambda: counts(OutboxItem.filter(status="sent", channel="telegram"), 3))
    assert bot.sandbox.calls["sendMessage"] >= 7


async def test_a_crash_before_or_after_the_commit_repeats_nothing(
        db: str, sandbox: TelegramSandbox, tmp_path: Path) -> None:
    running = await open_bot(tmp_path, sandbox)
    real = running.app.gateway.receive
    crashes = {"before": 1, "after": 1}

    async def crashing(inbound: Inbound):  # type: ignore[no-untyped-def]
        if crashes["before"]:
            crashes["before"] -= 1
            raise RuntimeError("crash between getUpdates and the commit")
        accepted = await real(inbound)
        if crashes["after"]:
            crashes["after"] -= 1
            raise RuntimeError("crash between the commit and storing the offset")
        return accepted

    running.telegram.port = CrashingPort(running.app.gateway, crashing)
    try:
        sandbox.inject_text(MARIA, "Hola")
        await sandbox.wait_sent(1, timeout=20)
        await eventually(lambda: not crashes["after"] and running.telegram.polls >= 3)
        # María presses a button the bot does not know: nothing is stored, but the press
        # is answered only once every earlier update of her chat is stored. So when it is
        # answered, the re-read of her message has been handled.
        sandbox.inject_callback(MARIA, "marcador", message_id=1)
        await eventually(lambda: len(sandbox.callback_answers) == 1)
        await eventually(all_sent)
        assert await Ticket.all().count() == 1
        assert await Message.filter(direction="in").count() == 1
        assert len(running.said_to(MARIA)) == 1
    finally:
        await running.close()


async def test_a_restart_resumes_from_the_stored_offset(
        db: str, sandbox: TelegramSandbox, tmp_path: Path) -> None:
    first = await open_bot(tmp_path, sandbox)
    sandbox.inject_text(MARIA, "Uno")
    await sandbox.wait_sent(1)
    await first.close()
    sandbox.inject_text(7777, "Mientras estaba apagado")
    second = await open_bot(tmp_path, sandbox)
    try:
        await sandbox.wait_sent(2)
        assert await Ticket.all().count() == 2
    finally:
        await second.close()


async def test_the_webhook_refuses_a_wrong_secret_and_stores_after_the_right_one(
        db: str, sandbox: TelegramSandbox, tmp_path: Path) -> None:
    port = free_port()
    running = await open_bot(tmp_path, sandbox, mode="webhook", webhook_secret="s3cret-hook",
                             public_url=f"http://127.0.0.1:{port}",
                             listen=f"127.0.0.1:{port}")
    try:
        # Someone who is not Telegram posts an update.
        forged = {"update_id": 99, "message": {
            "message_id": 1, "date": 1790000000, "text": "dame todo",
            "chat": {"id": 666, "type": "private", "first_name": "X"},
            "from": {"id": 666, "is_bot": False, "first_name": "X"}}}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await eventually(lambda: _up(client))
            for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
                refused = await client.post("/telegram/webhook", json=forged, headers=headers)
                assert refused.status_code == 403
        assert await Message.all().count() == 0
        # Telegram itself delivers María's message to the webhook, with the secret.
        sandbox.inject_text(MARIA, "Hola por webhook")
        ack = (await sandbox.wait_sent(1))[0]
        assert "#1001" in ack["text"]
        assert await Message.filter(direction="in").count() == 1
    finally:
        await running.close()


async def _up(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/healthz")).status_code == 200
    except httpx.HTTPError:
        return False


async def test_the_survey_button_stores_the_score_once(bot: Bot) -> None:
    bot.sandbox.inject_text(MARIA, "Hola")
    await bot.sandbox.wait_sent(1)
    ticket = await Ticket.get(channel="telegram")
    ticket.status = "resolved"
    await ticket.save()
    # The survey goes out with its buttons 1–5 (the scheduler sends it in a later
    # release; here the channel sends one directly) …
    await bot.telegram.send(_survey(ticket.number))
    buttons = bot.sandbox.sent[-1]["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [
        f"score:{ticket.number}:{n}" for n in range(1, 6)]
    # … María presses 5, then 3.
    message_id = bot.sandbox.sent[-1]["message_id"]
    bot.sandbox.inject_callback(MARIA, f"score:{ticket.number}:5", message_id)
    bot.sandbox.inject_callback(MARIA, f"score:{ticket.number}:3", message_id)
    await eventually(lambda: len(bot.sandbox.callback_answers) == 2)
    ticket = await Ticket.get(id=ticket.id)
    assert ticket.satisfaction == 5 and ticket.status == "resolved"
    await eventually(lambda: len(bot.said_to(MARIA)) >= 3)
    assert "gracias" in bot.said_to(MARIA)[2].lower()
    # Both presses were answered, so both were stored with what they queued; once all
    # that has left the outbox, she was thanked once.
    await eventually(all_sent)
    assert len(bot.said_to(MARIA)) == 3  # acknowledgement, survey, one thank-you


def _survey(number: int):  # type: ignore[no-untyped-def]
    from gateway.core.messages import Outbound, Survey

    return Outbound(channel="telegram", recipient=str(MARIA), kind="survey",
                    ticket_number=number, automatic=True, survey=Survey(number),
                    text="¿Cómo evaluarías la atención que recibiste, de 1 a 5?")


async def test_a_customer_who_blocked_the_bot_is_reported_to_agents(bot: Bot) -> None:
    bot.sandbox.block(MARIA)
    bot.sandbox.inject_text(MARIA, "Hola")
    await eventually(lambda: OutboxItem.filter(status="dead").exists(), within=15)
    await eventually(lambda: any(m.kind == "delivery_failed" for m in bot.agents.sent))
    notice = next(m for m in bot.agents.sent if m.kind == "delivery_failed")
    assert "blocked" in notice.text


async def test_photos_files_edits_commands_and_groups(bot: Bot) -> None:
    sandbox = bot.sandbox
    sandbox.inject_text(MARIA, "/start", first_name="María")
    greeting = (await sandbox.wait_sent(1))[0]["text"]
    assert "María" in greeting and await Ticket.all().count() == 0
    first = sandbox.inject_photo(MARIA, b"\xff\xd8fake-jpeg", caption="Así llegó la caja")
    await sandbox.wait_sent(2)
    ticket = await Ticket.get(channel="telegram")
    photo = await Attachment.get(message__ticket_id=ticket.id)
    assert photo.size == len(b"\xff\xd8fake-jpeg") and photo.content_type == "image/jpeg"
    assert (await Message.get(ticket=ticket, direction="in")).text == "Así llegó la caja"
    sandbox.inject_document(MARIA, b"%PDF-1.4 boleta", "boleta.pdf", "application/pdf")
    sandbox.inject_edit(MARIA, first["message"]["message_id"], "Así llegó la caja (rota)")
    await eventually(lambda: Message.filter(kind="edit").exists())
    edit = await Message.get(kind="edit")
    assert edit.ticket_id == ticket.id and edit.text == "Así llegó la caja (rota)"
    await eventually(lambda: Attachment.filter(filename="boleta.pdf").exists())
    sandbox.inject_text(MARIA, "/estado")
    await eventually(lambda: any("#1001" in t and "curso" in t for t in bot.said_to(MARIA)))
    sandbox.inject_text(MARIA, "/nuevo Otra consulta: la factura")
    await eventually(lambda: counts(Ticket.all(), 2))
    assert (await Ticket.get(number=1002)).subject == "Otra consulta: la factura"
    # A message from a group the bot was added to is ignored (allow_groups is off).
    sandbox.inject_text(-100123, "spam en el grupo", chat_type="group", title="Grupo")
    sandbox.inject_text(MARIA, "¿Les llegó la boleta?")
    await eventually(lambda: Message.filter(text="¿Les llegó la boleta?").exists())
    # Telegram holds no update any more: every one was dealt with, the group's too.
    await eventually(lambda: sandbox.pending_updates == [])
    assert await Message.filter(text="spam en el grupo").count() == 0


async def test_her_words_after_a_slow_photo_wait_for_it_and_join_its_ticket(bot: Bot) -> None:
    """María sends a photo Telegram is slow to hand over, then writes: her words reach the
    gateway after the photo, whatever other customers do meanwhile."""
    sandbox = bot.sandbox
    photo = sandbox.inject_photo(MARIA, b"\xff\xd8jpeg", caption="Así llegó la caja")
    fid = photo["message"]["photo"][-1]["file_id"]
    sandbox.hang_file(fid)
    await eventually(lambda: {"file_id": fid, "via": "download"} in sandbox.file_requests)
    sandbox.inject_text(MARIA, "Es el pedido 5531")
    sandbox.inject_text(7001, "Hola, otra consulta", first_name="Pedro")
    await sandbox.wait_sent(1)  # Pedro, who does not wait on María
    assert bot.said_to(7001) and not bot.said_to(MARIA)
    assert not await Message.filter(author_address=str(MARIA)).exists()
    sandbox.mend_file(fid)
    await eventually(lambda: Message.filter(text="Es el pedido 5531").exists())
    photo_message, words = await Message.filter(
        direction="in", channel="telegram", text__in=["Así llegó la caja", "Es el pedido 5531"]
    ).order_by("id")
    assert (photo_message.text, words.text) == ("Así llegó la caja", "Es el pedido 5531")
    assert words.ticket_id == photo_message.ticket_id
    assert await Attachment.filter(message=photo_message, storage="skipped").count() == 0


def test_a_file_timeout_of_nothing_is_refused_naming_its_key(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, channels={"telegram": {"token": "1:x",
                                                              "file_timeout": "0s"}})
    with pytest.raises(SettingsError, match=r"channels\.telegram\.file_timeout: more than 0"):
        TelegramAdapter.from_settings(settings)
