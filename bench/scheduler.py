"""Benchmark: the scheduler with a million pending actions.

    python -m bench.scheduler [--pending 1000000] [--per-minute 1000] [--minutes 1]

1. claim cost: the time of one look for due work (`run_due` when nothing is due) with
   1,000 and then `--pending` actions waiting in the future — the (status, due_at) index
   makes them the same;
2. firing: `--per-minute` progress updates come due each minute for `--minutes`, spread
   evenly, on top of the pending million; the runner ticks every second as in
   production; lateness = fired − due, p50/p99 (target: p99 under 2 s);
3. memory: the process's resident size before and after firing (flat: nothing is loaded
   but the claimed batch).

SQLite in a temporary directory; the million rows are inserted with one executemany.
The last line is:

    scheduler: claim <ms> ms at 1k, <ms> ms at 1M pending, lateness p50 <s> s, p99 <s> s, rss +<MB> MB
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tortoise import Tortoise

from adapters.memory import MemoryAdapter
from bench.running import running
from gateway.app import assemble
from gateway.core.messages import Inbound, Party, ThreadHint
from gateway.settings import load_settings
from gateway.store import bulk
from gateway.store.db import init_db, migrate

ROOT = Path(__file__).resolve().parent.parent
TICKETS = 1000


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def add_far_future(path: Path, count: int, ticket_ids: list[int]) -> None:
    """`count` pending actions due in a year, straight into the table (fast)."""
    conn = sqlite3.connect(path)
    far = (datetime.now(UTC) + timedelta(days=365)).isoformat(" ")
    now = datetime.now(UTC).isoformat(" ")
    conn.executemany(
        "INSERT INTO scheduled_action (ticket_id, kind, due_at, status, payload, attempts,"
        " created_at) VALUES (?, 'follow_up', ?, 'pending', '{}', 0, ?)",
        ((ticket_ids[i % len(ticket_ids)], far, now) for i in range(count)))
    conn.commit()
    conn.close()


async def claim_ms(app, repeat: int = 20) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await app.scheduler.run_due()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


async def bench(pending: int, per_minute: int, minutes: float, workdir: Path) -> None:
    path = workdir / "bench.sqlite3"
    url = f"sqlite://{path}"
    settings = load_settings(ROOT / "settings.toml", database={"url": url},
                             gateway={"data_dir": str(workdir)}, agents={"console": ""},
                             outbox={"rate": {"telegram": 1e9}},
                             scheduler={"progress_max": 1000, "tick": "1s"})
    await migrate(url)
    await Tortoise.close_connections()
    await init_db(url)
    channel = MemoryAdapter("telegram")
    app = assemble(settings, adapters={"telegram": channel})
    for i in range(TICKETS):
        await app.gateway.receive(Inbound(
            channel="telegram", sender=Party("customer", str(1000 + i), f"Cliente {i}"),
            text="Hola", external_id=f"b{i}", thread=ThreadHint(conversation=str(1000 + i))))
    from gateway.store.models import ScheduledAction, Ticket

    await ScheduledAction.all().update(status="cancelled")  # only what we plant counts
    ticket_ids = await Ticket.all().values_list("id", flat=True)
    await Tortoise.close_connections()

    add_far_future(path, 1000, ticket_ids)
    await init_db(url)
    small = await claim_ms(app)
    print(f"claim with 1,000 pending: {small:.2f} ms")
    await Tortoise.close_connections()
    began = time.perf_counter()
    add_far_future(path, pending - 1000, ticket_ids)
    print(f"inserted {pending - 1000:,} more pending actions in "
          f"{time.perf_counter() - began:.1f} s")
    await init_db(url)
    big = await claim_ms(app)
    print(f"claim with {pending:,} pending: {big:.2f} ms")

    # Progress updates coming due, per_minute a minute, spread evenly.
    total = int(per_minute * minutes)
    start = datetime.now(UTC) + timedelta(seconds=2)
    step = 60 / per_minute
    await bulk.insert_rows(ScheduledAction, [
        {"ticket_id": ticket_ids[i % len(ticket_ids)], "kind": "progress",
         "due_at": start + timedelta(seconds=i * step), "payload": {"count": 0},
         "created_at": datetime.now(UTC)} for i in range(total)])
    before = rss_mb()
    app.scheduler.lateness.clear()
    deadline = time.monotonic() + minutes * 60 + 10
    async with running(app, tick=True):  # APScheduler ticks every [scheduler] tick (1 s)
        # The benchmark only watches the list the ticker fills: no event to wait on.
        while len(app.scheduler.lateness) < total and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
    after = rss_mb()
    late = app.scheduler.lateness
    p50, p99 = statistics.median(late), sorted(late)[int(0.99 * (len(late) - 1))]
    print(f"fired {len(late)} of {total} progress updates ({per_minute}/min for {minutes} "
          f"min) over {pending:,} pending: lateness p50 {p50:.2f} s, p99 {p99:.2f} s, "
          f"max {max(late):.2f} s")
    print(f"resident memory: {before:.0f} MB before firing, {after:.0f} MB after")
    await Tortoise.close_connections()
    print(f"scheduler: claim {small:.2f} ms at 1k, {big:.2f} ms at {pending // 1000}k pending, "
          f"lateness p50 {p50:.2f} s, p99 {p99:.2f} s, rss {after - before:+.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pending", type=int, default=1_000_000)
    parser.add_argument("--per-minute", type=int, default=1000)
    parser.add_argument("--minutes", type=float, default=1.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="centralita-bench-", dir=ROOT) as tmp:
        asyncio.run(bench(args.pending, args.per_minute, args.minutes, Path(tmp)))


if __name__ == "__main__":
    main()
