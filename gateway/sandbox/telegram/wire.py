"""The Bot API wire format as PTB speaks it: parameter decoding, error answers, the limits.

Example:
    >>> _decode("chat_id", "42"), _decode("text", "42")
    (42, '42')
    >>> _checked_text({"text": "<b>Hola</b>", "parse_mode": "HTML"}, "too long")
    ('<b>Hola</b>', 'Hola')
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from starlette.responses import JSONResponse

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_TEXT_LIMIT = 200
CALLBACK_DATA_LIMIT = 64
DOWNLOAD_LIMIT = 20 * 1024 * 1024
UPLOAD_LIMIT = 50 * 1024 * 1024
PHOTO_UPLOAD_LIMIT = 10 * 1024 * 1024
# PTB sends these as plain strings; every other value arrives JSON-encoded.
_STRING_PARAMS = frozenset({
    "text", "caption", "parse_mode", "url", "secret_token", "callback_query_id", "file_id",
    "inline_message_id", "photo", "document", "voice", "ip_address", "action",
})
_STATUS_TEXT = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
                409: "Conflict", 413: "Request Entity Too Large", 500: "Internal Server Error",
                502: "Bad Gateway"}
_P = dict[str, Any]  # decoded request parameters, or uploaded files by field


class ApiError(Exception):
    """An error answer: raised by the method handlers, turned into `{"ok": false, ...}`."""

    def __init__(self, status: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.retry_after = status, description, retry_after


def _error(status: int, description: str, retry_after: int | None = None) -> JSONResponse:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return JSONResponse(body, status_code=status)


def _decode(name: str, value: str) -> Any:
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int(value: Any, default: int | None = None, name: str = "value") -> int:
    if value is None or value == "":
        if default is None:
            raise ApiError(400, f"Bad Request: {name} is empty")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: invalid {name} specified") from None


def _visible(text: str, parse_mode: Any) -> str:
    """The text after entity parsing (HTML only; Markdown is counted as written)."""
    if isinstance(parse_mode, str) and parse_mode.upper() == "HTML":
        return html.unescape(re.sub(r"<[^>]*>", "", text))
    return text


def _reply_to(p: dict[str, Any]) -> int | None:
    params = p.get("reply_parameters")
    if isinstance(params, dict) and params.get("message_id") is not None:
        return _int(params["message_id"], name="reply message id")
    if p.get("reply_to_message_id") not in (None, ""):
        return _int(p["reply_to_message_id"], name="reply message id")
    return None


def _checked_text(p: dict[str, Any], too_long: str) -> tuple[str, str]:
    """A message's `text` as sent and as shown, refused like Telegram refuses it (empty,
    over 4096 characters once formatted — `too_long` is the method's own wording — or
    with a malformed `reply_markup`)."""
    text = p.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    visible = _visible(text, p.get("parse_mode"))
    if len(visible) > TEXT_LIMIT:
        raise ApiError(400, too_long)
    _check_markup(p.get("reply_markup"))
    return text, visible


def _check_markup(markup: Any) -> None:
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    for row in rows or []:
        for button in row:
            data = button.get("callback_data") if isinstance(button, dict) else None
            if data is not None and not 1 <= len(str(data).encode()) <= CALLBACK_DATA_LIMIT:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
