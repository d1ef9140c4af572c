"""The adapter interface: how a channel plugs into the gateway.

An adapter is a thin converter plus `start`, `send` and `stop`. It turns platform
payloads into `Inbound` messages and hands them to the sink it is started with
(`Gateway.receive`); it acknowledges the platform only after the sink returns, because
that is when the message is committed. It never decides what to answer.

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

import functools
import logging
from collections.abc import Awaitable, Callable
from importlib.metadata import entry_points
from typing import Protocol, runtime_checkable

from gateway.core.messages import Inbound, Outbound, Receipt

log = logging.getLogger("centralita.adapter")
Sink = Callable[[Inbound], Awaitable[object]]


@runtime_checkable
class Adapter(Protocol):
    """One channel: receive from a platform, deliver to it."""

    channel: str

    async def start(self, sink: Sink) -> None:
        """Begin receiving; every message goes to `await sink(inbound)`."""
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


@functools.cache
def shows_subject(channel: str) -> bool:
    """Whether messages on `channel` have a subject (email) or not (Telegram, Slack), as
    its adapter class declares it (`subjects`); True when it declares nothing, so a
    channel nobody asked about still gets its subject.

    Example: `shows_subject("telegram")` → False
    """
    return bool(getattr(adapter_class(channel), "subjects", True))


@functools.cache
def status_commands(channel: str) -> dict[str, str]:
    """How a customer asks for the status of her tickets on `channel`, by language, as
    its adapter class declares it (`status_commands`); {} when it declares nothing.

    Example: `status_commands("telegram")` → `{"es": "/estado", "en": "/status"}`
    """
    return dict(getattr(adapter_class(channel), "status_commands", None) or {})
