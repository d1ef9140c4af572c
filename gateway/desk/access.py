"""Who may do what on the agents' console, and which agents' room a ticket goes to.

A console adapter reports facts about the person (her address, the agents' rooms she is
a member of); the decisions are here, the same for every console.

Example:
    >>> agents = AgentsSettings(console="slack", channel="C0AGENTS", admins=["U0CARLA"])
    >>> is_agent(agents, Actor("slack", "U0PEDRO", rooms=frozenset({"C0AGENTS"})))
    True
    >>> is_admin(agents, Actor("slack", "U0PEDRO"))
    False
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.core.commands import Actor
from gateway.settings import AgentsSettings


def is_agent(agents: AgentsSettings, actor: Actor) -> bool:
    """A member of any agents' room, or named in `[agents] members` (admins too)."""
    return bool(actor.address) and (
        bool(actor.rooms & agents.rooms()) or actor.address in agents.members
        or actor.address in agents.admins)


def is_admin(agents: AgentsSettings, actor: Actor) -> bool:
    """Named in `[agents] admins`: may edit the automatic texts from the console."""
    return bool(actor.address) and actor.address in agents.admins


def room_for(agents: AgentsSettings, channel: str, mailbox: str = "",
             tags: Iterable[str] = ()) -> str:
    """The agents' room for a ticket: by tag, then by mailbox, then by channel, else the
    default room (`[agents] routes`).

    Example: with routes {"email:ventas": "C0SALES"}, `room_for(agents, "email", "ventas")`
    → "C0SALES".
    """
    for tag in tags:
        if (room := agents.routes.get(f"tag:{tag}")) is not None:
            return room
    return (agents.routes.get(f"{channel}:{mailbox}") or agents.routes.get(channel)
            or agents.channel)
