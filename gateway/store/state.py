"""Small per-adapter state kept in the database (`ChannelState`): where a channel is in
its platform's stream, so a restart resumes instead of starting over.

Example:
    >>> await save_state("email", "soporte/INBOX", {"uidvalidity": 7, "last_uid": 12}, now)
    >>> await load_state("email", "soporte/INBOX")                     # doctest: +SKIP
    {'uidvalidity': 7, 'last_uid': 12}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.store.models import ChannelState


async def load_state(channel: str, key: str) -> dict[str, Any]:
    """The stored value, or {} when there is none yet."""
    row = await ChannelState.get_or_none(channel=channel, key=key)
    return dict(row.value) if row is not None else {}


async def save_state(channel: str, key: str, value: dict[str, Any], now: datetime) -> None:
    """Store `value` for (channel, key), replacing what was there."""
    async with in_transaction():
        if await ChannelState.filter(channel=channel, key=key).update(value=value,
                                                                       updated_at=now):
            return
        try:
            async with in_transaction():
                await ChannelState.create(channel=channel, key=key, value=value,
                                          updated_at=now)
        except IntegrityError:  # created meanwhile by another process
            await ChannelState.filter(channel=channel, key=key).update(value=value,
                                                                       updated_at=now)
