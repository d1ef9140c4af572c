"""The one place that assembles a running gateway from settings.

It is the only code that knows concrete adapters and responders, and it finds them by
name through entry points (`centralita.adapters`, `centralita.responders`).

Example:
    >>> adapters = {"telegram": MemoryAdapter("telegram")}         # doctest: +SKIP
    >>> app = assemble(load_settings(), adapters=adapters)          # doctest: +SKIP
    >>> await app.gateway.receive(inbound)                          # doctest: +SKIP
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.adapter import Adapter, channel_factories
from gateway.core.clock import Clock
from gateway.core.responder import Responder, responder_factories
from gateway.outbox.dispatcher import Outbox
from gateway.pipeline.receive import Gateway
from gateway.services import Services
from gateway.settings import Settings, SettingsError
from scheduler.runner import Scheduler


def load_responders(settings: Settings) -> list[Responder]:
    """The responders named in `[responders] order`, in that order."""
    factories = responder_factories()
    for name in settings.responders.order:
        if name not in factories:
            installed = ", ".join(sorted(factories)) or "none"
            raise SettingsError(
                f"responders.order: unknown responder {name!r} (installed: {installed})")
    return [factories[name]() for name in settings.responders.order]


def build_adapters(settings: Settings, clock: Clock | None = None,
                   **options: Any) -> dict[str, Adapter]:
    """One adapter per `[channels.<name>]` table (unless `enabled = false`), found by name
    through the `centralita.adapters` entry points and built with `from_settings`.

    `options` (e.g. `progress=` for a first email sync) go to adapters that accept them.
    """
    factories = channel_factories()
    adapters: dict[str, Adapter] = {}
    for name, table in settings.channels.items():
        if not table.get("enabled", True):
            continue
        factory = factories.get(name)
        if factory is None:
            installed = ", ".join(sorted(factories)) or "none"
            raise SettingsError(f"channels.{name}: no channel adapter called {name!r} is "
                                f"installed (installed: {installed})")
        accepted = {k: v for k, v in options.items()
                    if k in factory.from_settings.__code__.co_varnames}
        adapters[name] = factory.from_settings(settings, clock=clock, **accepted)
    return adapters


@dataclass
class App:
    services: Services
    gateway: Gateway
    outbox: Outbox
    adapters: dict[str, Adapter]
    scheduler: Scheduler

    async def start(self) -> None:
        for adapter in self.adapters.values():
            await adapter.start(self.gateway.receive)

    async def stop(self) -> None:
        for adapter in self.adapters.values():
            await adapter.stop()


def settle_memory() -> None:
    """Hide what start-up built from the garbage collector, for a long-running gateway.

    Settings, compiled templates, the ORM's metadata and every imported module live as
    long as the process; each full collection used to walk them all again, a pause of
    50–90 ms in the middle of the pipeline (measured with `python -m bench.pipeline`),
    which every message arriving meanwhile waits for. After `gc.freeze()` a full
    collection sees only what the running gateway makes: 4–11 ms. Call it once, after
    `App.start()` (`centralita run` does).
    """
    gc.collect()
    gc.freeze()


def assemble(settings: Settings, *, adapters: Mapping[str, Adapter], clock: Clock | None = None,
             accept_any_channel: bool = False) -> App:
    """Wire services, responders, the pipeline and the outbox around `adapters`.

    The gateway accepts messages only from the channels of `adapters` (plus any channel
    when `accept_any_channel`, as `centralita simulate` does).
    """
    services = Services.from_settings(settings, clock)
    outbox = Outbox(adapters, services)
    channels = None if accept_any_channel else set(adapters)
    gateway = Gateway(services, load_responders(settings), channels=channels,
                      dispatcher=outbox)
    return App(services=services, gateway=gateway, outbox=outbox, adapters=dict(adapters),
               scheduler=Scheduler(services, wake=outbox.wake))
