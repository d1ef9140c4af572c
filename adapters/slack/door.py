"""The door of `/slack/events`: every request is checked before slack-bolt reads it.

slack-bolt parses a body before it verifies the signature, so an unsigned `{` used to be
a 500. Here, in order:

1. the signature: the timestamp and signature headers must be there, the timestamp a
   number within five minutes, the body UTF-8 and the HMAC right (slack-sdk's
   `SignatureVerifier`, the check Bolt itself makes) — else 401, before any parsing;
2. the shape: a signed body must be what Slack sends — a JSON object with a `type` (a
   handshake with its challenge, an event callback with its event), an interactivity form
   with a JSON object as `payload`, or a slash command form — and the fields the console
   reads must have the types Slack gives them; else 400;
3. only then Bolt, which checks the signature again and runs the listeners.

Refusals are logged: a 401 as info (anyone on the internet can knock), a 400 as a
warning (Slack, or someone with its secret, sent something odd); never the body.

Example:
    >>> malformed('{"type": "url_verification"}', "application/json")
    'a url_verification without its challenge'
    >>> malformed('{"type": "event_callback", "event": {"type": "message", "text": 1}}',
    ...           "application/json")
    'event.text is not a string'
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from slack_sdk.signature import SignatureVerifier
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = ["SlackDoor", "malformed"]

log = logging.getLogger("centralita.slack")

TIMESTAMP = re.compile(r"[0-9]{1,12}")
_MESSAGE: dict[str, Any] = {"type": str, "subtype": str, "user": str, "text": str, "ts": str,
                            "thread_ts": str, "bot_id": str, "channel": str}
_EVENT: dict[str, Any] = {**_MESSAGE, "channel_type": str, "deleted_ts": str, "event_ts": str,
                          "files": [{"name": str, "mimetype": str, "url_private": str,
                                     "url_private_download": str, "size": int}],
                          "message": _MESSAGE, "previous_message": _MESSAGE}
_ENVELOPE: dict[str, Any] = {
    "type": str, "challenge": str, "token": str, "team_id": str, "api_app_id": str,
    "enterprise_id": str, "event_id": str, "event": _EVENT,
    "authorizations": [{"team_id": str, "user_id": str, "enterprise_id": str}]}
_PAYLOAD: dict[str, Any] = {
    "type": str, "trigger_id": str, "response_url": str, "user": {"id": str, "team_id": str},
    "team": {"id": str}, "enterprise": {"id": str}, "channel": {"id": str},
    "container": {"channel_id": str, "message_ts": str}, "message": _MESSAGE,
    "actions": [{"action_id": str, "block_id": str, "value": str,
                 "selected_option": {"value": str}}],
    "view": {"id": str, "callback_id": str, "private_metadata": str,
             "state": {"values": {"*": {"*": {"value": str}}}}}}


def malformed(body: str, content_type: str) -> str | None:
    """Why a (signed) body is not something Slack sends, or None when it is."""
    if not body.strip():
        return "an empty body"
    if content_type == "application/json" or body.lstrip().startswith("{"):
        try:
            envelope = json.loads(body)
        except (ValueError, RecursionError):
            return "not JSON"
        return _envelope_problem(envelope)
    form = dict(parse_qsl(body, keep_blank_values=True))
    if "payload" in form:
        try:
            payload = json.loads(form["payload"])
        except (ValueError, RecursionError):
            return "a payload that is not JSON"
        return _payload_problem(payload)
    if not form.get("command"):
        return "a form that is neither a payload nor a slash command"
    return None


def _envelope_problem(envelope: object) -> str | None:
    if not isinstance(envelope, dict) or not isinstance(envelope.get("type"), str):
        return "not a JSON object with a type"
    if envelope["type"] == "url_verification" and not (
            isinstance(envelope.get("challenge"), str) and envelope["challenge"]):
        return "a url_verification without its challenge"
    if envelope["type"] == "event_callback" and not (
            isinstance(envelope.get("event"), dict) and isinstance(envelope["event"].get("type"),
                                                                   str)):
        return "an event_callback without an event"
    return _problem(envelope, _ENVELOPE, "")


def _payload_problem(payload: object) -> str | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("type"), str):
        return "a payload that is not a JSON object with a type"
    if payload["type"] == "block_actions" and not payload.get("actions"):
        return "a block_actions payload without actions"
    return _problem(payload, _PAYLOAD, "")


def _problem(value: object, spec: Any, path: str) -> str | None:
    """How `value` departs from `spec` (a type, [spec] for a list, {key: spec} for an
    object, "*" for every key); null and absent fields are always allowed."""
    if value is None:
        return None
    if isinstance(spec, type):
        return None if isinstance(value, spec) else f"{path} is not {_NAMES[spec]}"
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{path} is not a list"
        return next((p for i, item in enumerate(value)
                     if (p := _problem(item, spec[0], f"{path}[{i}]"))), None)
    if not isinstance(value, dict):
        return f"{path} is not an object"
    for key, inner in spec.items():
        keys = list(value) if key == "*" else [key] if key in value else []
        for name in keys:
            if problem := _problem(value[name], inner, f"{path}.{name}".lstrip(".")):
                return problem
    return None


_NAMES = {str: "a string", int: "a number", dict: "an object"}


class SlackDoor:
    """The route of `/slack/events` (`serve`): signature, then shape, then `handle`
    (Bolt's)."""

    def __init__(self, secret: str, handle: Callable[[Request], Awaitable[Response]]) -> None:
        self.verifier = SignatureVerifier(secret)
        self.handle = handle

    async def serve(self, request: Request) -> Response:
        """The route's endpoint."""
        body = await request.body()
        if reason := self._unsigned(request, body):
            log.info("slack: refused a request from %s with 401: %s",
                        request.client.host if request.client else "?", reason)
            return JSONResponse({"error": "invalid request"}, status_code=401)
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if problem := malformed(body.decode("utf-8"), content_type):
            log.warning("slack: refused a signed request of %d bytes with 400: %s",
                        len(body), problem)
            return JSONResponse({"error": "malformed request", "detail": problem},
                                status_code=400)
        return await self.handle(request)

    def _unsigned(self, request: Request, body: bytes) -> str | None:
        """Why the request is not one Slack signed, or None when it is."""
        timestamp = request.headers.get("x-slack-request-timestamp")
        signature = request.headers.get("x-slack-signature")
        if not timestamp or not signature:
            return "no signature headers"
        if not TIMESTAMP.fullmatch(timestamp):
            return "a signature timestamp that is not a number"
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return "a body that is not UTF-8 (Slack signs only UTF-8)"
        if not self.verifier.is_valid(text, timestamp, signature):
            return "a wrong or expired signature"
        return None
