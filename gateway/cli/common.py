"""What every command shares: the consoles, the settings, asyncio, local times."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

import typer
from rich.console import Console

from gateway.settings import Settings

T = TypeVar("T")

out = Console()
err = Console(stderr=True, soft_wrap=True)  # an error stays on one line, even in logs


class Failure(Exception):
    """A user-facing error: printed in one line, exit status 2."""


def _settings(ctx: typer.Context) -> Settings:
    return ctx.obj["load"]()


def _run(coro_factory: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(coro_factory())  # type: ignore[arg-type]


def _local(moment: datetime | None, tz: ZoneInfo, fmt: str = "%Y-%m-%d %H:%M") -> str:
    return moment.astimezone(tz).strftime(fmt) if moment else "—"


def check_channel(channel: str) -> None:
    """Refuse a `--channel` no installed adapter answers to, naming the ones there are."""
    from gateway.core.adapter import adapter_class, channel_factories

    if not hasattr(adapter_class(channel), "from_settings"):  # every adapter loads only here
        raise Failure(f"--channel: expected one of {', '.join(sorted(channel_factories()))}, "
                      f"got {channel!r}")
