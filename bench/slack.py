"""Benchmark: agents answering from Slack, end to end through the Slack sandbox.

    python -m bench.slack [--tickets 100] [--n 1000] [--concurrency 16]

`--tickets` customers (memory channel) each get a ticket and a card in the agents'
channel. Then `--n` agent replies are delivered as signed Events API requests into the
cards' threads, `--concurrency` at a time, to the gateway's HTTP app (slack-bolt checks
each signature, the gateway stores the reply and queues it for the customer; the undo
window is set to 0 here, it would otherwise add its 10 s by design). Measured:

1. events/s: agent replies accepted by the gateway (HTTP 200 from Bolt after the commit);
2. delivery latency p50/p99: event sent → the reply handed to the customer's channel;
3. slack-bolt alone: an AsyncApp with a `message` listener that does nothing, behind the
   same kind of HTTP server, fed the same signed events by the same sandbox: events/s.

The last line is:

    slack: <events/s> events/s, reply p50 <ms> ms, p99 <ms> ms, bolt-noop <events/s> events/s, ratio <r>
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.routing import Route
from tortoise import Tortoise

from adapters.memory import MemoryAdapter
from adapters.slack.adapter import SlackAdapter
from bench.running import running
from gateway.app import assemble
from gateway.core.messages import Inbound, Outbound, Party, ThreadHint
from gateway.desk.report import percentile
from gateway.sandbox.slack import SlackSandbox
from gateway.settings import load_settings
from gateway.store.db import init_db, migrate
from gateway.store.models import Ticket
from gateway.web.http import free_port, serve

ROOT = Path(__file__).resolve().parent.parent
AGENTS, PEDRO = "C0AGENTS", "U0PEDRO"


async def drive(sandbox: SlackSandbox, threads: list[str], n: int, concurrency: int
                ) -> tuple[float, dict[str, float]]:
    """Send `n` agent replies, `concurrency` at a time; events/s and when each was sent."""
    sent: dict[str, float] = {}
    work = iter(range(n))

    async def worker() -> None:
        for i in work:
            text = f"Respuesta {i}"
            sent[text] = time.perf_counter()
            response = await sandbox.message(AGENTS, PEDRO, text,
                                             thread_ts=threads[i % len(threads)])
            if response.status_code != 200:
                raise RuntimeError(f"event {i}: HTTP {response.status_code}")

    begin = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - begin), sent


async def _workspace() -> tuple[SlackSandbox, int]:
    """The sandbox workspace both runs use (Pedro in the agents' channel), and the free
    port its deliveries go to."""
    sandbox = SlackSandbox()
    await sandbox.start()
    sandbox.add_user(PEDRO, "Pedro Soto")
    sandbox.add_channel(AGENTS, [PEDRO])
    port = free_port()
    sandbox.set_gateway(f"http://127.0.0.1:{port}/slack/events")
    return sandbox, port


async def gateway_run(tickets: int, n: int, concurrency: int, workdir: Path
                      ) -> tuple[float, float, float]:
    db_url = f"sqlite://{workdir}/bench.sqlite3"
    sandbox, port = await _workspace()
    settings = load_settings(
        ROOT / "settings.toml", database={"url": db_url}, gateway={"data_dir": str(workdir)},
        agents={"console": "slack", "channel": AGENTS, "undo_seconds": 0},
        outbox={"rate": {"telegram": 1e9, "slack": 1e9}, "poll_interval": "0.05s"},
        channels={"slack": {"bot_token": sandbox.bot_token,
                            "signing_secret": sandbox.signing_secret,
                            "base_url": sandbox.api_url}})
    await migrate(db_url)
    await Tortoise.close_connections()
    await init_db(db_url)
    slack = SlackAdapter.from_settings(settings)
    customers = MemoryAdapter("telegram")
    delivered: dict[str, float] = {}
    everything = asyncio.Event()

    def arrived(out: Outbound) -> None:
        if out.kind == "agent_reply":
            delivered[out.text.split("\n", 1)[0]] = time.perf_counter()
            if len(delivered) >= n:
                everything.set()

    customers.after_send = arrived
    app = assemble(settings, adapters={"slack": slack, "telegram": customers})
    try:
        async with running(app, listen=f"127.0.0.1:{port}"):
            rate, p50, p99 = await _replies(sandbox, customers, everything, delivered,
                                            tickets, n, concurrency)
    finally:
        await Tortoise.close_connections()
        await sandbox.stop()
    return rate, p50, p99


async def _replies(sandbox: SlackSandbox, customers: MemoryAdapter, everything: asyncio.Event,
                   delivered: dict[str, float], tickets: int, n: int,
                   concurrency: int) -> tuple[float, float, float]:
    """Customers open `tickets` tickets; agents answer in their cards' threads."""
    for i in range(tickets):
        await customers.inject(Inbound(
            channel="telegram", sender=Party("customer", str(9000 + i), f"Cliente {i}"),
            text="Hola, mi pedido no llegó", external_id=f"bench-{i}",
            thread=ThreadHint(conversation=str(9000 + i))))
    for _ in range(12_000):  # until every card is posted (at most 10 minutes)
        if not await Ticket.filter(console_thread__isnull=True).exists():
            break
        await asyncio.sleep(0.05)
    threads = [t.split(":", 1)[1] for t in
               await Ticket.all().order_by("id").values_list("console_thread", flat=True)]
    rate, sent = await drive(sandbox, threads, n, concurrency)
    await asyncio.wait_for(everything.wait(), timeout=600)
    latencies = [(delivered[text] - at) * 1000 for text, at in sent.items()]
    p50, p99 = statistics.median(latencies), percentile(latencies, 99)
    print(f"gateway: {n} agent replies into {tickets} tickets' threads, {concurrency} at "
          f"a time: {rate:.0f} events/s; reply → customer p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms")
    return rate, p50, p99


async def bolt_noop(n: int, concurrency: int) -> float:
    sandbox, port = await _workspace()
    bolt = AsyncApp(client=AsyncWebClient(token=sandbox.bot_token, base_url=sandbox.api_url),
                    signing_secret=sandbox.signing_secret, process_before_response=True)

    @bolt.event("message")
    async def nothing(event: dict[str, Any]) -> None:
        return None

    handler = AsyncSlackRequestHandler(bolt)
    stop = asyncio.Event()
    web = asyncio.create_task(serve(Starlette(routes=[
        Route("/slack/events", handler.handle, methods=["POST"])]), f"127.0.0.1:{port}", stop))
    await asyncio.sleep(0.3)
    try:
        rate, _ = await drive(sandbox, ["1790000000.000100"], n, concurrency)
    finally:
        stop.set()
        await web
        await sandbox.stop()
    print(f"slack-bolt AsyncApp + no-op listener: {n} events, {concurrency} at a time: "
          f"{rate:.0f} events/s")
    return rate


async def bench(tickets: int, n: int, concurrency: int, workdir: Path) -> None:
    rate, p50, p99 = await gateway_run(tickets, n, concurrency, workdir)
    baseline = await bolt_noop(n, concurrency)
    print(f"slack: {rate:.0f} events/s, reply p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
          f"bolt-noop {baseline:.0f} events/s, ratio {rate / baseline:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=100)
    parser.add_argument("--n", type=int, default=1000, help="agent replies")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="centralita-bench-", dir=ROOT) as tmp:
        asyncio.run(bench(args.tickets, args.n, args.concurrency, Path(tmp)))


if __name__ == "__main__":
    main()
