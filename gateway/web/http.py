"""The gateway's HTTP app: the routes adapters contribute (webhooks), a health check and
the admin pages, served by uvicorn inside the gateway's own event loop. Every route sits
behind the security headers and the body size limit (`gateway.web.guards`).

Example:
    >>> app = http_app(adapters)                               # doctest: +SKIP
    >>> await serve(app, "127.0.0.1:8080", stop_event)          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from gateway.core.adapter import Adapter
from gateway.core.messages import Inbound
from gateway.settings import HttpSettings, SettingsError
from gateway.web.guards import BodyLimit, SecurityHeaders

STATIC = Path(__file__).resolve().parent / "static"  # the admin pages' script and styles


def http_routes(adapters: Mapping[str, Adapter]) -> list[Any]:
    """Every route the adapters offer (an adapter may define `routes()`)."""
    return [route for adapter in adapters.values()
            for route in (getattr(adapter, "routes", None) or (lambda: []))()]


class GuardedApp(Starlette):
    """A Starlette app wrapped, outside even its error handler (so a 500 carries them
    too), in the security headers and the body size limit."""

    def __init__(self, routes: list[BaseRoute], http: HttpSettings, locale: str) -> None:
        super().__init__(routes=routes)
        self.http, self.locale = http, locale

    def build_middleware_stack(self) -> ASGIApp:
        limited = BodyLimit(super().build_middleware_stack(), limit=self.http.max_body,
                            locale=self.locale)
        return SecurityHeaders(limited, hsts=self.http.public_url.startswith("https://"))


def http_app(adapters: Mapping[str, Adapter], services: Any = None,
             receive: Callable[[Inbound], Awaitable[Any]] | None = None, *,
             http: HttpSettings | None = None) -> Starlette:
    """Health check, the adapters' webhook routes, (given `receive`, the gateway's entry
    point) the survey links' pages, and (given `services`) the admin pages, their static
    files and the JSON API (gateway.web.admin). `http` defaults to the services'
    `[http]` settings."""
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "channels": sorted(adapters)})

    settings = services.settings if services is not None else None
    http = http or (settings.http if settings is not None else HttpSettings())
    routes: list[BaseRoute] = [Route("/healthz", health), *http_routes(adapters)]
    if receive is not None:
        from gateway.web.survey import survey_routes

        routes += survey_routes(receive)
    if services is not None:
        from gateway.web.admin import admin_app

        routes.append(Mount("/admin/static", app=StaticFiles(directory=STATIC)))
        routes.append(Mount("/", app=admin_app(services)))
    return GuardedApp(routes, http, settings.gateway.default_locale if settings else "es")


class QuietServer(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C belongs to the caller's event loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on `host` (for tests and the demo)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


async def start_server(app: Any, host: str = "127.0.0.1", port: int = 0
                       ) -> tuple[QuietServer, asyncio.Task[None], int]:
    """Serve `app` in this event loop; returns once it listens, with the port it got.

    The socket is created with IPPROTO_TCP so that asyncio turns Nagle's algorithm off
    (a socket made without it costs every request ~44 ms on loopback).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.setblocking(False)
    port = sock.getsockname()[1]
    server = QuietServer(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                        lifespan="off", log_config=None, access_log=False,
                                        http="h11", timeout_graceful_shutdown=2))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError(f"the HTTP server on {host}:{port} stopped during start-up")
        await asyncio.sleep(0.01)
    return server, task, port


async def listen_on(app: Any, listen: str) -> tuple[QuietServer, asyncio.Task[None]]:
    """Start serving `app` on `listen` ("host:port"); returns once it listens. An address
    that cannot be had (taken, not this machine's, no permission) is a `SettingsError`
    naming `[http] listen`, so `centralita run` stops at start-up instead of running
    without webhooks, admin pages or survey links."""
    host, _, port = listen.rpartition(":")
    try:
        server, task, _ = await start_server(app, host or "127.0.0.1", int(port))
    except OSError as exc:
        raise SettingsError(
            f"http.listen: cannot listen on {listen}: {exc.strerror or exc} (is another "
            f"program using it? set another address)") from None
    return server, task


async def serve(app: Starlette, listen: str, stop: asyncio.Event) -> None:
    """Serve `app` on `listen` ("host:port") until `stop` is set."""
    server, task = await listen_on(app, listen)
    await stop.wait()
    server.should_exit = True
    await task
