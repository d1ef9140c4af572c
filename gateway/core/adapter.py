"""The adapter interface: how a channel plugs into the gateway.

An adapter is a thin converter plus `start`, `send` and `stop`. It turns platform
payloads into `Inbound` messages (and an agent console's events into typed commands) and
hands them to the `Port` it is started with (the `Gateway`); it acknowledges the platform
only after `receive` returns, because that is when the message is committed. It never
decides what to answer, and writes no words of its own.

Adapters are found by name through the `centralita.adapters` entry point group, so a
separate package can add a channel:

    [project.entry-points."centralita.adapters"]
    sms = "centralita_sms:SmsAdapter"

Example (the in-process memory adapter):
    >>> from adapters.memory import MemoryAdapter
    >>> adapter = MemoryAdapter(channel="telegram")
    >>> adapter.channel
    'telegram'
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from gateway.core.commands import Actor, Command, CommandResult
from gateway.core.messages import Accepted, Inbound, Outbound, Receipt

log = logging.getLogger("centralita.adapter")


class Port(Protocol):
    """The gateway as an adapter sees it (`Gateway` is one): where messages and agents'
    commands go, and a small store for where the adapter is in its platform's stream."""

    async def receive(self, inbound: Inbound) -> Accepted:
        """Store one message and everything it causes; returns after the commit."""
        ...

    async def command(self, command: Command) -> CommandResult:
        """Do an agent's command (checked, recorded); returns what to show her."""
        ...

    async def is_agent(self, actor: Actor) -> bool:
        """Whether the console's facts about `actor` make her an agent."""
        ...

    async def text(self, key: str, locale: str | None = None) -> str:
        """The words of the automatic text `key` in `locale`, for what a platform shows by
        itself (e.g. the thanks on a pressed button)."""
        ...

    async def load_state(self, channel: str, key: str) -> dict[str, Any]:
        """What the adapter stored under (channel, key), {} when nothing yet."""
        ...

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None:
        """Keep `value` under (channel, key) across restarts."""
        ...


@dataclass(frozen=True)
class Capabilities:
    """What a channel can show, declared by its adapter class (`capabilities`) and
    registered when the app is assembled (`gateway.app.assemble`):

    - `subjects`: messages have a subject line (email); else subjects are not rendered;
    - `buttons`: the survey can be answered with a button per score (else links, or a
      bare number);
    - `status_commands`: how a customer asks for the status of her tickets, by language
      (Telegram: /estado, /status), named in the texts.
    """

    subjects: bool = True
    buttons: bool = False
    status_commands: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Adapter(Protocol):
    """One channel: receive from a platform, deliver to it."""

    channel: str

    async def start(self, port: Port) -> None:
        """Begin receiving; every message goes to `await port.receive(inbound)`."""
        ...

    async def send(self, message: Outbound) -> Receipt:
        """Deliver one message; raise TransientError or PermanentError on failure."""
        ...

    async def stop(self) -> None:
        """Stop receiving and release connections; pending work stays in the database."""
        ...


def adapter_factories() -> dict[str, Callable[..., Adapter]]:
    """Installed adapters by name, from the `centralita.adapters` entry points."""
    return {ep.name: ep.load() for ep in entry_points(group="centralita.adapters")}


def channel_factories() -> dict[str, Callable[..., Adapter]]:
    """The installed adapters a `[channels.<name>]` table can name: those built from
    settings (`from_settings`), e.g. email, slack, telegram; not the tests' memory one."""
    return {name: factory for name, factory in adapter_factories().items()
            if hasattr(factory, "from_settings")}


def adapter_class(channel: str) -> object | None:
    """The adapter class installed for `channel`, None when there is none or it fails."""
    for entry in entry_points(group="centralita.adapters", name=channel):
        try:
            return entry.load()  # type: ignore[no-any-return]
        except Exception:  # a channel whose adapter cannot load here still gets its texts
            log.warning("adapter %r could not be loaded", channel, exc_info=True)
            return None
    return None


def capabilities_of(channel: str, adapter: object | None = None) -> Capabilities:
    """What `channel` can show: its adapter's declaration, else the installed adapter
    class's for that name (a memory stand-in for Telegram shows what Telegram shows),
    else the defaults (a subject, no buttons, no commands).

    Example: `capabilities_of("telegram").status_commands["es"]` → "/estado"
    """
    declared = getattr(adapter, "capabilities", None)
    if not isinstance(declared, Capabilities):
        declared = getattr(adapter_class(channel), "capabilities", None)
    return declared if isinstance(declared, Capabilities) else Capabilities()


class ChannelRegistry:
    """What each channel can show, registered when the app is assembled from its adapters'
    declarations; a channel not registered is looked up once among the installed adapters.

    Example: `ChannelRegistry({"email": EmailAdapter.capabilities})("email").subjects` → True
    """

    def __init__(self, declared: Mapping[str, Capabilities] | None = None) -> None:
        self._known: dict[str, Capabilities] = dict(declared or {})

    def __call__(self, channel: str) -> Capabilities:
        if (known := self._known.get(channel)) is None:
            known = self._known[channel] = capabilities_of(channel)
        return known
