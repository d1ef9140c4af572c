"""Slack: the agents' console, and a channel customers can write on (DMs to the bot).

A converter, nothing more: Slack's events become `Inbound` messages (a customer's DM, a
survey button) or typed agents' commands (a reply in a ticket's thread, a button on its
card, `/ticket …`, an edit or a deletion inside the undo window), handed to the gateway;
the core's views (cards, prompts, forms) and messages are drawn as Block Kit. Who may
do what, which room a ticket goes to, the undo window and every word shown are the
core's (`gateway.desk`).

Built on slack-bolt's AsyncApp (HTTP Events API through the gateway's HTTP app, or
Socket Mode). Every HTTP request passes `door.SlackDoor` first: no valid, fresh signature →
401 before anything is parsed; signed but not what Slack sends → 400. An event that lacks
what its handler needs (a message without channel or ts) is logged and ignored. Events
are handled before Bolt answers (`process_before_response`), so Slack retries anything
that was not stored, and retries are no-ops (the gateway's dedup on "<channel>:<ts>").

Example:
    >>> adapter = SlackAdapter.from_settings(load_settings())        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from typing import Any, ClassVar

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks
from adapters.slack.door import SlackDoor
from adapters.slack.settings import SlackSettings
from gateway.core.adapter import Capabilities, Port
from gateway.core.clock import Clock, SystemClock
from gateway.core.commands import (
    Actor,
    Claim,
    CommandResult,
    EditTemplate,
    Reply,
    Resolve,
    Retract,
    Revise,
    SetPriority,
    Typed,
    Withdraw,
)
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
)
from gateway.core.views import CLAIM, MAKE_NOTE, PRIORITY, RESOLVE, UNDO
from gateway.settings import Settings, SettingsError, channel_settings

log = logging.getLogger("centralita.slack")

PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "user_not_found",
             "cannot_dm_bot", "user_disabled", "msg_too_long", "invalid_blocks",
             "no_text", "invalid_auth", "account_inactive", "token_revoked"}
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
SURVEY_ACTION = re.compile(f"^survey_score_({'|'.join(SURVEY_SCORES)})$")  # a button per score
MEMBERS_TTL = 300  # seconds the agents' rooms' membership is cached
NUMBER = re.compile(r"[1-9][0-9]{0,8}")  # a ticket number or an outbox row in a button


class SlackAdapter:
    """The console and the Slack customer channel (see the module docstring)."""

    channel = "slack"
    capabilities: ClassVar[Capabilities] = Capabilities(subjects=False, buttons=True)

    def __init__(self, settings: SlackSettings, *, rooms: set[str],
                 clock: Clock | None = None) -> None:
        token = settings.token()
        if not token:
            raise SettingsError(f"channels.slack.bot_token: no bot token (set it, or the "
                                f"environment variable {settings.bot_token_env})")
        if settings.mode == "http" and not settings.secret():
            raise SettingsError("channels.slack.signing_secret: required in HTTP mode (or "
                                f"the environment variable {settings.signing_secret_env})")
        if settings.mode == "socket" and not settings.socket_token():
            raise SettingsError("channels.slack.app_token: Socket Mode needs an app token "
                                f"(xapp-…, or the variable {settings.app_token_env})")
        self.settings = settings
        self.rooms = rooms  # the agents' rooms: whose members it reports, whose threads it reads
        self.clock = clock or SystemClock()
        self.client = AsyncWebClient(token=token, base_url=settings.base_url)
        self.app = AsyncApp(client=self.client, signing_secret=settings.secret() or "unused",
                            process_before_response=True,
                            request_verification_enabled=settings.mode == "http")
        self.handler = AsyncSlackRequestHandler(self.app)
        self.port: Port | None = None
        self._dms: dict[str, str] = {}                     # user id → DM channel id
        # (when fetched, by self.clock.monotonic(); room → members): never fetched yet,
        # whatever the clock says — monotonic time counts from boot, so 0.0 would look
        # fresh for five minutes after boot
        self._members: tuple[float, dict[str, set[str]]] = (-math.inf, {})
        self._names: dict[str, str] = {}
        self._socket: Any = None
        self._listen()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> SlackAdapter:
        slack = channel_settings(settings, "slack", SlackSettings)
        if not settings.agents.channel:
            raise SettingsError("agents.channel: the default agents' channel id (C…) is "
                                "needed when [channels.slack] is on")
        return cls(slack, rooms=settings.agents.rooms(), clock=clock)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, port: Port) -> None:
        self.port = port
        if self.settings.mode == "socket":
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            self._socket = AsyncSocketModeHandler(self.app, self.settings.socket_token())
            await self._socket.connect_async()

    async def stop(self) -> None:
        if self._socket is not None:
            with contextlib.suppress(Exception):
                await self._socket.close_async()
            self._socket = None

    def routes(self) -> list[Any]:
        from starlette.routing import Route

        if self.settings.mode != "http":
            return []
        door = SlackDoor(self.settings.secret(), self.handler.handle)
        return [Route(self.settings.events_path, door.serve, methods=["POST"])]

    def _port(self) -> Port:
        assert self.port is not None, "the Slack adapter was not started"
        return self.port

    # -- who is who: facts for the core --------------------------------------------------

    async def _room_members(self) -> dict[str, set[str]]:
        stamp, members = self._members
        if self.clock.monotonic() - stamp <= MEMBERS_TTL:
            return members
        members = {}
        for room in self.rooms:
            members[room] = set()
            with contextlib.suppress(SlackApiError):
                cursor = None
                while True:
                    page = await self.client.conversations_members(channel=room,
                                                                   cursor=cursor)
                    members[room].update(page.get("members", []))
                    cursor = (page.get("response_metadata") or {}).get("next_cursor")
                    if not cursor:
                        break
        self._members = (self.clock.monotonic(), members)
        return members

    async def actor(self, user: str) -> Actor:
        """Who `user` is, as the core decides roles from: her name, the rooms she is in."""
        members = await self._room_members()
        return Actor(console="slack", address=user, name=await self.name_of(user) if user
                     else "", rooms=frozenset(r for r, who in members.items() if user in who))

    async def name_of(self, user: str) -> str:
        if user not in self._names:
            try:
                info = (await self.client.users_info(user=user))["user"]
                profile = info.get("profile") or {}
                self._names[user] = (profile.get("display_name") or info.get("real_name")
                                     or profile.get("real_name") or info.get("name") or user)
            except SlackApiError:
                return user
        return self._names[user]

    async def user_named(self, name: str) -> str | None:
        """The member of an agents' room with this name (a ticket assigned by name)."""
        wanted = name.strip().lstrip("@").casefold()
        for user in sorted(set().union(*(await self._room_members()).values())):
            if (await self.name_of(user)).casefold() == wanted:
                return user
        return None

    # -- events --------------------------------------------------------------------------

    def _listen(self) -> None:
        app = self.app
        app.event("message")(self._on_message)
        app.event("app_mention")(self._ignore)
        for action in (CLAIM, RESOLVE, PRIORITY, UNDO, MAKE_NOTE):
            app.action(action)(self._on_action)
        app.action(SURVEY_ACTION)(self._on_score)
        app.command(self.settings.command)(self._on_command)
        app.view("template_edit")(self._on_template_saved)

    async def _ignore(self, ack: Any = None) -> None:
        return None

    async def _on_message(self, event: dict[str, Any], body: dict[str, Any]) -> None:
        subtype = event.get("subtype")
        if subtype == "message_changed":
            return await self._changed(event)
        if subtype == "message_deleted":
            return await self._deleted(event)
        if event.get("bot_id") or subtype not in (None, "file_share", "thread_broadcast"):
            return None  # our own messages, other bots', joins… (no loops)
        channel, user = event.get("channel", ""), event.get("user", "")
        if not user:
            return None
        if not (channel and event.get("ts")):
            log.warning("slack: ignored a message event without channel or ts")
            return None
        if event.get("channel_type") == "im":
            if self.settings.customers and not await self._port().is_agent(
                    await self.actor(user)):
                await self._customer(event)
            return None
        if channel in self.rooms and event.get("thread_ts") and \
                event.get("thread_ts") != event.get("ts"):
            await self._thread_reply(event)
        return None

    async def _files(self, event: dict[str, Any]) -> tuple[Attachment, ...]:
        found = []
        for item in event.get("files") or []:
            data = None
            url = item.get("url_private_download") or item.get("url_private")
            if url:
                with contextlib.suppress(Exception):
                    import httpx

                    async with httpx.AsyncClient(timeout=30) as http:
                        got = await http.get(url, headers={
                            "Authorization": f"Bearer {self.client.token}"})
                        if got.status_code == 200:
                            data = got.content
            found.append(Attachment(filename=item.get("name") or "archivo",
                                    content_type=item.get("mimetype") or
                                    "application/octet-stream", data=data,
                                    size=item.get("size") if data is None else None))
        return tuple(found)

    async def _customer(self, event: dict[str, Any]) -> None:
        user, channel = event["user"], event["channel"]
        self._dms[user] = channel
        await self._port().receive(Inbound(
            channel="slack", sender=Party("customer", user, await self.name_of(user)),
            text=blocks.plain(event.get("text") or ""), external_id=f"{channel}:{event['ts']}",
            attachments=await self._files(event), thread=ThreadHint(conversation=channel)))

    async def _on_score(self, ack: Any, body: dict[str, Any], action: dict[str, Any],
                        respond: Any) -> None:
        """A customer pressed a survey button in her DM: the score, once, on its ticket."""
        await ack()
        user = (body.get("user") or {}).get("id", "")
        number, _, score = str(action.get("value", "")).partition(":")
        channel = (body.get("container") or {}).get("channel_id", "")
        if not (NUMBER.fullmatch(number) and score in SURVEY_SCORES and user and self.port):
            log.info("slack: ignored a survey press %r", action.get("value"))
            return
        try:
            await self.port.receive(Inbound(
                channel="slack", sender=Party("customer", user, await self.name_of(user)),
                text=score, kind="score",
                external_id=f"survey:{channel}:{body.get('container', {}).get('message_ts')}",
                thread=ThreadHint(ticket_number=int(number), conversation=channel or None)))
        except InboundRejected as exc:  # not her ticket: recorded by the gateway, refused
            log.warning("slack: survey press by %s refused: %s", user, exc)
            return
        original = blocks.entities(str((body.get("message") or {}).get("text") or ""))
        with contextlib.suppress(Exception):  # the buttons go: one answer per survey
            await respond(text=f"{original}\n\n*{score}/{SURVEY_SCORES[-1]}* ✓",
                          replace_original=True)

    async def _thread_reply(self, event: dict[str, Any]) -> None:
        """A reply in an agents' room thread: for the core to decide (a ticket's thread,
        an agent, a note or an answer for the customer)."""
        channel, ts, user = event["channel"], event["ts"], event["user"]
        result = await self._port().command(Reply(
            await self.actor(user), thread=f"{channel}:{event['thread_ts']}",
            text=blocks.plain(event.get("text") or ""), ref=f"{channel}:{ts}",
            attachments=await self._files(event)))
        if result.noted:
            with contextlib.suppress(SlackApiError):
                await self.client.reactions_add(channel=channel, timestamp=ts, name="memo")
        if result.prompt is not None:
            with contextlib.suppress(SlackApiError):
                await self.client.chat_postEphemeral(
                    channel=channel, user=user, thread_ts=event["thread_ts"],
                    text=blocks.escape(result.prompt.text), blocks=blocks.prompt(result.prompt))

    async def _changed(self, event: dict[str, Any]) -> None:
        message = event.get("message") or {}
        if not (event.get("channel") and message.get("ts")):
            log.warning("slack: ignored an edit without channel or the message's ts")
            return
        await self._port().command(Revise(
            await self.actor(message.get("user", "")),
            ref=f"{event.get('channel')}:{message.get('ts')}",
            text=blocks.plain(message.get("text") or "")))

    async def _deleted(self, event: dict[str, Any]) -> None:
        if not (event.get("channel") and event.get("deleted_ts")):
            log.warning("slack: ignored a deletion without channel or deleted_ts")
            return
        author = (event.get("previous_message") or {}).get("user", "")
        actor = await self.actor(author) if author else Actor("slack", "", "slack")
        await self._port().command(Retract(
            actor, ref=f"{event.get('channel')}:{event.get('deleted_ts')}"))

    # -- buttons and /ticket -------------------------------------------------------------

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any],
                         respond: Any) -> None:
        await ack()
        actor = await self.actor((body.get("user") or {}).get("id", ""))
        name = action["action_id"]
        value = str(action.get("value") or (action.get("selected_option") or {}).get("value")
                    or "")
        number, _, priority = value.partition(":")
        if not NUMBER.fullmatch(number):  # not a value of ours: a forged press
            log.warning("slack: ignored %s with value %r", name, value[:50])
            return
        if name in (UNDO, MAKE_NOTE):
            result = await self._port().command(Withdraw(
                actor, int(number), as_note=name == MAKE_NOTE))
            await respond(text=result.text, replace_original=True)
            return
        if name == PRIORITY:
            command: Any = SetPriority(actor, int(number), priority)
        else:
            command = (Claim if name == CLAIM else Resolve)(actor, int(number))
        result = await self._port().command(command)
        if not result.ok and result.text:  # done: the card shows it; refused: say why
            await respond(text=result.text, replace_original=False)

    async def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        actor = await self.actor(command.get("user_id", ""))
        text, people = command.get("text") or "", {}
        for user in USER_MENTION.findall(text):  # with "escape users" on: <@U0LAURA|laura>
            people[user] = await self.name_of(user)
        text = USER_MENTION.sub(lambda m: f"@{m.group(1)}", text)
        trigger = command.get("trigger_id") or str(self.clock.now().timestamp())
        result = await self._port().command(Typed(actor, text, ref=trigger, people=people,
                                                  command=self.settings.command))
        if result.form is not None:
            with contextlib.suppress(SlackApiError):
                await self.client.views_open(trigger_id=command.get("trigger_id", ""),
                                             view=blocks.modal(result.form))
        await self._answer(respond, result)

    @staticmethod
    async def _answer(respond: Any, result: CommandResult) -> None:
        if result.prompt is not None:
            await respond(text=blocks.escape(result.prompt.text),
                          blocks=blocks.prompt(result.prompt))
        elif result.text:
            await respond(blocks.escape(result.text))

    async def _on_template_saved(self, ack: Any, body: dict[str, Any],
                                 view: dict[str, Any]) -> None:
        values = (view.get("state") or {}).get("values", {})

        def value(block: str) -> str:
            return str(((values.get(block) or {}).get("value") or {}).get("value") or "")

        result = await self._port().command(EditTemplate(
            await self.actor((body.get("user") or {}).get("id", "")),
            ref=str(view.get("private_metadata", "")), subject=value("subject"),
            body=value("body")))
        if result.ok:
            await ack()
        else:
            await ack(response_action="errors",
                      errors=dict(result.errors) or {"body": result.text[:150]})

    # -- sending -------------------------------------------------------------------------

    async def send(self, message: Outbound) -> Receipt:
        try:
            if message.audience == "agents":
                return await self._to_console(message)
            return await self._to_customer(message)
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response else ""
            status = exc.response.status_code if exc.response else 0
            if status == 429:
                retry = float((exc.response.headers or {}).get("Retry-After", 1))
                raise TransientError("Slack rate limit", retry_after=retry) from exc
            if error in PERMANENT:
                raise PermanentError(f"Slack refused: {error}") from exc
            raise TransientError(f"Slack error: {error or exc}") from exc
        except (TimeoutError, OSError) as exc:
            raise TransientError(f"Slack unreachable: {exc}") from exc

    async def _to_console(self, message: Outbound) -> Receipt:
        shown = message.agents
        thread = shown.thread if shown else None
        if shown is not None and shown.card is not None:
            text, card = blocks.card(shown.card)
            if thread:  # redraw it where it is
                channel, _, ts = thread.partition(":")
                await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=card)
                return Receipt(platform_id=thread)
            posted = await self.client.chat_postMessage(channel=message.recipient, text=text,
                                                        blocks=card, unfurl_links=False)
            return Receipt(platform_id=f"{message.recipient}:{posted['ts']}")
        channel, _, ts = (thread or message.recipient).partition(":")
        posted = await self.client.chat_postMessage(
            channel=channel, thread_ts=ts or None, text=await self._console_text(message),
            unfurl_links=False, reply_broadcast=bool(ts and shown and shown.broadcast))
        return Receipt(platform_id=f"{channel}:{posted['ts']}")

    async def _console_text(self, message: Outbound) -> str:
        shown, text = message.agents, blocks.escape(message.text)
        if shown is None:
            return text
        if shown.quote:
            text = ">" + text.replace("\n", "\n>")
        if shown.heading:
            text = (f"*{blocks.escape(shown.heading)}*\n" if shown.quote else
                    f"_{blocks.escape(shown.heading)}_\n") + text
        if shown.mention is not None and (
                user := shown.mention.address or await self.user_named(shown.mention.name)):
            text = f"<@{user}> {text}"  # notified, not only named
        return text

    async def _to_customer(self, message: Outbound) -> Receipt:
        user = message.recipient
        if user not in self._dms:
            opened = await self.client.conversations_open(users=user)
            self._dms[user] = opened["channel"]["id"]
        channel = self._dms[user]
        text = blocks.entities(message.text)  # her own DM: the agent's formatting stays
        posted = await self.client.chat_postMessage(
            channel=channel, text=text, unfurl_links=False,
            blocks=blocks.survey(text, message.survey.ticket_number)
            if message.survey is not None else None)
        return Receipt(platform_id=f"{channel}:{posted['ts']}")
