"""The gateway's HTTP app: the routes adapters contribute (webhooks), a health check and
the admin pages, served by uvicorn inside the gateway's own event loop.

Example:
    >>> app = http_app(adapters)                               # doctest: +SKIP
    >>> await serve(app, "127.0.0.1:8080", stop_event)          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from gateway.adapter import Adapter


def http_routes(adapters: Mapping[str, Adapter]) -> list[Any]:
    """Every route the adapters offer (an adapter may define `routes()`)."""
    return [route for adapter in adapters.values()
            for route in (getattr(adapter, "routes", None) or (lambda: []))()]


def http_app(adapters: Mapping[str, Adapter], services: Any = None) -> Starlette:
    """Health check, the adapters' webhook routes, and (given `services`) the admin pages
    and JSON API (gateway.admin)."""
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "channels": sorted(adapters)})

    routes = [Route("/healthz", health), *http_routes(adapters)]
    if services is not None:
        from gateway.admin import admin_app

        routes.append(Mount("/", app=admin_app(services)))
    return Starlette(routes=routes)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the gateway owns the signals
        yield


async def serve(app: Starlette, listen: str, stop: asyncio.Event) -> None:
    """Serve `app` on `listen` ("host:port") until `stop` is set."""
    host, _, port = listen.rpartition(":")
    server = _Server(uvicorn.Config(app, host=host or "127.0.0.1", port=int(port),
                                    log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await task
