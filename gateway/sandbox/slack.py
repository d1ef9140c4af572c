"""A fake Slack server on loopback (Starlette + uvicorn, in the caller's loop).

Both directions of Slack are played: the Web API that slack-sdk's `AsyncWebClient` calls
(`AsyncWebClient(token=..., base_url=sandbox.api_url)`), and Slack's deliveries to the
gateway — Events API callbacks, interactivity payloads and slash commands, signed with the
signing secret exactly like Slack signs them, so slack-bolt's `AsyncApp` verifies them.
With `socket_mode = True` the same deliveries travel instead as Socket Mode envelopes on the
websocket the app opens (`apps.connections.open` with the app token), each waiting for its
acknowledgement.

Wire format of the Web API as slack-sdk 3.x speaks it: POST (or GET) `/api/{method}` with
`Authorization: Bearer <token>`; arguments arrive as a JSON body (chat.postMessage,
chat.update, chat.postEphemeral, views.*), in the query string (most other methods, booleans
as "1"/"0"), form-encoded or multipart. Answers are `{"ok": true, ...}` or `{"ok": false,
"error": "..."}` (HTTP 200); rate limits are HTTP 429 with `Retry-After`. Slack's limits are
enforced where it is cheap (≤ 50 blocks, section text ≤ 3,000, text silently truncated past
40,000, trigger_id single use within 3 s, response_url ≤ 5 uses).

Run standalone with `python -m gateway.sandbox.slack --port 8082 [--gateway URL]`; events are
then injected with `POST /sandbox/{message|app_mention|block_action|slash_command|...}`
(a JSON object of the helper's arguments) and records read with `GET /sandbox/{posted|...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import mimetypes
import secrets
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

import httpx
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.web.http import QuietServer, start_server

TEXT_LIMIT = 40_000         # longer text is truncated silently
BLOCKS_LIMIT = 50
SECTION_TEXT_LIMIT = 3_000
HEADER_TEXT_LIMIT = 150
TRIGGER_TTL = 3.0           # seconds a trigger_id may be exchanged for a modal
RESPONSE_URL_USES = 5
SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SLACKBOT_UA = "Slackbot 1.0 (+https://api.slack.com/robots)"
# Arguments that travel as JSON text when form- or query-encoded.
_JSON_ARGS = frozenset({"blocks", "attachments", "view", "files", "metadata"})
_P = dict[str, Any]
_Handler = Callable[[_P], Awaitable[dict[str, Any]]]


class SlackError(Exception):
    """An error answer, raised by the method handlers: `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, status: int = 200, retry_after: int | None = None,
                 **extra: Any) -> None:
        super().__init__(error)
        self.error, self.status, self.retry_after, self.extra = error, status, retry_after, extra


def _error(error: str, status: int = 200, retry_after: int | None = None,
           **extra: Any) -> JSONResponse:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse({"ok": False, "error": error, **extra}, status_code=status,
                        headers=headers)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: `v0=` + hex HMAC-SHA256 over `v0:{timestamp}:{body}`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def _int(value: Any, default: int) -> int:
    if value in (None, ""):
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise SlackError("invalid_arguments") from None


def _rich_text(text: str) -> list[dict[str, Any]]:
    """The `rich_text` block Slack's clients attach to a typed message."""
    return [{"type": "rich_text", "block_id": secrets.token_hex(3),
             "elements": [{"type": "rich_text_section",
                           "elements": [{"type": "text", "text": text}]}]}]


def _block_text(block: dict[str, Any]) -> str:
    text = block.get("text")
    return str(text.get("text", "")) if isinstance(text, dict) else ""


def _check_blocks(blocks: Any) -> list[dict[str, Any]] | None:
    if blocks is None:
        return None
    if isinstance(blocks, str):
        try:
            blocks = json.loads(blocks)
        except ValueError:
            raise SlackError("invalid_blocks_format") from None
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")

    def invalid(message: str) -> SlackError:
        return SlackError("invalid_blocks", errors=[message])

    if len(blocks) > BLOCKS_LIMIT:
        raise invalid(f"no more than {BLOCKS_LIMIT} items allowed [json-pointer:/blocks]")
    ids: set[str] = set()
    for i, block in enumerate(blocks):
        if not isinstance(block, dict) or not block.get("type"):
            raise invalid(f"missing required field: type [json-pointer:/blocks/{i}]")
        if block["type"] == "section" and len(_block_text(block)) > SECTION_TEXT_LIMIT:
            raise invalid(f"must be less than {SECTION_TEXT_LIMIT + 1} characters "
                          f"[json-pointer:/blocks/{i}/text/text]")
        if block["type"] == "header" and len(_block_text(block)) > HEADER_TEXT_LIMIT:
            raise invalid(f"must be less than {HEADER_TEXT_LIMIT + 1} characters "
                          f"[json-pointer:/blocks/{i}/text/text]")
        block_id = block.get("block_id")
        if block_id is not None:
            if block_id in ids:
                raise invalid(f"duplicate block_id [json-pointer:/blocks/{i}/block_id]")
            ids.add(block_id)
    return blocks


def _find_element(node: Any, action_id: str) -> dict[str, Any] | None:
    """The interactive element with `action_id` anywhere inside blocks."""
    if isinstance(node, dict):
        if node.get("action_id") == action_id:
            return node
        node = list(node.values())
    if isinstance(node, list):
        for item in node:
            found = _find_element(item, action_id)
            if found is not None:
                return found
    return None


def _plain(value: Any) -> Any:
    """JSON-able records: bytes become their length."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _channel_type(channel: str) -> str:
    return {"D": "im", "G": "group"}.get(channel[:1], "channel")


class SlackSandbox:
    """A Slack workspace on loopback: the Web API for slack-sdk, and Slack's signed deliveries
    (events, interactivity, slash commands) to the gateway's Bolt endpoint.

    Example (doctest: +SKIP, it needs a running loop and a Bolt app)::

        sandbox = SlackSandbox()
        await sandbox.start()
        sandbox.add_user("U0ANA", "Ana Agente", email="ana@example.com")
        sandbox.add_channel("C0AGENTS", ["U0ANA"])            # the bot is added too
        client = AsyncWebClient(token="xoxb-test", base_url=sandbox.api_url)
        await client.chat_postMessage(channel="C0AGENTS", text="Nuevo ticket")
        sandbox.set_gateway("http://127.0.0.1:8000/slack/events")   # Bolt's endpoint
        r = await sandbox.message("C0AGENTS", "U0ANA", "Lo atiendo",
                                  thread_ts=sandbox.posted[0]["ts"])
        assert r.status_code == 200
        await sandbox.resend(r.event_id, retry_num=1)        # Slack's retry, same body
        sandbox.fail("chat.postMessage", retry_after=2)      # next post: HTTP 429
        await sandbox.stop()

    Records: `calls` (every Web API call: {"method", **arguments}), `posted` (chat.postMessage
    only), `updated`, `deleted`, `reactions`, `ephemerals`, `views`, `uploads` (with the bytes),
    `responses` (what was POSTed to response_urls), `deliveries` (every request sent to the
    gateway: kind, status, elapsed seconds). Messages the sandbox injects are remembered too,
    so reactions, edits, deletions and block actions find them.

    Files customers send arrive with `url_private` on this server; downloading them needs
    `Authorization: Bearer <bot token>` — without it Slack (and the sandbox) answer 302 to an
    HTML login page (status 200 when followed), the classic trap.
    """

    def __init__(self, *, bot_token: str = "xoxb-test",  # noqa: S107 (a fake bot's token)
                 signing_secret: str = "test-signing-secret",  # noqa: S107
                 team_id: str = "T0TEAM", bot_user_id: str = "U0BOT",
                 host: str = "127.0.0.1", port: int = 0,
                 app_token: str = "xapp-test") -> None:  # noqa: S107
        self.bot_token, self.signing_secret = bot_token, signing_secret
        # Socket Mode: the app opens a websocket (apps.connections.open, app token) and
        # every delivery travels on it as an envelope the app must acknowledge.
        self.app_token = app_token
        self.socket_mode = False
        self._sockets: list[WebSocket] = []
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.team_id, self.bot_user_id, self.host, self.port = team_id, bot_user_id, host, port
        self.bot_id, self.app_id = "B0BOT", "A0APP"
        self.team_name, self.team_domain, self.bot_name = "Centralita", "centralita", "centralita"
        self.verification_token = "sandbox-verification-token"  # noqa: S105 (legacy field)
        self.ts_base = int(time.time())  # message ts: f"{ts_base + n // 10_000}.{n % 10_000}00"
        self.trigger_ttl = TRIGGER_TTL
        self.delivery_timeout = 10.0
        # Where Slack delivers: Bolt serves all three on one `/slack/events` endpoint.
        self.events_url: str | None = None
        self.interactive_url: str | None = None
        self.commands_url: str | None = None
        self.calls: list[dict[str, Any]] = []
        self.posted: list[dict[str, Any]] = []
        self.updated: list[dict[str, Any]] = []
        self.deleted: list[dict[str, Any]] = []
        self.reactions: list[dict[str, Any]] = []
        self.ephemerals: list[dict[str, Any]] = []
        self.views: list[dict[str, Any]] = []
        self.uploads: list[dict[str, Any]] = []
        self.responses: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._dms: dict[str, str] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._files: dict[str, dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._triggers: dict[str, float | None] = {}  # id -> issued at (None once exchanged)
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._events: dict[str, bytes] = {}  # event_id -> body, for retries
        self._seq = 0
        self._fails: defaultdict[str, deque[tuple[str, int, int | None]]] = defaultdict(deque)
        self._delays: defaultdict[str, deque[float]] = defaultdict(deque)
        self._changed = asyncio.Event()
        self._server: QuietServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None
        self._handlers: dict[str, _Handler] = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message,
            "chat.update": self._chat_update, "chat.postEphemeral": self._post_ephemeral,
            "chat.delete": self._chat_delete, "chat.getPermalink": self._get_permalink,
            "reactions.add": self._reactions_add, "reactions.remove": self._reactions_remove,
            "conversations.members": self._conversations_members,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info, "users.info": self._users_info,
            "users.lookupByEmail": self._lookup_by_email, "views.open": self._views_open,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload, "files.info": self._files_info,
            "files.upload": self._files_upload_v1,
            "apps.connections.open": self._connections_open}
        self.add_user(bot_user_id, "Centralita", is_bot=True, name=self.bot_name)
        self.app = Starlette(routes=[
            Route("/api/{method}", self._api, methods=["GET", "POST"]),
            Route("/upload/v1/{file_id}", self._upload, methods=["POST"]),
            Route("/files-pri/{owner}/{rest:path}", self._download, methods=["GET"]),
            Route("/hooks/{kind}/{team}/{rid}/{key}", self._respond, methods=["POST"]),
            Route("/sandbox/login", self._login_page, methods=["GET"]),
            WebSocketRoute("/socket-mode", self._socket),
            Route("/sandbox/{name}", self._control_read, methods=["GET"]),
            Route("/sandbox/{name}", self._control_act, methods=["POST"]),
        ])

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """slack-sdk's `base_url` (the trailing slash matters: it is joined with urljoin)."""
        return f"{self.url}/api/"

    async def start(self) -> None:
        """Bind (port 0 picks a free port), serve in this loop, return once listening."""
        self._client = httpx.AsyncClient(timeout=self.delivery_timeout, trust_env=False)
        self._server, self._serving, self.port = await start_server(self.app, self.host,
                                                                    self.port)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._server is not None:
            self._server.should_exit = True
        if self._serving is not None:
            await self._serving

    # -- workspace state ---------------------------------------------------------------------

    def add_user(self, user_id: str, real_name: str, *, is_bot: bool = False, email: str = "",
                 name: str | None = None, display_name: str = "",
                 tz: str = "America/Santiago") -> dict[str, Any]:
        """Register a workspace member (users.info, users.lookupByEmail, event payloads)."""
        name = name or (real_name.split()[0].lower() if real_name else user_id.lower())
        profile = {"real_name": real_name, "real_name_normalized": real_name,
                   "display_name": display_name, "display_name_normalized": display_name,
                   "first_name": real_name.split(" ")[0], "team": self.team_id,
                   "image_72": f"https://avatars.slack-edge.com/{user_id}_72.png"}
        if email:
            profile["email"] = email
        if is_bot:
            profile.update(bot_id=self.bot_id if user_id == self.bot_user_id else f"B{user_id}",
                           api_app_id=self.app_id)
        user = {"id": user_id, "team_id": self.team_id, "name": name, "deleted": False,
                "real_name": real_name, "tz": tz, "tz_label": tz, "tz_offset": 0,
                "profile": profile, "is_admin": False, "is_owner": False, "is_bot": is_bot,
                "is_app_user": False, "updated": int(time.time())}
        self._users[user_id] = user
        return user

    def add_channel(self, channel_id: str, members: list[str], *, name: str | None = None,
                    private: bool | None = None, bot_member: bool = True) -> dict[str, Any]:
        """A channel ("C…" public, "G…" private unless `private` says otherwise) with these
        members; the bot is added unless `bot_member=False` (then posting answers
        not_in_channel, or channel_not_found for a private channel, like Slack)."""
        members = list(dict.fromkeys(members))
        if bot_member and self.bot_user_id not in members:
            members.append(self.bot_user_id)
        if private is None:
            private = channel_id.startswith("G")
        channel = {"id": channel_id, "name": name or channel_id.lower(), "is_channel": not private,
                   "is_group": private, "is_im": False, "is_mpim": False,
                   "is_private": private, "is_archived": False, "created": int(time.time()),
                   "creator": members[0] if members else self.bot_user_id, "members": members}
        self._channels[channel_id] = channel
        return channel

    def set_gateway(self, url: str) -> None:
        """Deliver events, interactivity and slash commands to one URL (Bolt's /slack/events)."""
        self.events_url = self.interactive_url = self.commands_url = url

    def message_at(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The current state of a message the sandbox knows (posted or injected)."""
        return self._messages.get((channel, ts))

    # -- test API ----------------------------------------------------------------------------

    async def wait_posted(self, count: int, timeout: float = 10,  # noqa: ASYNC109
                          ) -> list[dict[str, Any]]:
        """Wait until at least `count` chat.postMessage calls were recorded; returns `posted`."""
        try:
            await self.wait_for(lambda: len(self.posted) >= count, timeout)
        except TimeoutError:
            texts = [entry["text"] for entry in self.posted]
            raise TimeoutError(f"{len(self.posted)} of {count} posts after {timeout}s: "
                               f"{texts}") from None
        return self.posted

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 10,  # noqa: ASYNC109
                       ) -> Any:
        """Wait until `predicate()` is truthy (checked on every change, and every 50 ms);
        returns its value."""
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.05)
        return value

    def fail(self, method: str, *, error: str | None = None, status: int | None = None,
             retry_after: int | None = 1, times: int = 1) -> None:
        """The next `times` calls of `method` answer an error. Default: HTTP 429 `ratelimited`
        with `Retry-After: retry_after`; `fail(m, error="channel_not_found")` answers HTTP 200
        `{"ok": false, ...}`; `status=500` an HTTP 500. `method` "upload" is the upload URL."""
        self._check_method(method)
        if status is None:
            status = 429 if error in (None, "ratelimited") else 200
        if error is None:
            error = {429: "ratelimited", 200: "internal_error"}.get(status, "fatal_error")
        self._fails[method].extend([(error, status, retry_after if status == 429 else None)]
                                   * times)

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """The next `times` calls of `method` are answered `seconds` late."""
        self._check_method(method)
        self._delays[method].extend([seconds] * times)

    # -- deliveries to the gateway -------------------------------------------------------------

    async def event(self, event: dict[str, Any], *, event_id: str | None = None,
                    retry_num: int | None = None, retry_reason: str = "http_timeout",
                    age_seconds: float = 0, signature: str | None = None) -> httpx.Response:
        """POST any event as an `event_callback` to `events_url`. With `retry_num` and an
        `event_id` sent before, the identical body is re-sent (X-Slack-Retry-* headers), as
        Slack retries do. The response carries `.event_id`, `.payload` and `.ts`."""
        if retry_num is not None and event_id in self._events:
            return await self.resend(event_id, retry_num=retry_num, retry_reason=retry_reason,
                                     age_seconds=age_seconds, signature=signature)
        event_id = event_id or f"Ev{secrets.token_hex(5).upper()}"
        payload = {
            "token": self.verification_token, "team_id": self.team_id,
            "context_team_id": self.team_id, "context_enterprise_id": None,
            "api_app_id": self.app_id, "event": event, "type": "event_callback",
            "event_id": event_id, "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": self.team_id,
                                "user_id": self.bot_user_id, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False,
            "event_context": "4-" + base64.urlsafe_b64encode(json.dumps(
                {"et": event.get("type"), "tid": self.team_id, "aid": self.app_id,
                 "cid": event.get("channel")}).encode()).decode().rstrip("=")}
        body = json.dumps(payload, ensure_ascii=False).encode()
        self._events[event_id] = body
        headers = self._retry_headers(retry_num, retry_reason)
        response = await self._deliver("event", self._target("events_url"), body,
                                       "application/json", age_seconds=age_seconds,
                                       signature=signature, headers=headers, event_id=event_id)
        response.event_id, response.payload, response.ts = event_id, payload, event.get("ts")
        return response

    async def resend(self, event_id: str, *, retry_num: int = 1,
                     retry_reason: str = "http_timeout", age_seconds: float = 0,
                     signature: str | None = None) -> httpx.Response:
        """Slack's retry of an event sent earlier: the same body, freshly signed."""
        body = self._events[event_id]
        payload = json.loads(body)
        response = await self._deliver("event", self._target("events_url"), body,
                                       "application/json", age_seconds=age_seconds,
                                       signature=signature, event_id=event_id,
                                       headers=self._retry_headers(retry_num, retry_reason))
        response.event_id, response.payload = event_id, payload
        response.ts = payload["event"].get("ts")
        return response

    async def message(self, channel: str, user: str | None, text: str, *,
                      thread_ts: str | None = None, ts: str | None = None,
                      files: list[Any] | None = None, subtype: str | None = None,
                      bot_id: str | None = None, channel_type: str | None = None,
                      event_id: str | None = None, retry_num: int | None = None,
                      retry_reason: str = "http_timeout", age_seconds: float = 0,
                      signature: str | None = None) -> httpx.Response:
        """A `message` event, as Slack delivers it. `channel_type` defaults from the id ("D…"
        im, "G…" group, else channel); an unknown channel is created with the user and the bot
        as members. `files`: items (filename, bytes[, mimetype]) or {"name", "data",
        "mimetype"} — stored here and sent with `url_private` (subtype file_share)."""
        event = self._message_event(channel, user, text, thread_ts=thread_ts, ts=ts,
                                    files=files, subtype=subtype, bot_id=bot_id,
                                    channel_type=channel_type)
        return await self.event(event, event_id=event_id, retry_num=retry_num,
                                retry_reason=retry_reason, age_seconds=age_seconds,
                                signature=signature)

    async def forged(self, channel: str, user: str | None, text: str,
                     **options: Any) -> httpx.Response:
        """`message(...)` signed with the wrong secret (Bolt answers 401)."""
        timestamp = str(int(time.time() - options.get("age_seconds", 0)))
        options["signature"] = sign("not-" + self.signing_secret, timestamp, b"forged")
        return await self.message(channel, user, text, **options)

    async def app_mention(self, channel: str, user: str, text: str, *,
                          thread_ts: str | None = None, ts: str | None = None,
                          event_id: str | None = None, age_seconds: float = 0) -> httpx.Response:
        """An `app_mention` event ("<@bot> " is prepended unless the text mentions the bot).
        Slack also delivers a `message` event for the same ts: send it with
        `message(..., ts=response.ts)` when the test needs both."""
        mention = f"<@{self.bot_user_id}>"
        if mention not in text:
            text = f"{mention} {text}"
        message = self._message_event(channel, user, text, thread_ts=thread_ts, ts=ts,
                                      files=None, subtype=None, bot_id=None, channel_type=None)
        event = {"client_msg_id": message["client_msg_id"], "type": "app_mention", "text": text,
                 "user": user, "ts": message["ts"], "blocks": message["blocks"],
                 "team": self.team_id, "channel": channel, "event_ts": message["ts"]}
        if thread_ts:
            event["thread_ts"] = thread_ts
            if "parent_user_id" in message:
                event["parent_user_id"] = message["parent_user_id"]
        return await self.event(event, event_id=event_id, age_seconds=age_seconds)

    async def message_changed(self, channel: str, ts: str, new_text: str, *,
                              thread_ts: str | None = None, user: str | None = None,
                              event_id: str | None = None) -> httpx.Response:
        """The customer/agent edited message `ts` (subtype message_changed, hidden)."""
        original = self._messages.get((channel, ts))
        if original is None:
            if user is None:
                raise KeyError(f"unknown message {ts} in {channel}: pass user=")
            original = {"type": "message", "user": user, "text": "", "ts": ts,
                        "team": self.team_id}
            if thread_ts:
                original["thread_ts"] = thread_ts
        edit_ts = self._next_ts()
        author = user or original.get("user")
        changed = {**original, "text": new_text, "edited": {"user": author, "ts": edit_ts}}
        if "client_msg_id" in original:
            changed["blocks"] = _rich_text(new_text)
        if thread_ts:
            changed.setdefault("thread_ts", thread_ts)
        self._messages[(channel, ts)] = changed
        self._notify()
        event = {"type": "message", "subtype": "message_changed", "message": changed,
                 "previous_message": original, "channel": channel, "hidden": True,
                 "ts": edit_ts, "event_ts": edit_ts, "channel_type": self._type_of(channel)}
        return await self.event(event, event_id=event_id)

    async def message_deleted(self, channel: str, ts: str, *, thread_ts: str | None = None,
                              event_id: str | None = None) -> httpx.Response:
        """Message `ts` was deleted (subtype message_deleted, hidden, `deleted_ts`)."""
        original = self._messages.pop((channel, ts), None)
        if original is None:
            original = {"type": "message", "text": "", "ts": ts, "team": self.team_id}
            if thread_ts:
                original["thread_ts"] = thread_ts
        self._notify()
        now = self._next_ts()
        event = {"type": "message", "subtype": "message_deleted", "previous_message": original,
                 "channel": channel, "hidden": True, "deleted_ts": ts, "event_ts": now,
                 "ts": now, "channel_type": self._type_of(channel)}
        return await self.event(event, event_id=event_id)

    async def block_action(self, user: str, channel: str, message_ts: str, action_id: str,
                           value: str | None, *, block_id: str = "b",
                           selected_option: dict[str, Any] | str | None = None,
                           trigger_id: str | None = None, age_seconds: float = 0,
                           signature: str | None = None) -> httpx.Response:
        """An agent pressed a button (or picked an option) of message `message_ts`: a
        `block_actions` payload to `interactive_url`. The response carries `.payload`,
        `.trigger_id` and `.response_url` (POSTs to it land in `responses`)."""
        message = self._messages.get((channel, message_ts)) or {
            "type": "message", "user": self.bot_user_id, "bot_id": self.bot_id,
            "text": "", "ts": message_ts, "team": self.team_id}
        element = _find_element(message.get("blocks"), action_id) or {}
        block_id = self._block_id_of(message.get("blocks"), action_id) or block_id
        action: dict[str, Any] = {"action_id": action_id, "block_id": block_id}
        if selected_option is not None:
            if isinstance(selected_option, str):
                selected_option = {"text": {"type": "plain_text", "text": selected_option,
                                            "emoji": True}, "value": selected_option}
            action.update(type=element.get("type", "static_select"),
                          selected_option=selected_option)
            if "placeholder" in element:
                action["placeholder"] = element["placeholder"]
        else:
            label = element.get("text") or {"type": "plain_text", "text": value or action_id,
                                            "emoji": True}
            action.update(text=label, value=value, type=element.get("type", "button"))
            if "style" in element:
                action["style"] = element["style"]
        action["action_ts"] = f"{time.time():.6f}"
        container = {"type": "message", "message_ts": message_ts, "channel_id": channel,
                     "is_ephemeral": False}
        if message.get("thread_ts"):
            container["thread_ts"] = message["thread_ts"]
        trigger_id = trigger_id or self._new_trigger()
        response_url = self._new_response_url("actions", channel=channel, user=user,
                                              message_ts=message_ts)
        payload = {"type": "block_actions", "user": self._user_ref(user),
                   "api_app_id": self.app_id, "token": self.verification_token,
                   "container": container, "trigger_id": trigger_id,
                   "team": {"id": self.team_id, "domain": self.team_domain},
                   "enterprise": None, "is_enterprise_install": False,
                   "channel": {"id": channel, "name": self._channel_name(channel)},
                   "message": message, "state": {"values": {}},
                   "response_url": response_url, "actions": [action]}
        response = await self.interaction(payload, age_seconds=age_seconds, signature=signature)
        response.trigger_id, response.response_url = trigger_id, response_url
        return response

    async def view_submission(self, user: str, view_id: str,
                              values: dict[str, dict[str, Any]] | None = None, *,
                              trigger_id: str | None = None,
                              age_seconds: float = 0) -> httpx.Response:
        """The agent submitted modal `view_id` (opened with views.open). `values`:
        {block_id: {action_id: "text" or a state value dict}}; text becomes a
        plain_text_input value."""
        view = self._views.get(view_id)
        if view is None:
            raise KeyError(f"no view {view_id} was opened")
        state = {block: {action: ({"type": "plain_text_input", "value": v}
                                  if isinstance(v, str) else v)
                         for action, v in actions.items()}
                 for block, actions in (values or {}).items()}
        payload = {"type": "view_submission",
                   "team": {"id": self.team_id, "domain": self.team_domain},
                   "user": self._user_ref(user), "api_app_id": self.app_id,
                   "token": self.verification_token,
                   "trigger_id": trigger_id or self._new_trigger(),
                   "view": {**view, "state": {"values": state}}, "response_urls": [],
                   "is_enterprise_install": False, "enterprise": None}
        return await self.interaction(payload, age_seconds=age_seconds)

    async def interaction(self, payload: dict[str, Any], *, age_seconds: float = 0,
                          signature: str | None = None) -> httpx.Response:
        """POST any interactivity payload (form-encoded `payload=<json>`) to
        `interactive_url`; the response carries `.payload`."""
        body = urlencode({"payload": json.dumps(payload, ensure_ascii=False)}).encode()
        response = await self._deliver(payload.get("type", "interaction"),
                                       self._target("interactive_url"), body,
                                       "application/x-www-form-urlencoded",
                                       age_seconds=age_seconds, signature=signature)
        response.payload = payload
        return response

    async def slash_command(self, user: str, channel: str, command: str, text: str = "", *,
                            trigger_id: str | None = None, age_seconds: float = 0,
                            signature: str | None = None) -> httpx.Response:
        """A slash command to `commands_url` (form-encoded like Slack's). The response
        carries `.form`, `.trigger_id` and `.response_url`."""
        trigger_id = trigger_id or self._new_trigger()
        response_url = self._new_response_url("commands", channel=channel, user=user)
        form = {"token": self.verification_token, "team_id": self.team_id,
                "team_domain": self.team_domain, "channel_id": channel,
                "channel_name": self._channel_name(channel), "user_id": user,
                "user_name": self._user_ref(user)["username"], "command": command, "text": text,
                "api_app_id": self.app_id, "is_enterprise_install": "false",
                "response_url": response_url, "trigger_id": trigger_id}
        response = await self._deliver("slash_command", self._target("commands_url"),
                                       urlencode(form).encode(),
                                       "application/x-www-form-urlencoded",
                                       age_seconds=age_seconds, signature=signature)
        response.form, response.trigger_id, response.response_url = form, trigger_id, response_url
        return response

    async def url_verification(self, challenge: str | None = None) -> httpx.Response:
        """Slack's handshake when the Events URL is saved; Bolt answers the challenge.
        The response carries `.challenge` (what it must echo)."""
        challenge = challenge or secrets.token_urlsafe(24)
        body = json.dumps({"token": self.verification_token, "challenge": challenge,
                           "type": "url_verification"}).encode()
        response = await self._deliver("url_verification", self._target("events_url"), body,
                                       "application/json")
        response.challenge = challenge
        return response

    # -- internals: state ----------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    def _check_method(self, method: str) -> None:
        if method != "upload" and method not in self._handlers:
            raise ValueError(f"the sandbox does not implement {method!r}")

    def _next_ts(self) -> str:
        self._seq += 1
        seconds, fraction = divmod(self._seq, 10_000)
        return f"{self.ts_base + seconds}.{fraction * 100:06d}"

    def _new_trigger(self) -> str:
        trigger = f"{int(time.time())}.{self.team_id[1:]}.{secrets.token_hex(16)}"
        self._triggers[trigger] = time.monotonic()
        return trigger

    def _new_response_url(self, kind: str, **context: Any) -> str:
        rid = f"{len(self._response_urls) + 1}{secrets.randbelow(10**9):09d}"
        self._response_urls[rid] = {"kind": kind, "uses": 0, "created": time.monotonic(),
                                    **context}
        return f"{self.url}/hooks/{kind}/{self.team_id}/{rid}/{secrets.token_urlsafe(18)}"

    def _user_ref(self, user: str) -> dict[str, Any]:
        name = self._users[user]["name"] if user in self._users else user.lower()
        return {"id": user, "username": name, "name": name, "team_id": self.team_id}

    def _channel_name(self, channel: str) -> str:
        known = self._channels.get(channel)
        if known is None:
            return "directmessage" if channel.startswith("D") else channel.lower()
        return "directmessage" if known["is_im"] else known.get("name", channel.lower())

    def _type_of(self, channel: str) -> str:
        known = self._channels.get(channel)
        if known is None:
            return _channel_type(channel)
        if known["is_im"]:
            return "im"
        if known["is_mpim"]:
            return "mpim"
        return "group" if known["is_private"] else "channel"

    @staticmethod
    def _block_id_of(blocks: Any, action_id: str) -> str | None:
        for block in blocks or []:
            if isinstance(block, dict) and _find_element(block, action_id) is not None:
                return block.get("block_id")
        return None

    def _ensure_channel(self, channel: str, user: str | None, channel_type: str) -> None:
        known = self._channels.get(channel)
        if known is None:
            if channel_type == "im" and user:
                self._open_im(user, channel)
            else:
                self.add_channel(channel, [user] if user else [],
                                 private=channel_type in ("group", "mpim"))
        elif user and user not in known["members"]:
            known["members"].append(user)

    def _open_im(self, user: str, channel: str | None = None) -> dict[str, Any]:
        channel = channel or self._dms.get(user) or f"D{user[1:]}"
        if channel not in self._channels:
            self._channels[channel] = {
                "id": channel, "is_channel": False, "is_group": False, "is_im": True,
                "is_mpim": False, "is_private": True, "is_archived": False,
                "created": int(time.time()), "user": user, "is_user_deleted": False,
                "members": [user, self.bot_user_id]}
        self._dms[user] = channel
        return self._channels[channel]

    def _file_object(self, fid: str) -> dict[str, Any]:
        f = self._files[fid]
        name = f["name"]
        base = f"{self.url}/files-pri/{self.team_id}-{fid}"
        obj = {"id": fid, "created": f["created"], "timestamp": f["created"], "name": name,
               "title": f["title"], "mimetype": f["mimetype"], "filetype": f["filetype"],
               "pretty_type": f["filetype"].upper(), "user": f["user"],
               "user_team": self.team_id, "editable": False, "size": f["size"],
               "mode": "hosted", "is_external": False, "external_type": "", "is_public": True,
               "public_url_shared": False, "display_as_bot": False, "username": "",
               "url_private": f"{base}/{quote(name)}",
               "url_private_download": f"{base}/download/{quote(name)}",
               "permalink": f"https://{self.team_domain}.slack.com/files/{f['user']}/{fid}/"
                            f"{quote(name)}",
               "has_rich_preview": False, "file_access": "visible"}
        if f.get("alt_txt"):
            obj["alt_txt"] = f["alt_txt"]
        if f["shares"]:
            obj["shares"] = {"public" if not self._channels[c]["is_private"] else "private":
                             {c: shares} for c, shares in f["shares"].items()}
            obj["channels"] = list(f["shares"])
        return obj

    def _store_file(self, name: str, data: bytes | None, *, user: str, mimetype: str = "",
                    title: str | None = None, length: int | None = None) -> str:
        fid = f"F{len(self._files) + 1:08d}{secrets.token_hex(1).upper()}"
        mimetype = mimetype or mimetypes.guess_type(name)[0] or "application/octet-stream"
        filetype = name.rsplit(".", 1)[1].lower() if "." in name else "binary"
        self._files[fid] = {"id": fid, "name": name, "title": title or name, "data": data,
                            "size": len(data) if data is not None else (length or 0),
                            "length": length, "mimetype": mimetype, "filetype": filetype,
                            "user": user, "created": int(time.time()), "shares": {}}
        return fid

    def _incoming_files(self, files: list[Any], user: str | None) -> list[dict[str, Any]]:
        objects = []
        for item in files:
            if isinstance(item, dict) and "data" not in item:
                objects.append(item)  # an already-shaped Slack file object
                continue
            if isinstance(item, dict):
                name, data, mime = item["name"], item["data"], item.get("mimetype", "")
            else:
                name, data, mime = item[0], item[1], item[2] if len(item) > 2 else ""
            fid = self._store_file(name, bytes(data), user=user or self.bot_user_id,
                                   mimetype=mime)
            objects.append(self._file_object(fid))
        return objects

    def _message_event(self, channel: str, user: str | None, text: str, *,
                       thread_ts: str | None, ts: str | None, files: list[Any] | None,
                       subtype: str | None, bot_id: str | None,
                       channel_type: str | None) -> dict[str, Any]:
        channel_type = channel_type or self._type_of(channel)
        self._ensure_channel(channel, user, channel_type)
        ts = ts or self._next_ts()
        if files and subtype is None:
            subtype = "file_share"
        message: dict[str, Any] = {"type": "message"}
        if subtype:
            message["subtype"] = subtype
        message["text"] = text
        if files:
            message.update(files=self._incoming_files(files, user), upload=False)
        if user:
            message["user"] = user
        if bot_id:
            message.update(bot_id=bot_id, app_id=f"A{bot_id[1:]}",
                           bot_profile={"id": bot_id, "deleted": False, "name": "otro-bot",
                                        "app_id": f"A{bot_id[1:]}", "team_id": self.team_id})
        elif user:
            message.update(client_msg_id=str(uuid.uuid4()))
        if files:
            message["display_as_bot"] = False
        message["ts"] = ts
        if text and not bot_id:
            message["blocks"] = _rich_text(text)
        message["team"] = self.team_id
        if thread_ts and thread_ts != ts:
            message["thread_ts"] = thread_ts
            parent = self._messages.get((channel, thread_ts))
            if parent is not None:
                message["parent_user_id"] = parent.get("user")
                self._add_reply(parent, thread_ts, user)
        self._messages[(channel, ts)] = message
        self._notify()
        return {**message, "channel": channel, "event_ts": ts, "channel_type": channel_type}

    @staticmethod
    def _add_reply(parent: dict[str, Any], thread_ts: str, user: str | None) -> None:
        parent["thread_ts"] = thread_ts
        parent["reply_count"] = parent.get("reply_count", 0) + 1
        if user and user not in parent.setdefault("reply_users", []):
            parent["reply_users"].append(user)

    # -- internals: deliveries ---------------------------------------------------------------

    def _target(self, attribute: str) -> str:
        if self.socket_mode:
            return "socket-mode"
        url = getattr(self, attribute) or self.events_url
        if not url:
            where = "events_url" if attribute == "events_url" else f"{attribute} (or events_url)"
            raise RuntimeError(f"set sandbox.{where} first (or call set_gateway(url))")
        return url

    @staticmethod
    def _retry_headers(retry_num: int | None, reason: str) -> dict[str, str]:
        if retry_num is None:
            return {}
        return {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": reason}

    async def _deliver(self, kind: str, url: str, body: bytes, content_type: str, *,
                       age_seconds: float = 0, signature: str | None = None,
                       headers: dict[str, str] | None = None,
                       event_id: str | None = None) -> httpx.Response:
        if self._client is None:
            raise RuntimeError("start() the Slack sandbox first")
        if self.socket_mode:
            return await self._deliver_on_socket(kind, body, content_type, event_id)
        timestamp = str(int(time.time() - age_seconds))
        all_headers = {"Content-Type": content_type, "User-Agent": SLACKBOT_UA,
                       "Accept": "*/*", TIMESTAMP_HEADER: timestamp,
                       SIGNATURE_HEADER: signature or sign(self.signing_secret, timestamp, body),
                       **(headers or {})}
        started = time.monotonic()
        response = await self._client.post(url, content=body, headers=all_headers)
        elapsed = time.monotonic() - started
        self.deliveries.append({"kind": kind, "url": url, "status": response.status_code,
                                "elapsed": elapsed, "late": elapsed > 3, "event_id": event_id,
                                "retry_num": (headers or {}).get("X-Slack-Retry-Num")})
        self._notify()
        return response

    async def _deliver_on_socket(self, kind: str, body: bytes, content_type: str,
                                 event_id: str | None) -> httpx.Response:
        """The same delivery as a Socket Mode envelope; the app's acknowledgement (with its
        `payload`, if any) comes back as a 200 response, none in time as a 408."""
        if content_type.startswith("application/json"):
            envelope_type, payload = "events_api", json.loads(body)
            if payload.get("type") == "url_verification":
                return httpx.Response(200, json={})  # not a Socket Mode thing
        elif kind == "slash_command":
            envelope_type, payload = "slash_commands", dict(parse_qsl(body.decode()))
        else:
            envelope_type = "interactive"
            payload = json.loads(dict(parse_qsl(body.decode()))["payload"])
        if not self._sockets:
            raise RuntimeError("Socket Mode: the app has no open connection")
        envelope_id = str(uuid.uuid4())
        acked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = acked
        started = time.monotonic()
        await self._sockets[-1].send_json({
            "envelope_id": envelope_id, "type": envelope_type, "payload": payload,
            "accepts_response_payload": envelope_type != "events_api",
            "retry_attempt": 0, "retry_reason": ""})
        try:
            answer = await asyncio.wait_for(acked, self.delivery_timeout)
            response = httpx.Response(200, json=answer.get("payload") or {})
        except TimeoutError:
            response = httpx.Response(408)
        finally:
            self._acks.pop(envelope_id, None)
        self.deliveries.append({"kind": kind, "url": "socket-mode", "status":
                                response.status_code, "elapsed": time.monotonic() - started,
                                "late": False, "event_id": event_id, "retry_num": None})
        self._notify()
        return response

    async def _connections_open(self, p: _P) -> dict[str, Any]:
        return {"url": f"ws://{self.host}:{self.port}/socket-mode?ticket={uuid.uuid4()}"}

    async def _socket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"type": "hello", "num_connections": len(self._sockets) + 1,
                                   "debug_info": {"host": "sandbox"},
                                   "connection_info": {"app_id": self.app_id}})
        self._sockets.append(websocket)
        try:
            while True:
                message = await websocket.receive_json()
                future = self._acks.get(str(message.get("envelope_id")))
                if future is not None and not future.done():
                    future.set_result(message)
        except (WebSocketDisconnect, ValueError, KeyError):
            pass
        finally:
            self._sockets.remove(websocket)

    # -- internals: HTTP -----------------------------------------------------------------------

    async def _read_args(self, request: Request) -> tuple[_P, str | None]:
        args: _P = dict(request.query_params)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            body = await request.body()
            obj = json.loads(body) if body.strip() else {}
            if not isinstance(obj, dict):
                raise ValueError("a JSON body must be an object")
            args.update(obj)
        elif ctype.startswith("multipart/form-data"):
            async with request.form() as form:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        args[key] = {"filename": value.filename, "data": await value.read()}
                    else:
                        args[key] = value
        else:
            args.update(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        token = args.pop("token", None)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        for key in _JSON_ARGS & args.keys():
            if isinstance(args[key], str) and args[key].strip()[:1] in ("[", "{"):
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(args[key])
        return args, token

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        try:
            args, token = await self._read_args(request)
        except (ValueError, UnicodeDecodeError):
            self.calls.append({"method": method})
            return _error("invalid_form_data")
        self.calls.append({"method": method, **args})
        self._notify()
        if method not in self._handlers:
            return _error("unknown_method", req_method=method)
        if not token:
            return _error("not_authed")
        expected = self.app_token if method == "apps.connections.open" else self.bot_token
        if not hmac.compare_digest(token, expected):
            return _error("invalid_auth")
        if self._delays[method]:
            await asyncio.sleep(self._delays[method].popleft())
        if self._fails[method]:
            error, status, retry_after = self._fails[method].popleft()
            return _error(error, status, retry_after)
        try:
            result = await self._handlers[method](args)
        except SlackError as exc:
            return _error(exc.error, exc.status, exc.retry_after, **exc.extra)
        self._notify()
        return JSONResponse({"ok": True, **result})

    async def _upload(self, request: Request) -> Response:
        """The upload URL of files.getUploadURLExternal: raw bytes or a multipart file."""
        if self._delays["upload"]:
            await asyncio.sleep(self._delays["upload"].popleft())
        if self._fails["upload"]:
            error, status, _ = self._fails["upload"].popleft()
            return PlainTextResponse(error, status_code=status if status != 200 else 500)
        f = self._files.get(request.path_params["file_id"])
        if f is None or f.get("completed"):
            return PlainTextResponse("Not Found", status_code=404)
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form() as form:
                uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
                data = await uploads[0].read() if uploads else b""
        else:
            data = await request.body()
        f.update(data=data, size=len(data))
        self._notify()
        return PlainTextResponse(f"OK - {len(data)}")

    async def _download(self, request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.bot_token}".encode()):
            return Response(status_code=302, headers={"Location": f"{self.url}/sandbox/login"})
        fid = request.path_params["owner"].rsplit("-", 1)[-1]
        f = self._files.get(fid)
        if f is None or f["data"] is None:
            return PlainTextResponse("File not found", status_code=404)
        return Response(f["data"], media_type=f["mimetype"])

    async def _login_page(self, request: Request) -> Response:
        return HTMLResponse(f"<!DOCTYPE html><html><head><title>Slack</title></head><body>"
                            f"<h1>Sign in to {self.team_name}</h1></body></html>")

    async def _respond(self, request: Request) -> Response:
        """A response_url: records what Bolt's `respond()` posts (JSON)."""
        hook = self._response_urls.get(request.path_params["rid"])
        if hook is None or time.monotonic() - hook["created"] > 1800:
            return PlainTextResponse("expired_url", status_code=404)
        if hook["uses"] >= RESPONSE_URL_USES:
            return PlainTextResponse("used_url", status_code=404)
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("invalid_payload", status_code=400)
        if not isinstance(body, dict):
            return PlainTextResponse("invalid_payload", status_code=400)
        hook["uses"] += 1
        entry = {"kind": hook["kind"], "channel": hook.get("channel"), "user": hook.get("user"),
                 "message_ts": hook.get("message_ts"), "text": body.get("text"),
                 "blocks": body.get("blocks"), "response_type": body.get("response_type"),
                 "replace_original": _flag(body.get("replace_original")),
                 "delete_original": _flag(body.get("delete_original")), "body": body}
        key = (hook.get("channel"), hook.get("message_ts"))
        if key in self._messages and entry["delete_original"]:
            del self._messages[key]
        elif key in self._messages and entry["replace_original"]:
            self._messages[key] = {**self._messages[key], "text": body.get("text", ""),
                                   "blocks": body.get("blocks") or []}
        self.responses.append(entry)
        self._notify()
        return PlainTextResponse("ok")

    # -- internals: standalone control routes ------------------------------------------------

    _ACTIONS = frozenset({"message", "forged", "message_changed", "message_deleted",
                          "app_mention", "block_action", "slash_command", "view_submission",
                          "url_verification", "resend", "event"})
    _SETTERS = frozenset({"add_channel", "add_user", "fail", "delay", "set_gateway"})
    _RECORDS = frozenset({"calls", "posted", "updated", "deleted", "reactions", "ephemerals",
                          "views", "uploads", "responses", "deliveries"})

    async def _control_act(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self._ACTIONS | self._SETTERS:
            return _error("unknown_action", 404)
        try:
            args = await request.json() if (await request.body()).strip() else {}
            if not isinstance(args, dict):
                raise TypeError("send a JSON object of arguments")
            if name in self._SETTERS:
                getattr(self, name)(**args)
                return JSONResponse({"ok": True})
            response = await getattr(self, name)(**args)
        except (TypeError, KeyError, ValueError, RuntimeError) as exc:
            return _error("invalid_arguments", 400, detail=str(exc))
        except httpx.HTTPError as exc:
            return _error("delivery_failed", 502, detail=f"{type(exc).__name__}: {exc}")
        return JSONResponse({"ok": True, "status": response.status_code, "body": response.text,
                             "event_id": getattr(response, "event_id", None),
                             "ts": getattr(response, "ts", None)})

    async def _control_read(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self._RECORDS:
            return _error("unknown_record", 404)
        return JSONResponse({"ok": True, name: _plain(getattr(self, name))})

    # -- the Web API methods -----------------------------------------------------------------

    def _resolve(self, ref: Any, *, post: bool = True) -> dict[str, Any]:
        """The channel named by `ref` (an id, "#name", or a user id for the DM); with `post`
        the bot must be a member."""
        ref = str(ref or "").strip()
        if not ref:
            raise SlackError("channel_not_found")
        channel = self._channels.get(ref)
        if channel is None and ref.startswith("#"):
            channel = next((c for c in self._channels.values() if c.get("name") == ref[1:]),
                           None)
        if channel is None and ref in self._users and not self._users[ref]["is_bot"]:
            channel = self._open_im(ref)
        if channel is None:
            raise SlackError("channel_not_found")
        if post and self.bot_user_id not in channel["members"]:
            raise SlackError("channel_not_found" if channel["is_private"] else "not_in_channel")
        return channel

    def _message(self, channel: str, ts: Any) -> dict[str, Any]:
        message = self._messages.get((channel, str(ts or "")))
        if message is None:
            raise SlackError("message_not_found")
        return message

    async def _auth_test(self, p: _P) -> dict[str, Any]:
        return {"url": f"https://{self.team_domain}.slack.com/", "team": self.team_name,
                "user": self.bot_name, "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False}

    def _bot_message(self, text: str, blocks: list[dict[str, Any]] | None, ts: str,
                     p: _P) -> dict[str, Any]:
        message: dict[str, Any] = {
            "user": self.bot_user_id, "type": "message", "ts": ts, "bot_id": self.bot_id,
            "app_id": self.app_id, "text": text, "team": self.team_id,
            "bot_profile": {"id": self.bot_id, "app_id": self.app_id, "name": self.bot_name,
                            "icons": {"image_48": "https://avatars.slack-edge.com/bot_48.png"},
                            "deleted": False, "updated": int(time.time()),
                            "team_id": self.team_id}}
        if blocks:
            message["blocks"] = blocks
        for key in ("attachments", "metadata"):
            if p.get(key):
                message[key] = p[key]
        return message

    def _text_and_blocks(self, p: _P) -> tuple[str, list[dict[str, Any]] | None]:
        blocks = _check_blocks(p.get("blocks"))
        text = p.get("text")
        text = "" if text is None else str(text)
        if not text.strip() and not blocks and not p.get("attachments"):
            raise SlackError("no_text")
        return text[:TEXT_LIMIT], blocks

    async def _post_message(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"))
        text, blocks = self._text_and_blocks(p)
        ts = self._next_ts()
        message = self._bot_message(text, blocks, ts, p)
        thread_ts = str(p["thread_ts"]) if p.get("thread_ts") else None
        broadcast = _flag(p.get("reply_broadcast")) and thread_ts is not None
        if thread_ts:
            message["thread_ts"] = thread_ts
            parent = self._messages.get((channel["id"], thread_ts))
            if parent is not None:
                message["parent_user_id"] = parent.get("user")
                self._add_reply(parent, thread_ts, self.bot_user_id)
            if broadcast:
                message["subtype"] = "thread_broadcast"
        self._messages[(channel["id"], ts)] = message
        self.posted.append({"channel": channel["id"], "text": text, "blocks": blocks,
                            "thread_ts": thread_ts, "ts": ts, "reply_broadcast": broadcast,
                            "unfurl_links": p.get("unfurl_links"),
                            "unfurl_media": p.get("unfurl_media"), "mrkdwn": p.get("mrkdwn"),
                            "args": p})
        return {"channel": channel["id"], "ts": ts, "message": message}

    async def _chat_update(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"))
        message = self._message(channel["id"], p.get("ts"))
        if message.get("bot_id") != self.bot_id:
            raise SlackError("cant_update_message")
        text, blocks = self._text_and_blocks(p)
        changed = {**message, "text": text,
                   "edited": {"user": self.bot_user_id, "ts": self._next_ts()}}
        if blocks is not None:
            changed["blocks"] = blocks
        self._messages[(channel["id"], message["ts"])] = changed
        self.updated.append({"channel": channel["id"], "ts": message["ts"], "text": text,
                             "blocks": blocks, "args": p})
        return {"channel": channel["id"], "ts": message["ts"], "text": text, "message": changed}

    async def _post_ephemeral(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"))
        user = str(p.get("user") or "")
        if user not in self._users:
            raise SlackError("user_not_found")
        if user not in channel["members"]:
            raise SlackError("user_not_in_channel")
        text, blocks = self._text_and_blocks(p)
        ts = self._next_ts()
        self.ephemerals.append({"channel": channel["id"], "user": user, "text": text,
                                "blocks": blocks, "thread_ts": p.get("thread_ts"),
                                "message_ts": ts, "args": p})
        return {"message_ts": ts}

    async def _chat_delete(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"))
        message = self._message(channel["id"], p.get("ts"))
        if message.get("bot_id") != self.bot_id:
            raise SlackError("cant_delete_message")
        del self._messages[(channel["id"], message["ts"])]
        self.deleted.append({"channel": channel["id"], "ts": message["ts"]})
        return {"channel": channel["id"], "ts": message["ts"]}

    async def _get_permalink(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"), post=False)
        message = self._message(channel["id"], p.get("message_ts"))
        link = (f"https://{self.team_domain}.slack.com/archives/{channel['id']}/"
                f"p{message['ts'].replace('.', '')}")
        return {"channel": channel["id"], "permalink": link}

    async def _reactions_add(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"), post=False)
        message = self._message(channel["id"], p.get("timestamp"))
        name = str(p.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        reactions = message.setdefault("reactions", [])
        reaction = next((r for r in reactions if r["name"] == name), None)
        if reaction is None:
            reaction = {"name": name, "users": [], "count": 0}
            reactions.append(reaction)
        if self.bot_user_id in reaction["users"]:
            raise SlackError("already_reacted")
        reaction["users"].append(self.bot_user_id)
        reaction["count"] += 1
        self.reactions.append({"channel": channel["id"], "timestamp": message["ts"],
                               "name": name})
        return {}

    async def _reactions_remove(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"), post=False)
        message = self._message(channel["id"], p.get("timestamp"))
        name = str(p.get("name") or "").strip(":")
        for reaction in message.get("reactions", []):
            if reaction["name"] == name and self.bot_user_id in reaction["users"]:
                reaction["users"].remove(self.bot_user_id)
                reaction["count"] -= 1
                self.reactions.append({"channel": channel["id"], "timestamp": message["ts"],
                                       "name": name, "removed": True})
                return {}
        raise SlackError("no_reaction")

    async def _conversations_members(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"), post=False)
        if channel["is_private"] and self.bot_user_id not in channel["members"]:
            raise SlackError("channel_not_found")
        limit = min(max(_int(p.get("limit"), 100), 1), 1000)
        offset = 0
        if p.get("cursor"):
            try:
                offset = int(base64.b64decode(p["cursor"]).decode().split(":", 1)[1])
            except (ValueError, IndexError):
                raise SlackError("invalid_cursor") from None
        members = channel["members"][offset:offset + limit]
        more = offset + limit < len(channel["members"])
        cursor = base64.b64encode(f"offset:{offset + limit}".encode()).decode() if more else ""
        return {"members": members, "response_metadata": {"next_cursor": cursor}}

    async def _conversations_open(self, p: _P) -> dict[str, Any]:
        if p.get("channel"):
            channel = self._resolve(p["channel"], post=False)
            return {"no_op": True, "already_open": True, "channel": {"id": channel["id"]}}
        users = p.get("users") or ""
        users = [u.strip() for u in (users.split(",") if isinstance(users, str) else users)
                 if u.strip()]
        if not users:
            raise SlackError("users_list_not_supplied")
        if len(users) > 8:
            raise SlackError("too_many_users")
        for user in users:
            if user not in self._users:
                raise SlackError("user_not_found")
        if len(users) == 1:
            already = users[0] in self._dms
            channel = self._open_im(users[0])
        else:
            mpim_id = "G" + hashlib.sha1(",".join(sorted(users)).encode(),
                                         usedforsecurity=False).hexdigest()[:9].upper()
            already = mpim_id in self._channels
            channel = self.add_channel(mpim_id, users, name="mpdm-" + "--".join(users) + "-1",
                                       private=True)
            channel.update(is_mpim=True, is_group=False)
        found = {"id": channel["id"]}
        if _flag(p.get("return_im")):
            found = {k: v for k, v in channel.items() if k != "members"}
        return {"no_op": already, "already_open": already, "channel": found}

    async def _conversations_info(self, p: _P) -> dict[str, Any]:
        channel = self._resolve(p.get("channel"), post=False)
        if channel["is_private"] and self.bot_user_id not in channel["members"]:
            raise SlackError("channel_not_found")
        info = {k: v for k, v in channel.items() if k != "members"}
        info["is_member"] = self.bot_user_id in channel["members"]
        if _flag(p.get("include_num_members")):
            info["num_members"] = len(channel["members"])
        return {"channel": info}

    async def _users_info(self, p: _P) -> dict[str, Any]:
        user = self._users.get(str(p.get("user") or ""))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    async def _lookup_by_email(self, p: _P) -> dict[str, Any]:
        email = str(p.get("email") or "").lower()
        for user in self._users.values():
            if email and user["profile"].get("email", "").lower() == email:
                return {"user": user}
        raise SlackError("users_not_found")

    def _exchange_trigger(self, trigger_id: Any) -> None:
        if trigger_id not in self._triggers:
            raise SlackError("invalid_trigger_id")
        issued = self._triggers[trigger_id]
        if issued is None:
            raise SlackError("exchanged_trigger_id")
        if time.monotonic() - issued > self.trigger_ttl:
            raise SlackError("expired_trigger_id")
        self._triggers[trigger_id] = None

    def _check_view(self, view: Any) -> dict[str, Any]:
        if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
            raise SlackError("invalid_arguments")
        if view["type"] == "modal" and not view.get("title"):
            raise SlackError("invalid_arguments")
        if len(view.get("blocks") or []) > 100:
            raise SlackError("invalid_arguments")
        return view

    async def _views_open(self, p: _P) -> dict[str, Any]:
        view = self._check_view(p.get("view"))
        self._exchange_trigger(p.get("trigger_id"))
        view_id = f"V{len(self._views) + 1:08d}"
        opened = {"id": view_id, "team_id": self.team_id, "type": view["type"],
                  "blocks": view.get("blocks", []), "private_metadata": "", "callback_id": "",
                  "state": {"values": {}}, "hash": f"{time.time():.0f}.{secrets.token_hex(4)}",
                  "title": None, "clear_on_close": False, "notify_on_close": False,
                  "close": None, "submit": None, "previous_view_id": None,
                  "root_view_id": view_id, "app_id": self.app_id, "external_id": "",
                  "app_installed_team_id": self.team_id, "bot_id": self.bot_id}
        opened.update({k: v for k, v in view.items() if k in opened})
        self._views[view_id] = opened
        self.views.append({"method": "views.open", "id": view_id, "view": view,
                           "trigger_id": p.get("trigger_id")})
        return {"view": opened}

    async def _views_update(self, p: _P) -> dict[str, Any]:
        view = self._check_view(p.get("view"))
        if p.get("view_id"):
            current = self._views.get(str(p["view_id"]))
        else:
            external = p.get("external_id")
            current = next((v for v in self._views.values()
                            if external and v.get("external_id") == external), None)
        if current is None:
            raise SlackError("not_found")
        if p.get("hash") and p["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        updated = {**current, **{k: v for k, v in view.items() if k in current},
                   "hash": f"{time.time():.0f}.{secrets.token_hex(4)}"}
        self._views[current["id"]] = updated
        self.views.append({"method": "views.update", "id": current["id"], "view": view,
                           "hash": p.get("hash")})
        return {"view": updated}

    async def _get_upload_url(self, p: _P) -> dict[str, Any]:
        filename = str(p.get("filename") or "")
        length = _int(p.get("length"), 0)
        if not filename or length <= 0:
            raise SlackError("invalid_arguments")
        fid = self._store_file(filename, None, user=self.bot_user_id, length=length)
        if p.get("alt_txt"):
            self._files[fid]["alt_txt"] = p["alt_txt"]
        return {"upload_url": f"{self.url}/upload/v1/{fid}", "file_id": fid}

    async def _complete_upload(self, p: _P) -> dict[str, Any]:
        items = p.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments")
        targets = [str(p["channel_id"])] if p.get("channel_id") else []
        if p.get("channels"):
            targets += [c.strip() for c in str(p["channels"]).split(",") if c.strip()]
        channels = [self._resolve(c) for c in targets]
        fids = []
        for item in items:
            f = self._files.get(str(item.get("id") if isinstance(item, dict) else ""))
            if f is None or f["data"] is None or f.get("completed"):
                raise SlackError("file_not_found")
            if item.get("title"):
                f["title"] = item["title"]
            fids.append(f["id"])
        thread_ts = str(p["thread_ts"]) if p.get("thread_ts") else None
        comment = str(p.get("initial_comment") or "")
        for channel in channels:
            ts = self._next_ts()
            share = {"ts": ts, "channel_name": channel.get("name", ""),
                     "team_id": self.team_id, "share_user_id": self.bot_user_id}
            if thread_ts:
                share["thread_ts"] = thread_ts
            for fid in fids:
                self._files[fid]["shares"][channel["id"]] = [share]
            message = self._bot_message(comment, None, ts, p)
            message.update(subtype="file_share", upload=True,
                           files=[self._file_object(fid) for fid in fids])
            if thread_ts:
                message["thread_ts"] = thread_ts
            self._messages[(channel["id"], ts)] = message
        for fid in fids:
            f = self._files[fid]
            f["completed"] = True
            self.uploads.append({"file_id": fid, "filename": f["name"], "title": f["title"],
                                 "bytes": f["data"], "length": f["length"],
                                 "channel": channels[0]["id"] if channels else None,
                                 "channels": [c["id"] for c in channels],
                                 "thread_ts": thread_ts, "initial_comment": comment or None})
        return {"files": [self._file_object(fid) for fid in fids]}

    async def _files_info(self, p: _P) -> dict[str, Any]:
        fid = str(p.get("file") or "")
        if fid not in self._files or not self._files[fid].get("completed", True):
            raise SlackError("file_not_found")
        return {"file": self._file_object(fid), "comments": [],
                "response_metadata": {"next_cursor": ""}}

    async def _files_upload_v1(self, p: _P) -> dict[str, Any]:
        raise SlackError("method_deprecated")  # retired by Slack: use files_upload_v2


async def _serve_forever(args: argparse.Namespace) -> None:
    sandbox = SlackSandbox(bot_token=args.token, signing_secret=args.signing_secret,
                           host=args.host, port=args.port)
    for channel in args.channel:
        sandbox.add_channel(channel, [])
    if args.gateway:
        sandbox.set_gateway(args.gateway)
    await sandbox.start()
    gateway = sandbox.events_url or "(not set: POST /sandbox/set_gateway {\"url\": ...})"
    print(f"Slack sandbox on {sandbox.url}\n  api_url         {sandbox.api_url}\n"
          f"  bot token       {sandbox.bot_token}\n  signing secret  {sandbox.signing_secret}\n"
          f"  gateway         {gateway}\n"
          f"  a customer:     curl -d '{{\"channel\": \"C0AGENTS\", \"user\": \"U0AGENT\", "
          f"\"text\": \"Hola\"}}' {sandbox.url}/sandbox/message\nCtrl-C stops.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Slack (Web API + event delivery).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", default="xoxb-test")
    parser.add_argument("--signing-secret", default="test-signing-secret")
    parser.add_argument("--gateway", default=None,
                        help="the gateway's Bolt endpoint, e.g. http://127.0.0.1:8000/slack/events")
    parser.add_argument("--channel", action="append", default=[],
                        help="a channel id the bot is a member of (repeatable)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))


if __name__ == "__main__":
    main()
