"""Interactivity: block actions, modal submissions and slash commands delivered to the
gateway, the trigger_ids they carry, and the response_urls the app answers on.

Example:
    >>> r = await sandbox.block_action("U0ANA", "C0AGENTS", ts, "take", "T-42")  # doctest: +SKIP
    >>> await http.post(r.response_url, json={"text": "Tomado"})        # doctest: +SKIP
    >>> sandbox.responses[-1]["text"]                                   # doctest: +SKIP
    'Tomado'
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway.sandbox.slack.wire import RESPONSE_URL_USES, _find_element, _flag
from gateway.sandbox.slack.workspace import Workspace


class Interactivity(Workspace):
    """Interactivity payloads, slash commands and response_urls (a mixin of
    `SlackSandbox`)."""

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

    # -- trigger_ids and response_urls ---------------------------------------------------------

    def _new_trigger(self) -> str:
        trigger = f"{int(time.time())}.{self.team_id[1:]}.{secrets.token_hex(16)}"
        self._triggers[trigger] = time.monotonic()
        return trigger

    def _new_response_url(self, kind: str, **context: Any) -> str:
        rid = f"{len(self._response_urls) + 1}{secrets.randbelow(10**9):09d}"
        self._response_urls[rid] = {"kind": kind, "uses": 0, "created": time.monotonic(),
                                    **context}
        return f"{self.url}/hooks/{kind}/{self.team_id}/{rid}/{secrets.token_urlsafe(18)}"

    @staticmethod
    def _block_id_of(blocks: Any, action_id: str) -> str | None:
        for block in blocks or []:
            if isinstance(block, dict) and _find_element(block, action_id) is not None:
                return block.get("block_id")
        return None

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
