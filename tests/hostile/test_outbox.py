"""A slow, broken or silent channel never holds back the others, and a gateway with a
backlog stops on time without losing a message.

Each channel — and the agents' console — has its own lane in the outbox: its own claim of
due rows, its own send loop and its own rate limit. Time is simulated (the clock moves
when a lane waits for its rate limit), so "within a second" here is a second of the
gateway's clock; only the stop timeout is real time.

Every test runs on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from adapters.memory import MemoryAdapter
from gateway.core.messages import Outbound, Receipt, TransientError
from gateway.outbox.dispatcher import Outbox
from gateway.store.models import OutboxItem
from tests.conftest import World, build_world, santiago

# The shipped limits (settings.toml), with the console on Slack's one message a second.
RATES = {"telegram": 30.0, "email": 5.0, "slack": 1.0, "agents": 1.0}


class Silent(MemoryAdapter):
    """A platform that takes the connection and does not answer until `answer` is set."""

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.called = asyncio.Event()
        self.answer = asyncio.Event()

    async def send(self, message: Outbound) -> Receipt:
        self.called.set()
        await self.answer.wait()
        return await super().send(message)


class Refusing(MemoryAdapter):
    """A platform in an outage: every send is refused; `all_refused` is set once
    `expected` sends were."""

    def __init__(self, channel: str, expected: int) -> None:
        super().__init__(channel)
        self.expected, self.refused = expected, 0
        self.all_refused = asyncio.Event()

    async def send(self, message: Outbound) -> Receipt:
        self.refused += 1
        if self.refused >= self.expected:
            self.all_refused.set()
        raise TransientError("503 service unavailable")


def when_all_sent(adapter: MemoryAdapter, count: int, world: World,
                  seen: dict[str, Any]) -> asyncio.Event:
    """An event set when `adapter` has delivered `count` messages; `seen` then holds how
    many posts the agents' console had made and the clock's reading."""
    done = asyncio.Event()

    def check(_message: Outbound) -> None:
        if len(adapter.sent) == count and not done.is_set():
            seen.update(console=len(world.agents.sent), at=world.clock.monotonic())
            done.set()

    adapter.after_send = check
    return done


async def running_outbox(outbox: Outbox, *signals: asyncio.Event,
                         within: float = 30) -> None:
    """Run `outbox` until every signal is set (at most `within` real seconds), then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    try:
        await asyncio.wait_for(asyncio.gather(*(s.wait() for s in signals)), within)
    finally:
        stop.set()
        outbox.wake()
        await asyncio.wait_for(task, within)


async def test_forty_customers_are_acknowledged_while_the_console_posts_its_first_cards(
    db: str, tmp_path: Path
) -> None:
    """Forty customers write on Telegram at once. The agents' console (Slack: one message
    a second) has eighty posts to make for them, a card and a copy of the message each.
    Every customer's acknowledgement leaves within about a second, while the console has
    posted only its first cards; then every card arrives, each before its copy."""
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              outbox={"rate": RATES})
    accepted = [await world.write("telegram", str(1000 + i), "Hola", name=f"Cliente {i}")
                for i in range(40)]
    start = world.clock.monotonic()
    seen: dict[str, Any] = {}
    acknowledged = when_all_sent(world.channels["telegram"], 40, world, seen)

    await running_outbox(world.app.outbox, acknowledged)

    # Within a second or two: on this clock each of the console's posts also moves time
    # a second (the shared clock jumps whenever a lane waits for its rate limit).
    assert seen["at"] - start <= 3.0, seen
    assert seen["console"] <= 3, seen  # of 80: the acknowledgements did not wait for them
    assert sorted(m.recipient for m in world.sent_to("telegram")) == [
        str(1000 + i) for i in range(40)]

    # The console's posts were handed over with a short lease; those it could not post
    # in time come back from the database once it runs out.
    world.clock.advance(seconds=15)
    await world.deliver(rounds=50)
    posts = world.agents.sent
    assert len(posts) == 80
    for number in (a.ticket_number for a in accepted):
        mine = [m for m in posts if m.ticket_number == number]
        assert [m.kind for m in mine] == ["new_ticket", "mirror"], mine
        assert mine[1].agents.thread, mine  # the copy went into the card's thread
    assert set(await OutboxItem.all().values_list("status", flat=True)) == {"sent"}


async def test_after_a_crash_a_backlog_of_two_hundred_drains_without_telegram_waiting_for_slack(
    db: str, tmp_path: Path
) -> None:
    """The gateway died with 201 messages to send: acknowledgements on Telegram and by
    email, and the console's cards and copies (one a second). When it starts again and
    the dead process's leases have run out, the customers' acknowledgements all leave
    while the console is still on its first posts, and every row is sent exactly once."""
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              outbox={"rate": RATES})
    for i in range(50):
        await world.write("telegram", str(2000 + i), "Hola", name=f"Cliente {i}")
    for i in range(17):
        await world.write("email", f"cliente{i}@example.test", "Hola")
    assert await OutboxItem.filter(status="sending").count() == 201  # leased to the dead
    world.clock.advance(seconds=15)  # its leases run out

    restarted = Outbox(world.app.adapters, world.app.services)
    seen_telegram: dict[str, Any] = {}
    seen_email: dict[str, Any] = {}
    telegram = when_all_sent(world.channels["telegram"], 50, world, seen_telegram)
    email = when_all_sent(world.channels["email"], 17, world, seen_email)
    console_seen: dict[str, Any] = {}
    console = when_all_sent(world.agents, 134, world, console_seen)

    await running_outbox(restarted, telegram, email, console)

    assert seen_telegram["console"] <= 5 and seen_email["console"] <= 10, (
        seen_telegram, seen_email)
    assert len({m.recipient for m in world.sent_to("telegram")}) == 50
    assert len({m.recipient for m in world.sent_to("email")}) == 17
    assert len(world.agents.sent) == 134
    assert set(await OutboxItem.all().values_list("status", flat=True)) == {"sent"}


async def test_a_channel_that_fails_every_send_does_not_stop_the_others(
    db: str, tmp_path: Path
) -> None:
    """Slack refuses everything (an outage); Telegram customers are acknowledged as usual
    and the Slack rows wait for their retry, none lost."""
    # (no rate limit on Slack here: this is about failures, not waiting)
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0), agents={"console": ""},
                              outbox={"rate": {"slack": 1000.0, "telegram": 30.0}})
    refusing = world.app.outbox.adapters["slack"] = Refusing("slack", expected=20)
    for i in range(20):
        await world.write("slack", f"U{i}", "hola")
        await world.write("telegram", str(3000 + i), "hola")
    seen: dict[str, Any] = {}
    acknowledged = when_all_sent(world.channels["telegram"], 20, world, seen)

    await running_outbox(world.app.outbox, acknowledged, refusing.all_refused)

    assert len({m.recipient for m in world.sent_to("telegram")}) == 20
    slack = await OutboxItem.filter(channel="slack").values_list("status", "last_error")
    assert slack == [("pending", "503 service unavailable")] * 20  # each to be tried again


async def test_a_channel_that_never_answers_does_not_stop_the_others(
    db: str, tmp_path: Path
) -> None:
    """The email server takes the connection and never answers; Telegram customers are
    still acknowledged, and email's backlog waits for it."""
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0), agents={"console": ""},
                              outbox={"stop_timeout": 0.2})
    silent = world.app.outbox.adapters["email"] = Silent("email")
    for i in range(5):
        await world.write("email", f"ana{i}@example.test", "Hola")
    for i in range(5):
        await world.write("telegram", str(4000 + i), "hola")
    seen: dict[str, Any] = {}
    acknowledged = when_all_sent(world.channels["telegram"], 5, world, seen)

    await running_outbox(world.app.outbox, silent.called, acknowledged)

    assert silent.sent == []
    statuses = await OutboxItem.filter(channel="email").order_by("id").values_list(
        "status", flat=True)
    # the one on the wire may have reached the server: it comes back after its lease
    assert statuses == ["sending", "pending", "pending", "pending", "pending"]


async def _run_until(world: World, *signals: asyncio.Event) -> tuple[asyncio.Event,
                                                                     asyncio.Task[None]]:
    """`App.run` (as `centralita run` runs it, without HTTP) until every signal is set."""
    stop = asyncio.Event()
    task = asyncio.create_task(world.app.run(stop, listen=None, tick=False))
    await asyncio.wait_for(asyncio.gather(*(s.wait() for s in signals)), 30)
    return stop, task


async def test_a_gateway_stopping_with_a_backlog_on_a_silent_channel_stops_within_its_timeout(
    db: str, tmp_path: Path
) -> None:
    """SIGTERM while the email server does not answer and five acknowledgements wait for
    it: the gateway is gone within `[outbox] stop_timeout`; the four never sent are
    pending again — the next start sends them at once, not after their lease — and the
    one on the wire comes back when its lease runs out. None is lost."""
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0), agents={"console": ""},
                              outbox={"stop_timeout": 0.5})
    silent = world.app.outbox.adapters["email"] = Silent("email")
    for i in range(5):
        await world.write("email", f"ana{i}@example.test", "Hola")
    await world.write("telegram", "4100", "hola")
    acknowledged = when_all_sent(world.channels["telegram"], 1, world, {})
    stop, task = await _run_until(world, silent.called, acknowledged)

    began = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 30)
    assert time.monotonic() - began < 5  # 0.5 s, with room for a loaded machine
    rows = await OutboxItem.filter(channel="email").order_by("id").values(
        "status", "lease_until", "attempts")
    assert [r["status"] for r in rows] == ["sending"] + ["pending"] * 4
    assert all(r["lease_until"] is None and r["attempts"] == 0 for r in rows[1:]), rows
    assert (await OutboxItem.get(channel="telegram")).status == "sent"

    # The next start, with the email server answering again.
    world.app.outbox.adapters["email"] = world.channels["email"]
    restarted = Outbox(world.app.outbox.adapters, world.app.services)
    assert await restarted.dispatch_once() == 4
    world.clock.advance(minutes=2)
    assert await restarted.dispatch_once() == 1
    assert sorted(m.recipient for m in world.sent_to("email")) == [
        f"ana{i}@example.test" for i in range(5)]


async def test_a_send_in_flight_at_stop_finishes_and_is_recorded_and_the_rest_wait(
    db: str, tmp_path: Path
) -> None:
    """SIGTERM while the email server is slow to answer one acknowledgement: that one
    finishes and is recorded as sent; the gateway sends nothing more and leaves the
    other four pending for the next start."""
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0), agents={"console": ""},
                              outbox={"stop_timeout": 10})
    silent = world.app.outbox.adapters["email"] = Silent("email")
    for i in range(5):
        await world.write("email", f"ana{i}@example.test", "Hola")
    stop, task = await _run_until(world, silent.called)

    stop.set()
    await asyncio.sleep(0)  # the gateway begins to stop; then the server answers
    silent.answer.set()
    await asyncio.wait_for(task, 30)

    assert [m.recipient for m in silent.sent] == ["ana0@example.test"]
    statuses = await OutboxItem.filter(channel="email").order_by("id").values_list(
        "status", flat=True)
    assert statuses == ["sent"] + ["pending"] * 4
