"""Attachments: stored on disk (content-addressed) or in the database, within a size limit.

A file over `[attachments] max_bytes`, or one the adapter could not download, is recorded
(name, type, size) with storage "skipped", so agents know it existed.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.core.messages import Attachment as AttachmentIn
from gateway.core.text import clean_line

if TYPE_CHECKING:  # the settings sit above the store; only their shape is needed here
    from gateway.settings import Settings
from gateway.store.models import Attachment, Message


def _write_once(directory: Path, digest: str, data: bytes) -> Path:
    path = directory / digest[:2] / digest
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    return path


async def store_attachments(
    message: Message, files: Iterable[AttachmentIn], settings: Settings
) -> list[Attachment]:
    """Store each file of `message` as the settings say; returns the rows created."""
    rows = []
    limit = settings.attachments.max_bytes
    for item in files:
        fields = {
            "message": message,
            "filename": clean_line(item.filename, 255) or "attachment",
            "content_type": clean_line(item.content_type, 127) or "application/octet-stream",
            "size": item.byte_size,
            "inline": item.inline,
        }
        if item.data is None or len(item.data) > limit:
            rows.append(await Attachment.create(storage="skipped", **fields))
            continue
        digest = hashlib.sha256(item.data).hexdigest()
        if settings.attachments.store == "db":
            rows.append(await Attachment.create(storage="db", sha256=digest, data=item.data,
                                                **fields))
        else:
            path = await asyncio.to_thread(_write_once, settings.attachments_dir, digest,
                                           item.data)
            rows.append(await Attachment.create(storage="disk", sha256=digest, path=str(path),
                                                **fields))
    return rows


async def load_attachments(ids: Iterable[int]) -> tuple[AttachmentIn, ...]:
    """Stored files as message attachments again (to send them on); skipped ones and files
    gone from disk are left out."""
    wanted = list(ids)
    if not wanted:  # most messages carry no files: no query
        return ()
    found = []
    for row in await Attachment.filter(id__in=wanted).order_by("id"):
        data = row.data
        if row.storage == "disk" and row.path:
            try:
                data = await asyncio.to_thread(Path(row.path).read_bytes)
            except OSError:
                data = None
        if data is not None:
            found.append(AttachmentIn(filename=row.filename, content_type=row.content_type,
                                      data=bytes(data), inline=row.inline))
    return tuple(found)
