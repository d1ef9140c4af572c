"""The one place that assembles a running gateway from settings, and runs it.

It is the only code that knows concrete adapters and responders, and it finds them by
name through entry points (`centralita.adapters`, `centralita.responders`). `App.run`
owns the lifecycle — the HTTP app, the adapters, the outbox, the scheduler, and the
order they stop in — for `centralita run`, the demo, the benchmarks and the tests.

Example:
    >>> app = assemble(load_settings(), adapters=build_adapters(settings))  # doctest: +SKIP
    >>> await app.run(stop_event)                                            # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from gateway.core.adapter import Adapter, capabilities_of, channel_factories
from gateway.core.clock import Clock
from gateway.core.responder import Responder, responder_factories
from gateway.outbox.dispatcher import Outbox
from gateway.pipeline.receive import Gateway
from gateway.services import Services
from gateway.settings import Settings, SettingsError
from gateway.web.http import http_app, listen_on
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
    """A gateway assembled around its adapters (see `assemble`)."""

    settings: Settings
    services: Services
    gateway: Gateway
    outbox: Outbox
    adapters: dict[str, Adapter]
    scheduler: Scheduler

    async def start(self) -> None:
        """Start receiving on every channel."""
        for adapter in self.adapters.values():
            await adapter.start(self.gateway)

    async def stop(self) -> None:
        for adapter in self.adapters.values():
            await adapter.stop()

    def http(self) -> Any:
        """The HTTP app: health, the adapters' webhooks, survey links, admin pages."""
        return http_app(self.adapters, self.services, self.gateway.receive)

    async def run(self, stop: asyncio.Event, *, listen: str | None = "",
                  dispatch: bool = True, tick: bool = True,
                  started: Callable[[], None] | None = None) -> None:
        """Run until `stop` is set: the HTTP app on `listen` ("" = `[http] listen`, None =
        none) before the adapters start (Telegram must find its webhook up), then the
        adapters, the outbox (`dispatch`) and the scheduler's ticker (`tick`). `started`
        is called once everything runs.

        The stop order, here only: the scheduler; the outbox, which claims nothing more,
        gives its sends on the wire `[outbox] stop_timeout`, records what it sent and
        releases the rest (pending again for the next start) — before the adapters stop,
        so that those sends still have their connections; then the adapters and the HTTP
        app. Nothing pending is lost: it waits in the database.

        Without `dispatch` or `tick` the caller steps them (`outbox.dispatch_once`,
        `scheduler.run_due`), as the demo does on its simulated clock."""
        listen = self.settings.http.listen if listen == "" else listen
        # Listening first, and awaited: a taken address stops start-up with one line.
        web = await listen_on(self.http(), listen) if listen else None
        dispatcher: asyncio.Task[None] | None = None
        try:
            await self.start()
            if dispatch:
                dispatcher = asyncio.create_task(self.outbox.run(stop))
            if tick:
                await self.scheduler.start()
            if started is not None:
                started()
            await stop.wait()
        finally:
            stop.set()
            await self.scheduler.stop()
            if dispatcher is not None:
                await dispatcher  # bounded by [outbox] stop_timeout
            await self.stop()
            if web is not None:
                server, serving = web
                server.should_exit = True
                with contextlib.suppress(asyncio.CancelledError):
                    await serving


@asynccontextmanager
async def running(app: App, *, listen: str | None = None, tick: bool = False,
                  started: Callable[[], None] | None = None) -> AsyncIterator[App]:
    """`app.run` in the background for the block (HTTP on `listen`, the scheduler's ticker
    with `tick`), stopped in order after it — for tests and benchmarks.

    Example:
        >>> async with running(app, listen="127.0.0.1:8081"):     # doctest: +SKIP
        ...     await app.gateway.receive(inbound)
    """
    stop, ready = asyncio.Event(), asyncio.Event()

    def up() -> None:
        if started is not None:
            started()
        ready.set()

    lifecycle = asyncio.create_task(app.run(stop, listen=listen, tick=tick, started=up))
    try:
        ready_or_failed = asyncio.ensure_future(ready.wait())
        await asyncio.wait({ready_or_failed, lifecycle}, timeout=60,
                           return_when=asyncio.FIRST_COMPLETED)
        if lifecycle.done():
            ready_or_failed.cancel()
            lifecycle.result()  # start-up failed: raise why
        yield app
    finally:
        stop.set()
        await lifecycle


def settle_memory() -> None:
    """Hide what start-up built from the garbage collector, for a long-running gateway.

    Settings, compiled templates, the ORM's metadata and every imported module live as
    long as the process; each full collection used to walk them all again, a pause of
    50–90 ms in the middle of the pipeline (measured with `python -m bench.pipeline`),
    which every message arriving meanwhile waits for. After `gc.freeze()` a full
    collection sees only what the running gateway makes: 4–11 ms. Call it once, after
    the adapters start (`centralita run` does).
    """
    gc.collect()
    gc.freeze()


def assemble(settings: Settings, *, adapters: Mapping[str, Adapter], clock: Clock | None = None,
             accept_any_channel: bool = False) -> App:
    """Wire services, responders, the pipeline, the outbox and the scheduler around
    `adapters`, registering what each channel can show.

    The gateway accepts messages only from the channels of `adapters` (plus any channel
    when `accept_any_channel`, as `centralita simulate` does).
    """
    services = Services.from_settings(settings, clock, channels={
        name: capabilities_of(name, adapter) for name, adapter in adapters.items()})
    outbox = Outbox(adapters, services)
    channels = None if accept_any_channel else set(adapters)
    gateway = Gateway(services, load_responders(settings), channels=channels,
                      dispatcher=outbox)
    return App(settings=settings, services=services, gateway=gateway, outbox=outbox,
               adapters=dict(adapters),
               scheduler=Scheduler(services, on_due=gateway.due, wake=outbox.wake))
