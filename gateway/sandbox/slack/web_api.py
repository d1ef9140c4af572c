"""The Web API methods slack-sdk's `AsyncWebClient` calls (chat.*, reactions.*,
conversations.*, users.*, views.*, auth.test), and their dispatch: arguments read from JSON,
the query string, a form or multipart; the token checked; scheduled faults applied.

Example:
    >>> client = AsyncWebClient(token="xoxb-test", base_url=sandbox.api_url)  # doctest: +SKIP
    >>> await client.chat_postMessage(channel="C0AGENTS", text="Nuevo ticket")  # doctest: +SKIP
    >>> sandbox.posted[-1]["text"]                                      # doctest: +SKIP
    'Nuevo ticket'
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.sandbox.slack.wire import (
    _JSON_ARGS,
    _P,
    TEXT_LIMIT,
    SlackError,
    _check_blocks,
    _error,
    _flag,
    _int,
)
from gateway.sandbox.slack.workspace import Workspace


class WebApi(Workspace):
    """The Web API but files.* and apps.connections.open (a mixin of `SlackSandbox`)."""

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

    # -- channels and messages -----------------------------------------------------------------

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

    # -- the methods ---------------------------------------------------------------------------

    async def _auth_test(self, p: _P) -> dict[str, Any]:
        return {"url": f"https://{self.team_domain}.slack.com/", "team": self.team_name,
                "user": self.bot_name, "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False}

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

    # -- views ---------------------------------------------------------------------------------

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
