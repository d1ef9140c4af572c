"""Running: `centralita run` (the gateway, until Ctrl-C) and `centralita demo`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from gateway.cli.common import Failure, _run, _settings, err, out
from gateway.store.db import database
from gateway.store.db import migrate as run_migrations


def run(ctx: typer.Context) -> None:
    """Run the gateway: read every configured channel, deliver answers, until Ctrl-C.

    A first email sync shows a progress bar on a terminal (counts go to the log always).
    """
    import signal

    from rich.progress import Progress

    from gateway.app import assemble, build_adapters, settle_memory

    s = _settings(ctx)
    if not s.channels:
        raise Failure("no channels to run: add a [channels.<name>] table to settings.toml "
                      "(e.g. [channels.email] with a [[channels.email.mailboxes]] entry)")
    logging.getLogger("centralita").setLevel(logging.INFO)
    bar = Progress(console=err, transient=True) if err.is_terminal else None
    tasks: dict[str, Any] = {}

    def progress(key: str, done: int, total: int) -> None:
        if bar is None:
            return
        if key not in tasks:
            tasks[key] = bar.add_task(f"importing {key}", total=total)
        bar.update(tasks[key], completed=done, total=total)

    async def go() -> None:
        await run_migrations(s.database.url)
        async with database(s.database.url):
            running = assemble(s, adapters=build_adapters(s, progress=progress))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)

            def started() -> None:
                settle_memory()
                out.print(f"[green]running[/green]: {', '.join(running.adapters)}; admin "
                          f"pages at http://{s.http.listen}/admin/ — Ctrl-C stops")

            await running.run(stop, started=started)

    if bar is not None:
        with bar:
            _run(go)
    else:
        _run(go)
    out.print("stopped: nothing pending is lost (it waits in the database)")


def demo(
    serve: Annotated[bool, typer.Option(
        "--serve", help="afterwards, leave the admin pages up on a local URL")] = False,
) -> None:
    """A scripted day of customer service on this machine, in under a minute.

    No accounts or credentials: the Telegram and Slack sandboxes, a local SMTP server and
    a temporary database; simulated time runs from Sunday 22:30 to the next Monday.
    """
    from gateway.sandbox.demo import main as play

    play(out, Path(__file__).resolve().parents[2], keep_serving=serve)
