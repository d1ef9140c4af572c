"""A customer's files on Telegram: what a message carries, and fetching each within a
time budget.

A file that cannot be fetched — over `max_file_bytes`, gone (404), refused (401 or any
other error), not answered within `file_timeout` — is recorded on its message without its
contents (name, type, the size Telegram gave), as the store records every skipped file, so
agents know it existed; the message itself is stored and confirmed like any other.

Example:
    >>> parts = file_parts(message)       # [FilePart("AgAC…", "foto-7.jpg", …)] # doctest: +SKIP
    >>> await fetch(bot, parts[0], max_bytes=20 << 20, budget=60)         # doctest: +SKIP
    Attachment(filename='foto-7.jpg', content_type='image/jpeg', data=b'…', …)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, NamedTuple

from telegram import Bot
from telegram import Message as TgMessage

from gateway.core.messages import Attachment

log = logging.getLogger("centralita.telegram")


class FilePart(NamedTuple):
    """One file of a message, as Telegram describes it."""

    file_id: str
    filename: str
    content_type: str
    size: int | None


def file_parts(message: TgMessage) -> list[FilePart | Attachment]:
    """The files `message` carries; one that cannot even be described is already an
    `Attachment` without contents (logged)."""
    found: list[FilePart | Attachment] = []
    if message.photo:
        try:
            big = message.photo[-1]
            found.append(FilePart(big.file_id, f"foto-{message.message_id}.jpg",
                                  "image/jpeg", big.file_size))
        except Exception as exc:  # a photo PTB built but we cannot read
            found.append(_unreadable(message, f"foto-{message.message_id}.jpg", "image/jpeg",
                                     exc))
    for kind, default_name, default_type in (
            ("document", "documento", "application/octet-stream"),
            ("voice", f"voz-{message.message_id}.ogg", "audio/ogg"),
            ("audio", "audio", "audio/mpeg"),
            ("video", f"video-{message.message_id}.mp4", "video/mp4")):
        item: Any = getattr(message, kind, None)
        if item is None:
            continue
        try:
            found.append(FilePart(str(item.file_id),
                                  getattr(item, "file_name", None) or default_name,
                                  getattr(item, "mime_type", None) or default_type,
                                  item.file_size))
        except Exception as exc:
            found.append(_unreadable(message, default_name, default_type, exc))
    return found


def _unreadable(message: TgMessage, name: str, content_type: str,
                exc: Exception) -> Attachment:
    log.warning("telegram: message %s: file %s could not be read (%s); recorded without its "
                "contents", message.message_id, name, exc)
    return Attachment(filename=name, content_type=content_type)


async def fetch(bot: Bot, part: FilePart, *, max_bytes: int, budget: float,
                where: str = "") -> Attachment:
    """`part` with its bytes, or recorded without them when it is too big or cannot be
    fetched within `budget` seconds (getFile and the download together). Never raises
    but on cancellation. `where` names the update in the log."""
    data, why = None, ""
    if part.size is not None and part.size > max_bytes:
        why = f"{part.size} bytes, over max_file_bytes ({max_bytes})"
    else:
        try:
            async with asyncio.timeout(budget):
                found = await bot.get_file(part.file_id, read_timeout=budget,
                                           connect_timeout=budget)
                if found.file_size is not None and found.file_size > max_bytes:
                    why = f"{found.file_size} bytes, over max_file_bytes ({max_bytes})"
                else:
                    data = bytes(await found.download_as_bytearray(
                        read_timeout=budget, connect_timeout=budget))
        except TimeoutError:
            why = f"no answer within {budget:g} s"
        except Exception as exc:  # 404, 401, 400 "file is too big", 5xx, a reset…
            why = f"{type(exc).__name__}: {exc}"
    if data is None:
        log.warning("telegram: %sfile %s could not be downloaded (%s); recorded without its "
                    "contents", f"{where}: " if where else "", part.filename, why)
    return Attachment(filename=part.filename, content_type=part.content_type, data=data,
                      size=part.size if data is None else None)
