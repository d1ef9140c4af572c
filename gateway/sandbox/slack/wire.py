"""The Web API wire format as slack-sdk speaks it, and Slack's limits: error answers,
argument coercion, Block Kit checks, the rich_text blocks of typed messages.

Example:
    >>> _flag("1"), _flag("false"), _channel_type("D0ANA")
    (True, False, 'im')
    >>> _check_blocks('[{"type": "divider"}]')
    [{'type': 'divider'}]
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.responses import JSONResponse

TEXT_LIMIT = 40_000         # longer text is truncated silently
BLOCKS_LIMIT = 50
SECTION_TEXT_LIMIT = 3_000
HEADER_TEXT_LIMIT = 150
TRIGGER_TTL = 3.0           # seconds a trigger_id may be exchanged for a modal
RESPONSE_URL_USES = 5
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
