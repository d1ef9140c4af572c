"""Benchmark: Telegram updates end to end through the Bot API sandbox.

    python -m bench.telegram [--n 2000] [--db URL]

Every update comes from a different chat (a new ticket and an acknowledgement each). The
gateway runs its real Telegram adapter (python-telegram-bot, our own getUpdates loop that
commits before it confirms) and the outbox against `gateway.sandbox.telegram` on
loopback. The sandbox runs in a process of its own, as Telegram's servers are not in
ours: it queues the updates, and timestamps each acknowledgement it receives, on its own
event loop, so serving the fake API takes nothing from the gateway's. Telegram's own limit
of ~30 messages a second per bot is lifted for the memory-speed measurement (the
sandbox does not enforce it), and chats are distinct, so the 1-a-second-per-chat pacing
never waits.

1. saturated: N updates queued at once; msgs/s from the first injection to the last
   acknowledgement received by the sandbox.
2. below saturation: N updates injected at half that rate; acknowledgement latency
   p50/p99 (update queued → acknowledgement received by the sandbox).
3. python-telegram-bot alone: an Application polling the same sandbox with its own
   Updater and a handler that does nothing; msgs/s for N updates (the most any bot
   built on the library can do here).

The last line is:

    telegram: <msgs/s> msgs/s, ack p50 <ms> ms, p99 <ms> ms, ptb-noop <msgs/s> msgs/s, ratio <r>
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import statistics
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from telegram.ext import ApplicationBuilder, MessageHandler, filters
from tortoise import Tortoise

from adapters.memory import MemoryAdapter
from adapters.telegram.adapter import TelegramAdapter
from bench.running import running
from gateway.app import assemble
from gateway.desk.report import percentile
from gateway.sandbox.telegram import TelegramSandbox
from gateway.settings import load_settings
from gateway.store.db import init_db, migrate

ROOT = Path(__file__).resolve().parent.parent


class TimedSandbox(TelegramSandbox):
    """The sandbox, noting when each message from the bot arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrived: dict[int, float] = {}
        self.done = asyncio.Event()
        self.expected = 0

    def _record(self, method: str, chat_id: int, *args: Any, **extra: Any) -> None:
        super()._record(method, chat_id, *args, **extra)
        self.arrived.setdefault(chat_id, time.perf_counter())
        if len(self.arrived) >= self.expected:
            self.done.set()


async def phase(sandbox: TimedSandbox, first_chat: int, n: int,
                rate: float | None) -> tuple[float, list[float]]:
    sandbox.arrived.clear()
    sandbox.done.clear()
    sandbox.expected = n
    queued: dict[int, float] = {}
    begin = time.perf_counter()
    for i in range(n):
        if rate is not None:
            delay = begin + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        chat = first_chat + i
        queued[chat] = time.perf_counter()
        sandbox.inject_text(chat, "Hola, mi pedido no llegó", first_name=f"Cliente {i}")
    await asyncio.wait_for(sandbox.done.wait(), timeout=900)
    elapsed = max(sandbox.arrived.values()) - begin
    return n / elapsed, [(sandbox.arrived[c] - t) * 1000 for c, t in queued.items()]


async def _sandbox_main(conn: Connection) -> None:
    """The sandbox process: serve the Bot API, run what the benchmark asks, answer."""
    sandbox = TimedSandbox()
    await sandbox.start()
    conn.send((sandbox.token, sandbox.base_url, sandbox.base_file_url))
    loop = asyncio.get_running_loop()
    try:
        while True:
            command, *args = await loop.run_in_executor(None, conn.recv)
            if command == "phase":
                conn.send(await phase(sandbox, *args))
            elif command == "inject":
                first_chat, n = args
                for i in range(n):
                    sandbox.inject_text(first_chat + i, "Hola", first_name=f"Cliente {i}")
                conn.send(None)
            else:
                break
    finally:
        await sandbox.stop()


def _sandbox_process(conn: Connection) -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(_sandbox_main(conn))


class RemoteSandbox:
    """`TimedSandbox` in a child process, driven through a pipe."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")
        self._conn, child = spawn.Pipe()
        self._process = spawn.Process(
            target=_sandbox_process, args=(child,), daemon=True)

    async def start(self) -> None:
        self._process.start()
        self.token, self.base_url, self.base_file_url = await self._recv()

    async def _recv(self) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, self._conn.recv)

    async def phase(self, first_chat: int, n: int, rate: float | None
                    ) -> tuple[float, list[float]]:
        self._conn.send(("phase", first_chat, n, rate))
        return await asyncio.wait_for(self._recv(), timeout=900)  # type: ignore[no-any-return]

    async def inject(self, first_chat: int, n: int) -> None:
        self._conn.send(("inject", first_chat, n))
        await self._recv()

    async def stop(self) -> None:
        self._conn.send(("stop",))
        await asyncio.get_running_loop().run_in_executor(None, self._process.join, 30)


async def gateway_phases(n: int, url: str | None, workdir: Path) -> tuple[float, float, float]:
    db_url = url or f"sqlite://{workdir}/bench.sqlite3"
    sandbox = RemoteSandbox()
    await sandbox.start()
    settings = load_settings(
        ROOT / "settings.toml", database={"url": db_url}, gateway={"data_dir": str(workdir)},
        agents={"console": ""}, outbox={"rate": {"telegram": 1e9}},
        channels={"telegram": {"token": sandbox.token, "base_url": sandbox.base_url,
                               "base_file_url": sandbox.base_file_url, "poll_timeout": 1}})
    await migrate(db_url)
    await Tortoise.close_connections()
    await init_db(db_url)
    adapter = TelegramAdapter.from_settings(settings)
    app = assemble(settings, adapters={"telegram": adapter, "agents": MemoryAdapter("agents")})
    try:
        async with running(app):
            throughput, p50, p99 = await _phases(sandbox, n)
    finally:
        await Tortoise.close_connections()
        await sandbox.stop()
    return throughput, p50, p99


async def _phases(sandbox: RemoteSandbox, n: int) -> tuple[float, float, float]:
    """Warm up, saturate, then half the saturated rate."""
    await sandbox.phase(10_000_000, min(200, n), None)  # warm up
    throughput, saturated = await sandbox.phase(20_000_000, n, None)
    print(f"saturated: {n} updates from {n} chats: {throughput:.0f} msgs/s "
          f"(latency there p50 {statistics.median(saturated):.0f} ms)")
    rate = throughput / 2
    _, latencies = await sandbox.phase(30_000_000, n, rate)
    p50, p99 = statistics.median(latencies), percentile(latencies, 99)
    print(f"below saturation: {n} updates at {rate:.0f} msgs/s: ack p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms")
    return throughput, p50, p99


async def ptb_noop(n: int) -> float:
    """python-telegram-bot's own Updater and a do-nothing handler, same sandbox."""
    sandbox = RemoteSandbox()
    await sandbox.start()
    handled = 0
    finished = asyncio.Event()

    async def noop(update: Any, context: Any) -> None:
        nonlocal handled
        handled += 1
        if handled >= n:
            finished.set()

    application = (ApplicationBuilder().token(sandbox.token).base_url(sandbox.base_url)
                   .base_file_url(sandbox.base_file_url).concurrent_updates(64).build())
    application.add_handler(MessageHandler(filters.ALL, noop))
    await application.initialize()
    await application.start()
    await application.updater.start_polling(poll_interval=0, timeout=1)  # type: ignore[union-attr]
    try:
        begin = time.perf_counter()
        await sandbox.inject(40_000_000, n)
        await asyncio.wait_for(finished.wait(), timeout=600)
        rate = n / (time.perf_counter() - begin)
    finally:
        await application.updater.stop()  # type: ignore[union-attr]
        await application.stop()
        await application.shutdown()
        await sandbox.stop()
    print(f"python-telegram-bot Updater + no-op handler: {n} updates: {rate:.0f} msgs/s")
    return rate


async def bench(n: int, url: str | None, workdir: Path) -> None:
    throughput, p50, p99 = await gateway_phases(n, url, workdir)
    baseline = await ptb_noop(n)
    print(f"telegram: {throughput:.0f} msgs/s, ack p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"ptb-noop {baseline:.0f} msgs/s, ratio {throughput / baseline:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="updates per phase")
    parser.add_argument("--db", default=None,
                        help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="centralita-bench-", dir=ROOT) as tmp:
        asyncio.run(bench(args.n, args.db, Path(tmp)))


if __name__ == "__main__":
    main()
