"""The Slack sandbox, exercised through slack-sdk's AsyncWebClient and slack-bolt's AsyncApp
themselves (no mocking): Bolt is served by uvicorn on loopback like the gateway serves it."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from gateway.sandbox.slack import SlackSandbox

AGENTS = "C0AGENTS"


@pytest.fixture
async def sandbox():
    server = SlackSandbox()
    server.add_user("U0ANA", "Ana Agente", email="ana@example.com", display_name="ana")
    server.add_user("U0LUIS", "Luis Soporte")
    server.add_user("U0PEPE", "Pepe Turno")
    server.add_channel(AGENTS, ["U0ANA", "U0LUIS", "U0PEPE"], name="agentes")
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def client(sandbox):
    return AsyncWebClient(token=sandbox.bot_token, base_url=sandbox.api_url)


class BoltServer:
    """A tiny AsyncApp behind Starlette + uvicorn on loopback, recording what reaches it."""

    def __init__(self, sandbox: SlackSandbox) -> None:
        self.app = AsyncApp(client=AsyncWebClient(token=sandbox.bot_token,
                                                  base_url=sandbox.api_url),
                            signing_secret=sandbox.signing_secret)
        self.seen: list[tuple[str, dict]] = []
        handler = AsyncSlackRequestHandler(self.app)

        async def endpoint(request: Request):
            return await handler.handle(request)

        self.starlette = Starlette(routes=[Route("/slack/events", endpoint, methods=["POST"])])

        @self.app.event("message")
        async def on_message(event, say):
            self.seen.append(("message", event))

        @self.app.event("app_mention")
        async def on_mention(event):
            self.seen.append(("app_mention", event))

        @self.app.action("take")
        async def on_take(ack, body, respond):
            await ack()
            self.seen.append(("action", body))
            await respond(text="Tomado por Ana", replace_original=False)

        @self.app.command("/nota")
        async def on_nota(ack, body, client):
            await ack()
            await client.views_open(trigger_id=body["trigger_id"], view={
                "type": "modal", "callback_id": "nota",
                "title": {"type": "plain_text", "text": "Nota"},
                "submit": {"type": "plain_text", "text": "Guardar"},
                "blocks": [{"type": "input", "block_id": "texto", "label": {
                    "type": "plain_text", "text": "Texto"}, "element": {
                    "type": "plain_text_input", "action_id": "valor"}}]})

        @self.app.view("nota")
        async def on_nota_submitted(ack, view):
            value = view["state"]["values"]["texto"]["valor"]["value"]
            self.seen.append(("view", view))
            if not value.strip():
                await ack(response_action="errors", errors={"texto": "Escribe algo"})
            else:
                await ack()

        @self.app.command("/ticket")
        async def on_ticket(ack, command, respond):
            await ack()
            self.seen.append(("command", command))
            await respond(f"Ticket {command['text']} abierto")

    async def __aenter__(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(self.starlette, log_level="warning", lifespan="off",
                                log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.task = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:  # noqa: ASYNC110 (uvicorn offers no event)
            await asyncio.sleep(0.01)
        return f"http://127.0.0.1:{port}/slack/events"

    async def __aexit__(self, *exc) -> None:
        self.server.should_exit = True
        await self.task


@pytest.fixture
async def bolt(sandbox):
    server = BoltServer(sandbox)
    async with server as url:
        sandbox.set_gateway(url)
        yield server


async def seen(bolt: BoltServer, kind: str, within: float = 5) -> dict:
    async with asyncio.timeout(within):
        while True:
            for k, payload in bolt.seen:
                if k == kind:
                    return payload
            await asyncio.sleep(0.01)


# -- the Web API through slack-sdk ------------------------------------------------------------

async def test_auth_test_and_bad_token(sandbox, client):
    me = await client.auth_test()
    assert (me["user_id"], me["team_id"], me["bot_id"]) == ("U0BOT", "T0TEAM", "B0BOT")
    wrong = AsyncWebClient(token="xoxb-wrong", base_url=sandbox.api_url)
    with pytest.raises(SlackApiError) as caught:
        await wrong.auth_test()
    assert caught.value.response["error"] == "invalid_auth"


async def test_post_message_with_blocks_and_thread(sandbox, client):
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*Nuevo* ticket"}},
              {"type": "actions", "block_id": "acts", "elements": [
                  {"type": "button", "action_id": "take", "value": "T-1",
                   "text": {"type": "plain_text", "text": "Tomar"}}]}]
    parent = await client.chat_postMessage(channel=AGENTS, text="Nuevo ticket", blocks=blocks)
    assert parent["ok"] and parent["channel"] == AGENTS
    assert parent["message"]["bot_id"] == "B0BOT"
    reply = await client.chat_postMessage(channel=AGENTS, text="Hola ñandú", thread_ts=parent["ts"],
                                          reply_broadcast=True, unfurl_links=False)
    assert float(reply["ts"]) > float(parent["ts"])
    first, second = await sandbox.wait_posted(2)
    assert first["blocks"] == blocks and first["thread_ts"] is None
    assert (second["text"], second["thread_ts"], second["reply_broadcast"]) == (
        "Hola ñandú", parent["ts"], True)
    assert second["unfurl_links"] is False
    assert [c["method"] for c in sandbox.calls] == ["chat.postMessage"] * 2
    assert sandbox.message_at(AGENTS, parent["ts"])["reply_count"] == 1

    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C0NOPE", text="x")
    assert caught.value.response["error"] == "channel_not_found"
    sandbox.add_channel("C0OUT", ["U0ANA"], bot_member=False)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C0OUT", text="x")
    assert caught.value.response["error"] == "not_in_channel"
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=AGENTS, text="x", blocks=[{"type": "section"}] * 51)
    assert caught.value.response["error"] == "invalid_blocks"


async def test_update_reaction_ephemeral_delete(sandbox, client):
    posted = await client.chat_postMessage(channel=AGENTS, text="Ticket T-1: abierto")
    updated = await client.chat_update(channel=AGENTS, ts=posted["ts"], text="Ticket T-1: cerrado",
                                       blocks=[{"type": "divider"}])
    assert updated["ts"] == posted["ts"] and updated["text"] == "Ticket T-1: cerrado"
    assert sandbox.updated[-1]["blocks"] == [{"type": "divider"}]
    await client.reactions_add(channel=AGENTS, timestamp=posted["ts"], name="white_check_mark")
    assert sandbox.reactions == [{"channel": AGENTS, "timestamp": posted["ts"],
                                  "name": "white_check_mark"}]
    with pytest.raises(SlackApiError) as caught:
        await client.reactions_add(channel=AGENTS, timestamp=posted["ts"], name="white_check_mark")
    assert caught.value.response["error"] == "already_reacted"
    eph = await client.chat_postEphemeral(channel=AGENTS, user="U0ANA", text="Solo para ti")
    assert sandbox.ephemerals[0]["user"] == "U0ANA" and eph["message_ts"]
    await client.chat_delete(channel=AGENTS, ts=posted["ts"])
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel=AGENTS, ts=posted["ts"], text="x")
    assert caught.value.response["error"] == "message_not_found"


async def test_users_members_and_dm(sandbox, client):
    info = await client.users_info(user="U0ANA")
    assert info["user"]["real_name"] == "Ana Agente"
    assert info["user"]["profile"]["email"] == "ana@example.com"
    assert info["user"]["is_bot"] is False
    with pytest.raises(SlackApiError) as caught:
        await client.users_info(user="U0NADIE")
    assert caught.value.response["error"] == "user_not_found"

    pages = [page["members"] async for page in await client.conversations_members(
        channel=AGENTS, limit=2)]
    assert pages == [["U0ANA", "U0LUIS"], ["U0PEPE", "U0BOT"]]
    dm = await client.conversations_open(users=["U0ANA"])
    assert dm["channel"]["id"].startswith("D")
    await client.chat_postMessage(channel=dm["channel"]["id"], text="Hola Ana")
    assert sandbox.posted[-1]["channel"] == dm["channel"]["id"]


async def test_rate_limit_and_injected_faults(sandbox, client):
    sandbox.fail("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel=AGENTS, text="x")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "7"
    assert caught.value.response["error"] == "ratelimited"
    sandbox.fail("chat.update", error="channel_not_found", status=200)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel=AGENTS, ts="1.2", text="x")
    assert (caught.value.response.status_code, caught.value.response["error"]) == (
        200, "channel_not_found")
    sandbox.delay("auth.test", 0.2)
    started = asyncio.get_running_loop().time()
    await client.auth_test()
    assert asyncio.get_running_loop().time() - started >= 0.2
    assert (await client.chat_postMessage(channel=AGENTS, text="ok"))["ok"]


async def test_files_upload_v2_round_trip(sandbox, client):
    posted = await client.chat_postMessage(channel=AGENTS, text="Adjunto")
    done = await client.files_upload_v2(channel=AGENTS, thread_ts=posted["ts"],
                                        filename="factura.pdf", content=b"%PDF-1.4 hola",
                                        initial_comment="La factura")
    assert done["file"]["name"] == "factura.pdf" and done["file"]["mimetype"] == "application/pdf"
    [upload] = sandbox.uploads
    assert (upload["bytes"], upload["channel"], upload["thread_ts"]) == (
        b"%PDF-1.4 hola", AGENTS, posted["ts"])
    assert [c["method"] for c in sandbox.calls[1:]] == [
        "files.getUploadURLExternal", "files.completeUploadExternal"]
    info = await client.files_info(file=done["file"]["id"])
    async with httpx.AsyncClient() as http:
        denied = await http.get(info["file"]["url_private"])
        got = await http.get(info["file"]["url_private"],
                             headers={"Authorization": f"Bearer {sandbox.bot_token}"})
    assert denied.status_code == 302 and got.content == b"%PDF-1.4 hola"


# -- deliveries to a real Bolt app ------------------------------------------------------------

async def test_signed_message_reaches_bolt(sandbox, bolt):
    response = await sandbox.message(AGENTS, "U0ANA", "Lo atiendo yo",
                                     thread_ts="1789999999.000100")
    assert response.status_code == 200 and response.event_id.startswith("Ev")
    event = await seen(bolt, "message")
    assert (event["user"], event["text"], event["thread_ts"]) == (
        "U0ANA", "Lo atiendo yo", "1789999999.000100")
    assert event["channel_type"] == "channel" and event["ts"] == response.ts
    assert [c["method"] for c in sandbox.calls] == ["auth.test"]  # Bolt's first request

    retry = await sandbox.message(AGENTS, "U0ANA", "ignored", event_id=response.event_id,
                                  retry_num=1)
    assert retry.status_code == 200 and retry.payload == response.payload
    assert sandbox.deliveries[-1]["retry_num"] == "1"

    dm = await sandbox.message("D0ANA", "U0ANA", "Privado", channel_type="im")
    assert dm.payload["event"]["channel_type"] == "im"
    await sandbox.wait_for(lambda: len(bolt.seen) >= 3)


async def test_forged_and_stale_requests_get_401(sandbox, bolt):
    assert (await sandbox.forged(AGENTS, "U0ANA", "hola")).status_code == 401
    assert (await sandbox.message(AGENTS, "U0ANA", "hola", age_seconds=400)).status_code == 401
    challenge = await sandbox.url_verification()
    assert challenge.json() == {"challenge": challenge.challenge}
    assert bolt.seen == []


async def test_block_action_and_respond(sandbox, client, bolt):
    blocks = [{"type": "actions", "block_id": "acts", "elements": [
        {"type": "button", "action_id": "take", "value": "T-1",
         "text": {"type": "plain_text", "text": "Tomar"}}]}]
    posted = await client.chat_postMessage(channel=AGENTS, text="Nuevo ticket", blocks=blocks)
    response = await sandbox.block_action("U0ANA", AGENTS, posted["ts"], "take", "T-1")
    assert response.status_code == 200
    body = await seen(bolt, "action")
    assert body["actions"][0]["value"] == "T-1" and body["actions"][0]["block_id"] == "acts"
    assert body["container"]["message_ts"] == posted["ts"]
    assert body["message"]["blocks"] == blocks
    [answer] = await sandbox.wait_for(lambda: sandbox.responses)
    assert (answer["kind"], answer["text"], answer["user"]) == ("actions", "Tomado por Ana",
                                                                "U0ANA")


async def test_slash_command_and_respond(sandbox, bolt):
    response = await sandbox.slash_command("U0ANA", AGENTS, "/ticket", "T-42")
    assert response.status_code == 200
    command = await seen(bolt, "command")
    assert (command["user_id"], command["channel_id"], command["text"]) == (
        "U0ANA", AGENTS, "T-42")
    [answer] = await sandbox.wait_for(lambda: sandbox.responses)
    assert answer["text"] == "Ticket T-42 abierto" and answer["kind"] == "commands"


async def test_modal_from_command_and_submission(sandbox, bolt):
    assert (await sandbox.slash_command("U0ANA", AGENTS, "/nota")).status_code == 200
    [opened] = await sandbox.wait_for(lambda: sandbox.views)
    assert opened["method"] == "views.open" and opened["view"]["callback_id"] == "nota"
    refused = await sandbox.view_submission("U0ANA", opened["id"], {"texto": {"valor": " "}})
    assert refused.json() == {"response_action": "errors", "errors": {"texto": "Escribe algo"}}
    accepted = await sandbox.view_submission("U0ANA", opened["id"], {"texto": {"valor": "ok"}})
    assert accepted.status_code == 200 and not accepted.content
    client = AsyncWebClient(token=sandbox.bot_token, base_url=sandbox.api_url)
    with pytest.raises(SlackApiError) as caught:  # a trigger_id is exchanged once
        await client.views_open(trigger_id=sandbox.views[0]["trigger_id"], view={
            "type": "modal", "title": {"type": "plain_text", "text": "x"}, "blocks": []})
    assert caught.value.response["error"] == "exchanged_trigger_id"


async def test_files_edits_deletions_and_mentions_reach_bolt(sandbox, bolt):
    sent = await sandbox.message(AGENTS, "U0ANA", "", files=[("foto.png", b"\x89PNG", "image/png")])
    event = await seen(bolt, "message")
    assert event["subtype"] == "file_share" and event["files"][0]["mimetype"] == "image/png"
    async with httpx.AsyncClient() as http:
        got = await http.get(event["files"][0]["url_private_download"],
                             headers={"Authorization": f"Bearer {sandbox.bot_token}"})
    assert got.content == b"\x89PNG"

    bolt.seen.clear()
    original = await sandbox.message(AGENTS, "U0LUIS", "Hola")
    await sandbox.message_changed(AGENTS, original.ts, "Hola, corregido")
    await sandbox.message_deleted(AGENTS, sent.ts)
    await sandbox.app_mention(AGENTS, "U0ANA", "¿quién atiende?")
    await sandbox.wait_for(lambda: len(bolt.seen) == 4)
    by_kind = {(kind, event.get("subtype")): event for kind, event in bolt.seen}
    assert sorted(by_kind, key=str) == sorted(
        [("message", None), ("message", "message_changed"), ("message", "message_deleted"),
         ("app_mention", None)], key=str)  # Bolt acks first, then runs listeners as tasks
    changed, deleted, mention = (by_kind[("message", "message_changed")],
                                 by_kind[("message", "message_deleted")],
                                 by_kind[("app_mention", None)])
    assert changed["message"]["text"] == "Hola, corregido"
    assert changed["previous_message"]["text"] == "Hola"
    assert changed["message"]["ts"] == original.ts
    assert deleted["deleted_ts"] == sent.ts
    assert mention["text"] == "<@U0BOT> ¿quién atiende?"
