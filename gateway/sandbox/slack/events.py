"""Slack's deliveries to the gateway, signed like Slack signs them: Events API callbacks
(messages, mentions, edits, deletions, url_verification) and the signed POST every delivery
is (or, with `socket_mode`, the envelope it becomes: see socket_mode).

Example:
    >>> sign("secret", "1700000000", b"{}")[:3]
    'v0='
    >>> sandbox.set_gateway("http://127.0.0.1:8000/slack/events")     # doctest: +SKIP
    >>> r = await sandbox.message("C0AGENTS", "U0ANA", "Hola")          # doctest: +SKIP
    >>> await sandbox.resend(r.event_id, retry_num=1)  # Slack's retry  # doctest: +SKIP
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
import uuid
from typing import Any

import httpx

from gateway.sandbox.slack.wire import _rich_text
from gateway.sandbox.slack.workspace import Workspace

SIGNATURE_HEADER = "X-Slack-Signature"
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SLACKBOT_UA = "Slackbot 1.0 (+https://api.slack.com/robots)"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: `v0=` + hex HMAC-SHA256 over `v0:{timestamp}:{body}`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class EventsApi(Workspace):
    """Events API deliveries, and the signed delivery of everything Slack sends (a mixin of
    `SlackSandbox`)."""

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

    async def post(self, body: bytes, *, content_type: str = "application/json",
                   signed: bool = True, age_seconds: float = 0,
                   signature: str | None = None) -> httpx.Response:
        """Any bytes POSTed to `events_url`, as a forger or a broken Slack would send them:
        signed like Slack (`signed`), with a given `signature`, or with no signature
        headers at all (`signed=False`). The delivery is recorded with kind "raw"."""
        if self._client is None or self.socket_mode:
            raise RuntimeError("post() needs a started sandbox delivering over HTTP")
        if signed or signature is not None:
            return await self._deliver("raw", self._target("events_url"), body, content_type,
                                       age_seconds=age_seconds, signature=signature)
        url = self._target("events_url")
        response = await self._client.post(url, content=body, headers={
            "Content-Type": content_type, "User-Agent": SLACKBOT_UA})
        self.deliveries.append({"kind": "raw", "url": url, "status": response.status_code,
                                "elapsed": 0.0, "late": False, "event_id": None,
                                "retry_num": None})
        self._notify()
        return response

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

    # -- delivery ------------------------------------------------------------------------------

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
