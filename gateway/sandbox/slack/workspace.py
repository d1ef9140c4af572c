"""The workspace `SlackSandbox` plays: its members, channels, DMs and messages, and the
state and helpers every part of the sandbox shares.

Example:
    >>> workspace = Workspace()
    >>> workspace.add_channel("C0AGENTS", ["U0ANA"])["members"]
    ['U0ANA', 'U0BOT']
    >>> workspace._next_ts() == f"{workspace.ts_base}.000100"
    True
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from typing import Any

import httpx
from starlette.websockets import WebSocket

from gateway.sandbox.slack.wire import TRIGGER_TTL, _channel_type, _Handler
from gateway.web.http import QuietServer


class Workspace:
    """Members, channels and messages, the records of what the app did, and the scheduled
    faults (the mixins of `SlackSandbox` build on it)."""

    _handlers: dict[str, _Handler]  # the Web API methods by name: set by SlackSandbox

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
        self.add_user(bot_user_id, "Centralita", is_bot=True, name=self.bot_name)

    # -- members and channels ------------------------------------------------------------------

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

    # -- shared helpers ------------------------------------------------------------------------

    def _notify(self) -> None:
        self._changed.set()

    def _next_ts(self) -> str:
        self._seq += 1
        seconds, fraction = divmod(self._seq, 10_000)
        return f"{self.ts_base + seconds}.{fraction * 100:06d}"

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

    @staticmethod
    def _add_reply(parent: dict[str, Any], thread_ts: str, user: str | None) -> None:
        parent["thread_ts"] = thread_ts
        parent["reply_count"] = parent.get("reply_count", 0) + 1
        if user and user not in parent.setdefault("reply_users", []):
            parent["reply_users"].append(user)
