"""Benchmark: N messages through `Gateway.receive` plus the outbox, memory adapter, SQLite.

    python -m bench.pipeline [--n 5000] [--concurrency 64] [--db sqlite|postgres]

Every message comes from a different customer (a new ticket and an acknowledgement each:
the most work a message can cause). Two phases:

1. saturated: `--concurrency` customers write as fast as the gateway answers; gives msgs/s
   (from the first receive to the last acknowledgement delivered).
2. below saturation: messages arrive at half that rate (open loop); gives the
   acknowledgement latency p50/p99 (receive called → acknowledgement handed to the channel).

The SQLite commit limit is a raw stdlib-sqlite3 loop of one INSERT + COMMIT per row with
the same durability settings (WAL, synchronous=FULL) on the same disk, in the same run:
measured just before and just after the pipeline, and averaged, because this kind of
virtual machine changes speed from minute to minute.
The last line is:

    pipeline: <msgs/s> msgs/s, ack p50 <ms> ms, p99 <ms> ms, sqlite-commit-limit <msgs/s> msgs/s, ratio <r>
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

from tortoise import Tortoise

from adapters.memory import MemoryAdapter
from bench.running import running
from gateway.app import assemble
from gateway.core.messages import Inbound, Outbound, Party, ThreadHint
from gateway.desk.report import percentile
from gateway.settings import load_settings
from gateway.store.db import SQLITE_PRAGMAS, init_db, migrate

ROOT = Path(__file__).resolve().parent.parent


def sqlite_commit_limit(path: Path, seconds: float = 3.0) -> float:
    """Rows per second, one INSERT + COMMIT each, WAL + synchronous=FULL."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma, value in SQLITE_PRAGMAS.items():
        conn.execute(f"PRAGMA {pragma}={value}")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, channel TEXT, sender TEXT, body TEXT)")
    rows, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO t (channel, sender, body) VALUES (?, ?, ?)",
                     ("telegram", str(rows), "Hola, mi pedido no llegó"))
        conn.execute("COMMIT")
        rows += 1
    elapsed = time.perf_counter() - start
    conn.close()
    return rows / elapsed


class Probe(MemoryAdapter):
    """The memory channel, timing when each acknowledgement is handed over."""

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.delivered: dict[str, float] = {}
        self.all_done = asyncio.Event()
        self.expected = 0

    async def send(self, message: Outbound):  # type: ignore[no-untyped-def]
        self.delivered[message.recipient] = time.perf_counter()
        if len(self.delivered) >= self.expected:
            self.all_done.set()
        return await super().send(message)


async def run_phase(app, probe: Probe, prefix: str, n: int, concurrency: int,  # type: ignore[no-untyped-def]
                    rate: float | None) -> tuple[float, list[float]]:
    probe.delivered.clear()
    probe.sent.clear()
    probe.all_done.clear()
    probe.expected = n
    started: dict[str, float] = {}

    async def write(i: int) -> None:
        sender = f"{prefix}{i}"
        started[sender] = time.perf_counter()
        await app.gateway.receive(Inbound(
            channel="telegram", sender=Party("customer", sender, f"Cliente {i}"),
            text="Hola, mi pedido no llegó", external_id=f"{prefix}-{i}",
            thread=ThreadHint(conversation=sender)))

    begin = time.perf_counter()
    if rate is None:
        queue = iter(range(n))

        async def worker() -> None:
            for i in queue:
                await write(i)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    else:
        tasks = []
        for i in range(n):
            due = begin + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(write(i)))
        await asyncio.gather(*tasks)
    await asyncio.wait_for(probe.all_done.wait(), timeout=600)
    elapsed = max(probe.delivered.values()) - begin
    latencies = [(probe.delivered[s] - t) * 1000 for s, t in started.items()]
    return n / elapsed, latencies


async def bench(n: int, concurrency: int, url: str | None, workdir: Path) -> None:
    before = sqlite_commit_limit(workdir / "limit-before.sqlite3")
    db_url = url or f"sqlite://{workdir}/bench.sqlite3"
    settings = load_settings(ROOT / "settings.toml", database={"url": db_url},
                             gateway={"data_dir": str(workdir)}, agents={"console": ""},
                             # the memory channel has no platform limit (Telegram's is 30/s)
                             outbox={"rate": {"telegram": 1e9}})
    await migrate(db_url)
    await Tortoise.close_connections()
    await init_db(db_url)
    probe = Probe("telegram")
    app = assemble(settings, adapters={"telegram": probe})
    try:
        async with running(app):
            await run_phase(app, probe, "warm", min(200, n), concurrency, None)
            throughput, sat_lat = await run_phase(app, probe, "sat", n, concurrency, None)
            print(f"saturated: {n} messages, {concurrency} concurrent customers: "
                  f"{throughput:.0f} msgs/s (latency there p50 "
                  f"{statistics.median(sat_lat):.1f} ms, p99 {percentile(sat_lat, 99):.1f} ms)")
            rate = throughput / 2
            _, latencies = await run_phase(app, probe, "open", n, concurrency, rate)
            p50, p99 = statistics.median(latencies), percentile(latencies, 99)
            print(f"below saturation: {n} messages at {rate:.0f} msgs/s: ack p50 "
                  f"{p50:.1f} ms, p99 {p99:.1f} ms")
    finally:
        await Tortoise.close_connections()
    after = sqlite_commit_limit(workdir / "limit-after.sqlite3")
    limit = (before + after) / 2
    print(f"sqlite one-commit-per-row limit (WAL, synchronous=FULL): {limit:.0f} rows/s "
          f"({before:.0f} before the pipeline, {after:.0f} after)")
    print(f"pipeline: {throughput:.0f} msgs/s, ack p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"sqlite-commit-limit {limit:.0f} msgs/s, ratio {throughput / limit:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5000, help="messages per phase")
    parser.add_argument("--concurrency", type=int, default=64, help="customers writing at once")
    parser.add_argument("--db", default=None,
                        help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="centralita-bench-", dir=ROOT) as tmp:
        asyncio.run(bench(args.n, args.concurrency, args.db, Path(tmp)))


if __name__ == "__main__":
    main()
