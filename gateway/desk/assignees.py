"""Who has a ticket on the console: the ticket keeps her name (what every page and text
shows); her address there, when she claimed it or was assigned with a mention, is kept
here, so that an SLA warning notifies her — also when two agents share a name. It is
forgotten once the ticket closes.

Example:
    >>> await remember("slack", 1042, "U0PEDRO", "Pedro Soto", now)      # doctest: +SKIP
    >>> await address_of("slack", 1042, "Pedro Soto")                     # doctest: +SKIP
    'U0PEDRO'
"""

from __future__ import annotations

from datetime import datetime

from gateway.store.models import ChannelState
from gateway.store.state import load_state, save_state


def _key(number: int) -> str:
    return f"assignee:{number}"


async def remember(console: str, number: int, address: str, name: str,
                   now: datetime) -> None:
    await save_state(console, _key(number), {"user": address, "name": name}, now)


async def address_of(console: str, number: int, name: str) -> str | None:
    """Her address on the console, if the ticket's assignee is still who it remembers."""
    known = await load_state(console, _key(number))
    return str(known["user"]) if known and known.get("name") == name else None


async def forget(console: str, number: int) -> None:
    await ChannelState.filter(channel=console, key=_key(number)).delete()
