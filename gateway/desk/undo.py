"""The undo window: an agent's reply waits `[agents] undo_seconds` before it leaves, and
until then the agent can take it back, keep it as a note, or edit or delete her message
on the console to change or cancel it.

A held reply is remembered by the console's id of the agent's message (`ref`), in the
database, so an edit reaches it also after a restart; an hour later it is forgotten.

Example:
    >>> await hold("slack", "C0AGENTS:1700000000.1", 17, "Llega el martes", 1042, now)
    >>> (await held("slack", "C0AGENTS:1700000000.1")).outbox_id     # doctest: +SKIP
    17
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.store.models import ChannelState
from gateway.store.state import load_state, save_state

REMEMBERED_FOR = timedelta(hours=1)


@dataclass(frozen=True)
class Held:
    """A reply waiting to leave: its outbox row, the words she wrote, its ticket."""

    outbox_id: int
    text: str
    number: int


async def hold(console: str, ref: str, outbox_id: int, text: str, number: int,
               now: datetime) -> None:
    """Remember which reply the console message `ref` is waiting to send."""
    await save_state(console, f"held:{ref}", {"outbox": outbox_id, "text": text,
                                             "ticket": number}, now)
    await ChannelState.filter(channel=console, key__startswith="held:",
                              updated_at__lt=now - REMEMBERED_FOR).delete()


async def held(console: str, ref: str) -> Held | None:
    state = await load_state(console, f"held:{ref}")
    if not state:
        return None
    return Held(int(state["outbox"]), str(state["text"]), int(state["ticket"]))


async def forget(console: str, ref: str) -> None:
    await ChannelState.filter(channel=console, key=f"held:{ref}").delete()
