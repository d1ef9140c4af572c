"""Slack: the agents' console, and a channel customers can write on (DMs to the bot).

Built on slack-bolt's AsyncApp (HTTP Events API through the gateway's HTTP app, or
Socket Mode). Bolt checks every HTTP request's signature and age (401 otherwise); events
are handled before Bolt answers (`process_before_response`), so Slack retries anything
that was not stored, and retries are no-ops (the gateway's dedup on "<channel>:<ts>").

The console:
- a new ticket posts a card (Block Kit) to its agents' channel, chosen by routes; the
  card's thread is the ticket's conversation (customer messages and automatic answers are
  copied in by the gateway);
- an agent's reply in the thread goes to the customer on her own channel, held for the
  undo window with an ephemeral "Undo / Make it a note" prompt; editing the Slack message
  inside the window changes what is sent, deleting it cancels it; a reply starting with
  the note prefix stays an internal note (confirmed with a 📝 reaction);
- Claim, Resolve and Priority on the card; `/ticket status|resolve|reopen|assign|priority|
  note|find`; only members of the agents' channels (or `agent_group`) act as agents.

Example:
    >>> adapter = SlackAdapter.from_settings(load_settings())        # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Collection
from datetime import timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks
from adapters.slack.settings import SlackSettings
from gateway.core.adapter import Sink
from gateway.core.clock import Clock, SystemClock
from gateway.core.messages import (
    SURVEY_SCORES,
    Attachment,
    Inbound,
    Outbound,
    Party,
    PermanentError,
    Receipt,
    ThreadHint,
    TransientError,
)
from gateway.desk import notices, tickets
from gateway.pipeline.receive import InboundRejected
from gateway.settings import Settings, SettingsError, channel_settings
from gateway.store.models import ChannelState
from gateway.store.state import load_state, save_state
from gateway.texts import versions as template_versions
from gateway.texts.engine import TemplateEngine

log = logging.getLogger("centralita.slack")

PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "user_not_found",
             "cannot_dm_bot", "user_disabled", "msg_too_long", "invalid_blocks",
             "no_text", "invalid_auth", "account_inactive", "token_revoked"}
MENTION_KINDS = frozenset({"sla_warning"})  # notices that @mention the assignee
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
SURVEY_ACTION = re.compile(f"^survey_score_({'|'.join(SURVEY_SCORES)})$")  # a button per score
CARD_VERBS = frozenset({"resolve", "reopen", "pending", "assign", "priority"})
HELD_FOR = timedelta(hours=1)  # how long an agent's reply is remembered for edits
MEMBERS_TTL = 300  # seconds the agents' channel membership is cached


class SlackAdapter:
    """The console and the Slack customer channel (see the module docstring)."""

    channel = "slack"
    subjects: ClassVar[bool] = False  # messages have no subject (gateway.adapter.shows_subject)

    def __init__(self, settings: SlackSettings, *, agents_channel: str, note_prefix: str = "//",
                 undo_seconds: int = 10, timezone: str = "UTC", clock: Clock | None = None,
                 replies: Collection[str] = ()) -> None:
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
        self.agents_channel = agents_channel
        self.note_prefix = note_prefix
        self.undo_seconds = undo_seconds
        self.replies = sorted(replies)  # names of the canned replies ([replies])
        self.tz = ZoneInfo(timezone)
        self.clock = clock or SystemClock()
        self.client = AsyncWebClient(token=token, base_url=settings.base_url)
        self.app = AsyncApp(client=self.client, signing_secret=settings.secret() or "unused",
                            process_before_response=True,
                            request_verification_enabled=settings.mode == "http")
        self.handler = AsyncSlackRequestHandler(self.app)
        self.templates = TemplateEngine(timezone=timezone)  # validation of Slack edits
        self.sink: Sink | None = None
        self._threads: dict[int, str] = {}                 # ticket number → "C…:ts"
        self._held: dict[str, tuple[int, str, int]] = {}   # "C…:ts" → (outbox id, text, №)
        self._dms: dict[str, str] = {}                     # user id → DM channel id
        # (when fetched, by self.clock.monotonic(); who): never fetched yet, whatever the
        # clock says — monotonic time counts from boot, so 0.0 would look fresh for 5 min
        self._members: tuple[float, set[str]] = (-math.inf, set())
        self._names: dict[str, str] = {}
        self._socket: Any = None
        self._listen()

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None) -> SlackAdapter:
        slack = channel_settings(settings, "slack", SlackSettings)
        if not settings.agents.channel:
            raise SettingsError("agents.channel: the default agents' channel id (C…) is "
                                "needed when [channels.slack] is on")
        return cls(slack, agents_channel=settings.agents.channel,
                   note_prefix=settings.agents.note_prefix,
                   undo_seconds=settings.agents.undo_seconds,
                   timezone=settings.hours.timezone, clock=clock,
                   replies=settings.replies)

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, sink: Sink) -> None:
        self.sink = sink
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
        return [Route(self.settings.events_path, self.handler.handle, methods=["POST"])]

    # -- who is who ----------------------------------------------------------------------

    def agents_channels(self) -> set[str]:
        return {self.agents_channel, *self.settings.routes.values()}

    async def is_agent(self, user: str) -> bool:
        if user in self.settings.agent_group:
            return True
        stamp, members = self._members
        if self.clock.monotonic() - stamp > MEMBERS_TTL:
            members = set()
            for channel in self.agents_channels():
                with contextlib.suppress(SlackApiError):
                    cursor = None
                    while True:
                        page = await self.client.conversations_members(channel=channel,
                                                                       cursor=cursor)
                        members.update(page.get("members", []))
                        cursor = (page.get("response_metadata") or {}).get("next_cursor")
                        if not cursor:
                            break
            self._members = (self.clock.monotonic(), members)
        return user in members

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
        """The Slack user an agent's name stands for: a mention ("<@U0PEDRO|pedro>", as
        older tickets may keep it) or, failing that, the first agent with that name."""
        if found := USER_MENTION.fullmatch(name.strip()):
            return found.group(1)
        wanted = name.strip().lstrip("@").casefold()
        await self.is_agent("")  # refreshes the agents' channel membership when stale
        for user in sorted(self._members[1]):
            if (await self.name_of(user)).casefold() == wanted:
                return user
        return None

    async def assignee_id(self, number: int | None, name: str) -> str | None:
        """The Slack user a ticket is assigned to. The ticket keeps her name (what every
        page and text shows); who that is, when she claimed it or was assigned with an
        @mention here, is kept in the channel's state, so that two agents with the same
        name are told apart. An assignee set elsewhere is found by name."""
        if number is not None:
            known = await load_state("slack", f"assignee:{number}")
            if known.get("name") == name:
                return str(known["user"])
        return await self.user_named(name)

    async def _assigned(self, number: int, user: str, name: str) -> None:
        await save_state("slack", f"assignee:{number}", {"user": user, "name": name},
                         self.clock.now())

    # -- events --------------------------------------------------------------------------

    def _listen(self) -> None:
        app = self.app
        app.event("message")(self._on_message)
        app.event("app_mention")(self._ignore)
        for action in ("claim", "resolve", "priority", "undo", "make_note"):
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
        if event.get("channel_type") == "im":
            if self.settings.customers and not await self.is_agent(user):
                await self._customer(event)
            return None
        if channel in self.agents_channels() and event.get("thread_ts") and \
                event.get("thread_ts") != event.get("ts") and await self.is_agent(user):
            await self._agent_reply(event)
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
        assert self.sink is not None
        user, channel = event["user"], event["channel"]
        self._dms[user] = channel
        await self.sink(Inbound(
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
        if not (number.isdigit() and score in SURVEY_SCORES and user and self.sink):
            log.info("slack: ignored a survey press %r", action.get("value"))
            return
        try:
            await self.sink(Inbound(
                channel="slack", sender=Party("customer", user, await self.name_of(user)),
                text=score, kind="score",
                external_id=f"survey:{channel}:{body.get('container', {}).get('message_ts')}",
                thread=ThreadHint(ticket_number=int(number), conversation=channel or None)))
        except InboundRejected as exc:  # not her ticket: recorded by the gateway, refused
            log.warning("slack: survey press by %s refused: %s", user, exc)
            return
        original = blocks.escape(str((body.get("message") or {}).get("text") or ""))
        with contextlib.suppress(Exception):  # the buttons go: one answer per survey
            await respond(text=f"{original}\n\n*{score}/{SURVEY_SCORES[-1]}* ✓",
                          replace_original=True)

    async def _agent_reply(self, event: dict[str, Any]) -> None:
        assert self.sink is not None
        channel, ts, user = event["channel"], event["ts"], event["user"]
        text = blocks.plain(event.get("text") or "")
        note = text.lstrip().startswith(self.note_prefix)
        if note:
            text = text.lstrip()[len(self.note_prefix):].lstrip()
        try:
            accepted = await self.sink(Inbound(
                channel="slack", sender=Party("agent", user, await self.name_of(user)),
                text=text, external_id=f"{channel}:{ts}", internal=note,
                attachments=await self._files(event),
                thread=ThreadHint(conversation=f"{channel}:{event['thread_ts']}")))
        except InboundRejected:
            return  # a thread that is not a ticket's
        if getattr(accepted, "duplicate", False):
            return
        to_customer = [o for o in accepted.outbound if o.audience == "customer"]
        if not to_customer:
            with contextlib.suppress(SlackApiError):
                await self.client.reactions_add(channel=channel, timestamp=ts, name="memo")
            return
        reply = to_customer[0]
        if reply.outbox_id is not None and self.undo_seconds:
            await self._hold(f"{channel}:{ts}", reply.outbox_id, text, accepted.ticket_number)
            with contextlib.suppress(SlackApiError):
                await self.client.chat_postEphemeral(
                    channel=channel, user=user, thread_ts=event["thread_ts"],
                    text=f"Se enviará al cliente en {self.undo_seconds} s",
                    blocks=blocks.undo_prompt(reply.outbox_id, self.undo_seconds))

    async def _hold(self, ref: str, outbox_id: int, text: str, number: int | None) -> None:
        """Remember which reply an agent's Slack message is waiting to send, so that an
        edit or a deletion inside the undo window reaches it, also after a restart."""
        self._held[ref] = (outbox_id, text, number or 0)
        now = self.clock.now()
        await save_state("slack", f"held:{ref}", {"outbox": outbox_id, "text": text,
                                                  "ticket": number or 0}, now)
        await ChannelState.filter(channel="slack", key__startswith="held:",
                                  updated_at__lt=now - HELD_FOR).delete()

    async def _held_reply(self, ref: str) -> tuple[int, str, int] | None:
        if ref not in self._held:
            state = await load_state("slack", f"held:{ref}")
            if not state:
                return None
            self._held[ref] = (state["outbox"], state["text"], state["ticket"])
        return self._held[ref]

    async def _changed(self, event: dict[str, Any]) -> None:
        message = event.get("message") or {}
        key = f"{event.get('channel')}:{message.get('ts')}"
        if (held := await self._held_reply(key)) is None:
            return
        outbox_id, old, number = held
        new = blocks.plain(message.get("text") or "")
        agent = await self.name_of(message.get("user", ""))
        if await tickets.revise(outbox_id, old, new, agent, self.clock.now()):
            await self._hold(key, outbox_id, new, number)
        else:
            await tickets.record_late_change(number, agent, "edited", new, self.clock.now())

    async def _deleted(self, event: dict[str, Any]) -> None:
        key = f"{event.get('channel')}:{event.get('deleted_ts')}"
        if (held := await self._held_reply(key)) is None:
            return
        self._held.pop(key, None)
        outbox_id, old, number = held
        if not await tickets.withdraw(outbox_id, "slack", self.clock.now(), as_note=False):
            await tickets.record_late_change(number, "slack", "deleted", old, self.clock.now())

    # -- buttons and /ticket -------------------------------------------------------------

    async def _on_action(self, ack: Any, body: dict[str, Any], action: dict[str, Any],
                         respond: Any) -> None:
        await ack()
        user = (body.get("user") or {}).get("id", "")
        if not await self.is_agent(user):
            await respond(text="Solo los agentes pueden hacer esto.", replace_original=False)
            return
        agent, now = await self.name_of(user), self.clock.now()
        name = action["action_id"]
        if name in ("undo", "make_note"):
            done = await tickets.withdraw(int(action["value"]), agent, now,
                                          as_note=name == "make_note")
            await respond(text=("Cancelado: no se envió." if name == "undo" else
                                "Guardado como nota interna; no se envió.") if done else
                          "Demasiado tarde: ya se envió al cliente.", replace_original=True)
            return
        if name == "priority":
            number, priority = action["selected_option"]["value"].split(":")
            ticket = await tickets.set_priority(int(number), agent, priority, now)
        elif name == "claim":
            ticket = await tickets.claim(int(action["value"]), agent, now)
            await self._assigned(ticket.number, user, agent)
        else:
            ticket = await tickets.resolve(int(action["value"]), agent, now)
        container = body.get("container") or {}
        await self.redraw(ticket.number, container.get("channel_id"),
                          container.get("message_ts"))

    async def redraw_card(self, number: int) -> None:
        """Redraw a ticket's card wherever it was posted (after a /ticket command)."""
        ref = await tickets.console_thread(number) or self._threads.get(number)
        if ref:
            channel, _, ts = ref.partition(":")
            await self.redraw(number, channel, ts)

    async def redraw(self, number: int, channel: str | None, ts: str | None) -> None:
        """Update a ticket's card in place (status, claimed by, priority)."""
        if not channel or not ts:
            return
        text, card = blocks.card(await tickets.card(number), self.tz)
        with contextlib.suppress(SlackApiError):
            await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=card)

    async def _on_command(self, ack: Any, command: dict[str, Any], respond: Any) -> None:
        await ack()
        user = command.get("user_id", "")
        if not await self.is_agent(user):
            await respond("Solo los agentes del canal de soporte pueden usar este comando.")
            return
        words = (command.get("text") or "").split()
        usage = (f"Uso: {self.settings.command} status|resolve|reopen|pending N · "
                 "assign N @persona · priority N alta|normal|baja|urgente · note N texto · "
                 "reply N respuesta · remind N 15:00 · find texto")
        if not words:
            await respond(usage)
            return
        verb, rest = words[0].lower(), words[1:]
        agent, now = await self.name_of(user), self.clock.now()
        try:
            if verb == "find":
                await respond(await self._find(" ".join(rest)))
                return
            if verb == "template":
                await respond(await self._open_template(user, rest,
                                                        command.get("trigger_id", "")))
                return
            if not rest or not rest[0].lstrip("#").isdigit():
                await respond(usage)
                return
            number = int(rest[0].lstrip("#"))
            if verb == "status":
                info = await tickets.card(number)
                await respond(blocks.card(info, self.tz)[0])
            elif verb == "resolve":
                await respond(f"#{(await tickets.resolve(number, agent, now)).number} resuelto.")
            elif verb == "reopen":
                await respond(f"#{(await tickets.reopen(number, agent, now)).number} reabierto.")
            elif verb == "pending":
                await tickets.set_pending(number, agent, now)
                await respond(f"#{number} queda esperando al cliente.")
            elif verb == "remind" and len(rest) > 1:
                when = await tickets.remind(number, agent, rest[1], now, self.tz)
                await respond(f"#{number}: el cliente recibirá una actualización "
                              f"{when.astimezone(self.tz):%d/%m %H:%M}.")
            elif verb == "assign" and len(rest) > 1:
                # With "escape users" on, Slack sends @laura as <@U0LAURA|laura>: the
                # ticket keeps her name (customers' texts may show it), never the markup.
                mention = USER_MENTION.fullmatch(rest[1])
                who = await self.name_of(mention.group(1)) if mention else rest[1].lstrip("@")
                await tickets.assign(number, agent, who, now)
                if mention:
                    await self._assigned(number, mention.group(1), who)
                await respond(f"#{number} asignado a {who}.")
            elif verb == "priority" and len(rest) > 1:
                wanted = {v: k for k, v in blocks.PRIORITY.items()}.get(rest[1], rest[1])
                await tickets.set_priority(number, agent, wanted, now)
                await respond(f"#{number}: prioridad {rest[1]}.")
            elif verb == "reply":
                await self._canned(number, rest[1] if len(rest) > 1 else "", user, agent,
                                   command.get("trigger_id") or str(now.timestamp()), respond)
            elif verb == "note" and len(rest) > 1:
                assert self.sink is not None
                await self.sink(Inbound(
                    channel="slack", sender=Party("agent", user, agent),
                    text=" ".join(rest[1:]), internal=True,
                    external_id=f"command:{command.get('trigger_id', now.timestamp())}",
                    thread=ThreadHint(ticket_number=number)))
                await respond(f"Nota guardada en #{number}.")
            else:
                await respond(usage)
                return
            if verb in CARD_VERBS:
                await self.redraw_card(number)
        except tickets.TicketActionError as exc:
            await respond(str(exc))

    async def _canned(self, number: int, name: str, user: str, agent: str, trigger: str,
                      respond: Any) -> None:
        """`/ticket reply N name`: the canned reply goes to the customer as the agent's
        own answer (signed, threaded, with the undo window), and into the card's thread."""
        if name not in self.replies:
            known = ", ".join(self.replies) or "ninguna todavía (se agregan en [replies] " \
                "de settings.toml)"
            await respond(f"Respuestas guardadas: {known}. Uso: {self.settings.command} "
                          "reply N nombre")
            return
        assert self.sink is not None
        accepted = await self.sink(Inbound(
            channel="slack", sender=Party("agent", user, agent), text=name, kind="canned",
            external_id=f"command:{trigger}", thread=ThreadHint(ticket_number=number)))
        sent = [o for o in getattr(accepted, "outbound", ()) if o.audience == "customer"]
        if not sent:
            await respond(f"#{number}: no se envió (¿el ticket está cerrado?).")
            return
        reply = sent[0]
        thread = await tickets.console_thread(number)
        if thread:  # what was said is part of the conversation the card's thread shows
            channel, _, ts = thread.partition(":")
            with contextlib.suppress(SlackApiError):
                await self.client.chat_postMessage(
                    channel=channel, thread_ts=ts, unfurl_links=False,
                    text=f"_{blocks.escape(agent)} envió la respuesta «{name}»:_\n"
                         + blocks.escape(reply.text))
        if reply.outbox_id is not None and self.undo_seconds:
            await respond(text=f"#{number}: «{name}» se enviará en {self.undo_seconds} s",
                          blocks=blocks.undo_prompt(reply.outbox_id, self.undo_seconds))
        else:
            await respond(f"#{number}: «{name}» enviada al cliente.")

    async def _open_template(self, user: str, words: list[str], trigger_id: str) -> str:
        """`/ticket template ack es [telegram]`: the text in a modal, for admins."""
        if user not in self.settings.admins:
            return "Solo los administradores (channels.slack.admins) pueden editar textos."
        known = self.templates.keys()
        if len(words) < 2 or words[0] not in known or words[1] not in ("es", "en"):
            return (f"Uso: {self.settings.command} template CLAVE es|en [canal]; claves: "
                    + ", ".join(self.templates.keys()))
        key, locale = words[0], words[1]
        channel = words[2] if len(words) > 2 else ""
        subject, body = await template_versions.current_text(self.templates, key, locale,
                                                             channel)
        await self.client.views_open(trigger_id=trigger_id, view={
            "type": "modal", "callback_id": "template_edit",
            "private_metadata": f"{key}|{locale}|{channel}",
            "title": {"type": "plain_text", "text": f"{key} · {locale}"[:24]},
            "submit": {"type": "plain_text", "text": "Guardar"},
            "blocks": [
                {"type": "input", "block_id": "subject", "optional": True,
                 "label": {"type": "plain_text", "text": "Asunto"},
                 "element": {"type": "plain_text_input", "action_id": "value",
                             "initial_value": subject[:3000]}},
                {"type": "input", "block_id": "body",
                 "label": {"type": "plain_text", "text": "Texto"},
                 "element": {"type": "plain_text_input", "action_id": "value",
                             "multiline": True, "initial_value": body[:3000]}}]})
        return f"Editando {key} ({locale})…"

    async def _on_template_saved(self, ack: Any, body: dict[str, Any],
                                 view: dict[str, Any]) -> None:
        from gateway.texts.engine import TemplateError

        user = (body.get("user") or {}).get("id", "")
        if user not in self.settings.admins:
            await ack(response_action="errors", errors={"body": "Solo administradores."})
            return
        key, locale, channel = view.get("private_metadata", "||").split("|")
        values = (view.get("state") or {}).get("values", {})
        subject = ((values.get("subject") or {}).get("value") or {}).get("value") or ""
        text = ((values.get("body") or {}).get("value") or {}).get("value") or ""
        try:
            await template_versions.save_version(
                self.templates, key, locale, channel, subject, text,
                author=f"{await self.name_of(user)} (Slack)", now=self.clock.now())
        except TemplateError as exc:
            await ack(response_action="errors", errors={"body": str(exc)[:150]})
            return
        await ack()

    async def _find(self, text: str) -> str:
        found = await tickets.find(text)
        if not found:
            return f"Nada encontrado para «{text}»."
        return "\n".join(f"#{t['number']} · {t['channel']} · {blocks.STATUS.get(t['status'])}"
                         f" · {blocks.escape(t['subject'])}" for t in found)

    # -- sending -------------------------------------------------------------------------

    def _route(self, out: Outbound) -> str:
        extra = out.extra
        for tag in extra.get("tags") or []:
            if f"tag:{tag}" in self.settings.routes:
                return self.settings.routes[f"tag:{tag}"]
        channel, mailbox = extra.get("customer_channel", ""), extra.get("mailbox", "")
        return (self.settings.routes.get(f"{channel}:{mailbox}")
                or self.settings.routes.get(channel) or self.agents_channel)

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
        number = message.ticket_number
        thread = message.extra.get("console_thread") or (
            self._threads.get(number) if number is not None else None)
        if message.kind == notices.CARD_UPDATE:
            if thread and number is not None:  # (a card not posted yet will be current)
                channel, _, ts = thread.partition(":")
                info = await tickets.card(number)
                text, card = blocks.card(info, self.tz)
                await self.client.chat_update(channel=channel, ts=ts, text=text, blocks=card)
                if info["ticket"].status == "closed":  # no more warnings to @mention for
                    await ChannelState.filter(channel="slack",
                                              key=f"assignee:{number}").delete()
            return Receipt(platform_id=thread)
        if message.kind == "new_ticket" and not thread and number is not None:
            text, card = blocks.card(await tickets.card(number), self.tz)
            channel = self._route(message)
            posted = await self.client.chat_postMessage(channel=channel, text=text,
                                                        blocks=card, unfurl_links=False)
            ref = f"{channel}:{posted['ts']}"
            self._threads[number] = ref
            return Receipt(platform_id=ref)
        if number is not None and not thread:
            raise TransientError(f"the card of ticket #{number} is not posted yet")
        if thread:
            channel, _, ts = thread.partition(":")
            text = self._console_text(message)
            who = message.extra.get("assignee") if message.kind in MENTION_KINDS else None
            if who and (user := await self.assignee_id(number, str(who))):  # notified
                text = f"<@{user}> {text}"
            posted = await self.client.chat_postMessage(
                channel=channel, thread_ts=ts, text=text, unfurl_links=False,
                reply_broadcast=message.kind in ("new_ticket", "delivery_failed"))
            return Receipt(platform_id=f"{channel}:{posted['ts']}")
        posted = await self.client.chat_postMessage(channel=self.agents_channel,
                                                    text=blocks.escape(message.text))
        return Receipt(platform_id=f"{self.agents_channel}:{posted['ts']}")

    def _console_text(self, message: Outbound) -> str:
        text = blocks.escape(message.text)
        if message.kind == "mirror":
            who = message.extra.get("from")
            name = blocks.escape(str(message.extra.get("name", "")))
            if who == "customer":
                return f"*{name}* escribió:\n>" + text.replace("\n", "\n>")
            return f"_Enviado automáticamente ({name}):_\n" + text
        if message.kind == "delivery_failed":
            return ":warning: " + text
        return text

    async def _to_customer(self, message: Outbound) -> Receipt:
        user = message.recipient
        if user not in self._dms:
            opened = await self.client.conversations_open(users=user)
            self._dms[user] = opened["channel"]["id"]
        channel = self._dms[user]
        text = blocks.escape(message.text)
        survey = message.kind == "survey" and message.ticket_number is not None
        posted = await self.client.chat_postMessage(
            channel=channel, text=text, unfurl_links=False,
            blocks=blocks.survey(text, message.ticket_number) if survey else None)
        return Receipt(platform_id=f"{channel}:{posted['ts']}")
