"""Telegram updates → the gateway's `Inbound`, and texts → Telegram-sized pieces.

Platform ids are "<chat id>:<message id>", so an answer can reply to the customer's own
message and a customer replying to an old acknowledgement finds its ticket.

Example:
    >>> [len(piece) for piece in split_text("a" * 5000)]
    [4096, 904]
    >>> platform_id(-100, 7), message_ref("-100:7", -100)
    ('-100:7', 7)
"""

from __future__ import annotations

import re

MAX_TEXT = 4096
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@[A-Za-z0-9_]+)?(?:\s+(.*))?$", re.S)


def platform_id(chat_id: int, message_id: int) -> str:
    return f"{chat_id}:{message_id}"


def message_ref(platform: str, chat_id: int) -> int | None:
    """The message id in `platform` ("<chat>:<message>") if it belongs to `chat_id`."""
    chat, _, message = platform.partition(":")
    if chat == str(chat_id) and message.isdigit():
        return int(message)
    return None


def command(text: str) -> tuple[str, str] | None:
    """("estado", rest) for "/estado@MiBot algo", None for anything else."""
    match = _COMMAND.match(text.strip())
    if not match:
        return None
    return match.group(1).lower(), (match.group(2) or "").strip()


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Pieces of at most `limit` characters, cut at paragraph, line or word breaks."""
    text = text.strip() or "…"
    pieces: list[str] = []
    while len(text) > limit:
        window = text[:limit]
        cut = max(window.rfind("\n\n"), window.rfind("\n"), window.rfind(" "))
        if cut < limit // 2:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    pieces.append(text)
    return pieces
