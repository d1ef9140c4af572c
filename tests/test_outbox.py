"""The outbox: what happens to a message on its way out when platforms misbehave.

Every test runs on SQLite and on a real PostgreSQL server, with a clock that only moves
when told (nothing here sleeps for real).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.memory import MemoryAdapter
from gateway.core.messages import Inbound, Party, PermanentError, ThreadHint, TransientError
from gateway.outbox.dispatcher import Outbox
from gateway.store.models import AuditEvent, Message, OutboxItem
from tests.conftest import World, build_world, santiago
from tests.mailservers import eventually


class Crash(BaseException):
    """The process dies (kill -9) right after the platform accepted the message."""


async def _row(world: World, kind: str = "ack") -> OutboxItem:
    return await OutboxItem.get(kind=kind)


async def test_a_network_hiccup_delays_the_acknowledgement_but_it_arrives(world: World) -> None:
    world.channels["telegram"].fail_next(TransientError("connection reset"))
    await world.write("telegram", "12345", "Hola", name="María")

    await world.deliver()
    row = await _row(world)
    assert world.sent_to("telegram") == []
    assert row.status == "pending" and row.attempts == 1 and row.last_error == "connection reset"
    delay = (row.next_attempt_at - world.clock.now()).total_seconds()
    assert 5 <= delay <= 10  # backoff_base 10s with jitter between half and all of it

    world.clock.advance(seconds=10)
    await world.deliver()
    assert len(world.sent_to("telegram", "12345")) == 1
    assert (await _row(world)).status == "sent"


async def test_backoff_doubles_up_to_the_ceiling(world: World) -> None:
    outbox = world.app.outbox
    delays = [outbox.backoff(n, None).total_seconds() for n in range(1, 12)]
    assert all(5 <= d <= 10 for d in delays[:1])
    assert all(d <= 3600 for d in delays) and delays[-1] >= 1800


async def test_a_flood_warning_is_honoured_never_retrying_sooner(world: World) -> None:
    world.channels["telegram"].fail_next(TransientError("Too Many Requests", retry_after=37))
    await world.write("telegram", "12345", "Hola")
    await world.deliver()

    world.clock.advance(seconds=36)
    await world.deliver()
    assert world.sent_to("telegram") == []  # still inside the platform's retry-after
    world.clock.advance(seconds=5)
    await world.deliver()
    assert len(world.sent_to("telegram")) == 1


async def test_a_customer_who_blocked_the_bot_is_reported_to_the_agents(world: World) -> None:
    world.channels["telegram"].fail_next(PermanentError("Forbidden: bot was blocked by the user"))
    accepted = await world.write("telegram", "12345", "Hola", name="María")
    await world.deliver()

    row = await _row(world)
    assert row.status == "dead" and "blocked" in row.last_error
    assert await AuditEvent.filter(action="delivery.failed").exists()
    note = await Message.get(kind="delivery_failed")
    assert note.visibility == "internal" and "blocked" in note.text
    notices = [m for m in world.agents.sent if m.kind == "delivery_failed"]
    assert len(notices) == 1 and f"#{accepted.ticket_number}" in notices[0].text
    assert "blocked" in notices[0].text


async def test_after_too_many_transient_failures_the_message_is_given_up(world: World) -> None:
    world.channels["email"].fail_next(*[TransientError("451 try later")] * 10)
    await world.write("email", "ana@example.test", "Hola")
    for _ in range(10):
        await world.deliver()
        world.clock.advance(hours=1)
    row = await _row(world)
    assert row.status == "dead" and row.attempts == 10
    assert [m.kind for m in world.agents.sent].count("delivery_failed") == 1


async def test_an_adapter_bug_is_retried_and_does_not_stop_the_queue(world: World) -> None:
    class Broken(MemoryAdapter):
        async def send(self, message):  # type: ignore[no-untyped-def]
            raise KeyError("oops")

    world.app.outbox.adapters["slack"] = Broken("slack")
    await world.write("slack", "U1", "hola")
    await world.write("telegram", "12345", "hola")
    await world.deliver()
    assert len(world.sent_to("telegram")) == 1
    row = await OutboxItem.get(channel="slack", kind="ack")
    assert row.status == "pending" and "KeyError" in row.last_error


async def test_a_crash_between_send_and_commit_repeats_the_send_never_drops_it(
    world: World,
) -> None:
    telegram = world.channels["telegram"]

    def die(_message: object) -> None:
        raise Crash

    telegram.after_send = die
    await world.write("telegram", "12345", "Hola")
    with pytest.raises(Crash):
        await world.app.outbox.dispatch_once()
    assert len(telegram.sent) == 1  # the platform got it, but we never recorded that
    assert (await _row(world)).status == "sending"

    # A new process starts; the dead one's lease runs out and the row is sent again.
    telegram.after_send = None
    restarted = Outbox(world.app.adapters, world.app.services)
    assert await restarted.dispatch_once() == 0  # still leased to the dead process
    world.clock.advance(minutes=2)
    # (the agents' notices claimed with it in the crashed pass may come back too)
    assert await restarted.dispatch_once() >= 1
    assert len(telegram.sent) == 2 and telegram.sent[0].text == telegram.sent[1].text
    assert (await _row(world)).status == "sent"


async def test_a_crash_after_the_commit_and_before_the_send_delays_the_ack_but_keeps_it(
    world: World,
) -> None:
    # María's message is stored and her acknowledgement handed to this process's
    # dispatcher (written leased to it) — and the process dies before sending anything.
    await world.write("telegram", "12345", "Hola", name="María")
    assert (await _row(world)).status == "sending"

    restarted = Outbox(world.app.adapters, world.app.services)
    await restarted.dispatch_once()
    assert world.sent_to("telegram") == []  # the short lease still holds
    world.clock.advance(seconds=15)
    await restarted.dispatch_once()
    assert len(world.sent_to("telegram")) == 1
    assert (await _row(world)).status == "sent"


async def test_the_platform_id_is_kept_for_threading(world: World) -> None:
    await world.write("email", "ana@example.test", "Hola", external_id="<m1@example.test>")
    await world.deliver()
    row = await _row(world)
    message = await Message.get(id=row.message_id)
    assert row.platform_id and message.external_id == row.platform_id


async def test_messages_for_a_channel_without_a_running_adapter_wait_for_it(
    world: World,
) -> None:
    del world.app.outbox.adapters["email"]
    await world.write("email", "ana@example.test", "Hola")
    await world.deliver()
    assert (await _row(world)).status == "pending"


async def test_sending_respects_the_channel_rate_limit(db: str, tmp_path) -> None:
    from tests.conftest import build_world, santiago

    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              outbox={"rate": {"telegram": 2.0}}, agents={"console": ""})
    for i in range(6):
        await world.write("telegram", str(100 + i), "hola")
    start = world.clock.monotonic()
    await world.deliver()
    assert len(world.sent_to("telegram")) == 6
    # a burst of 2, then 2 a second: 4 more take at least 2 seconds
    assert world.clock.monotonic() - start >= 2.0


async def test_an_answer_leaves_while_the_one_before_waits_to_be_recorded(
    db: str, tmp_path
) -> None:
    from tortoise.transactions import in_transaction

    from tests.conftest import build_world, santiago

    # One row per pass, so that María's and Juan's acknowledgements take two passes.
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              outbox={"batch": 1}, agents={"console": ""})
    await world.write("telegram", "111", "Hola", name="María")
    await world.write("telegram", "222", "Hola", name="Juan")

    # Then the database is busy (a batch of the pipeline holds it) for a while.
    held, free = asyncio.Event(), asyncio.Event()

    async def busy() -> None:
        async with in_transaction():
            # PostgreSQL: the rows are locked; SQLite: the gateway's one connection is.
            await OutboxItem.filter(kind="ack").select_for_update()
            held.set()
            await free.wait()

    blocker = asyncio.create_task(busy())
    await held.wait()
    stop = asyncio.Event()
    dispatcher = asyncio.create_task(world.app.outbox.run(stop))
    # Both leave while the database is still held (María's record waits for it).
    await eventually(lambda: len(world.sent_to("telegram")) == 2, within=10)
    # Juan's did not wait for María's to be recorded.
    assert sorted(m.recipient for m in world.sent_to("telegram")) == ["111", "222"]

    free.set()
    await blocker
    stop.set()
    world.app.outbox.wake()
    await asyncio.wait_for(dispatcher, 10)
    assert [row.status for row in await OutboxItem.filter(kind="ack").order_by("id")] == [
        "sent", "sent"]
    assert len(world.sent_to("telegram")) == 2


async def test_two_dispatchers_never_send_the_same_row_twice(world: World) -> None:
    for i in range(40):
        await world.write("telegram", str(500 + i), "hola")
    second = Outbox(world.app.adapters, world.app.services)
    await asyncio.gather(world.deliver(), *(second.dispatch_once() for _ in range(5)))
    await world.deliver()
    recipients = [m.recipient for m in world.sent_to("telegram")]
    assert len(recipients) == 40 and len(set(recipients)) == 40


async def _until(outbox: Outbox, done: asyncio.Event, within: float = 30) -> None:
    """Run `outbox` (its lanes) until `done` is set, then stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(outbox.run(stop))
    try:
        await asyncio.wait_for(done.wait(), within)
    finally:
        stop.set()
        await asyncio.wait_for(task, within)


def _counted(adapter: MemoryAdapter, count: int, also: MemoryAdapter | None = None,
             seen: list[int] | None = None) -> asyncio.Event:
    """Set once `adapter` has sent `count` messages; `seen` then gets how many `also` had."""
    done = asyncio.Event()

    def check(_message: object) -> None:
        if len(adapter.sent) >= count and not done.is_set():
            if also is not None and seen is not None:
                seen.append(len(also.sent))
            done.set()

    adapter.after_send = check
    return done


async def test_pedros_answers_reach_maría_in_the_order_he_wrote_them(world: World) -> None:
    first = await world.write("telegram", "555", "Mi pedido no llegó", name="María")
    await world.deliver()
    for text in ("Hola María.", "Tu pedido sale hoy.", "Te llega el jueves."):
        await world.write("slack", "U0PEDRO", text, kind="agent", name="Pedro",
                          ticket_number=first.ticket_number, conversation=None)

    await _until(world.app.outbox, _counted(world.channels["telegram"], 4))

    answers = [m.text.split("\n")[0] for m in world.sent_to("telegram", "555")[1:]]
    assert answers == ["Hola María.", "Tu pedido sale hoy.", "Te llega el jueves."]


async def test_a_slack_customer_does_not_queue_behind_the_console_on_the_same_slack(
    db: str, tmp_path: Path
) -> None:
    """The console is Slack too, one message a second, with 30 posts to make for 15 new
    Telegram tickets; then three customers write on Slack. Their acknowledgements have a
    lane, and a limit, of their own: they leave while the console is on its first posts."""
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              agents={"console": "slack", "channel": "C0AGENTS"},
                              outbox={"rate": {"slack": 1.0, "telegram": 30.0}})
    for i in range(15):
        await world.write("telegram", str(700 + i), "hola", name=f"Cliente {i}")
    for i in range(3):
        await world.write("slack", f"U0CLIENT{i}", "hola", name=f"Cliente {i}")
    acks: list[object] = []
    posts: list[object] = []
    done, seen = asyncio.Event(), []

    def sent(message: object) -> None:
        (posts if getattr(message, "audience", "") == "agents" else acks).append(message)
        if len(acks) == 3 and not done.is_set():
            seen.append(len(posts))
            done.set()

    world.channels["slack"].after_send = sent
    await _until(world.app.outbox, done)
    assert seen[0] <= 8, seen  # of 36 (one queue would have posted the first 30 before)


async def test_a_message_that_arrives_while_the_gateway_stops_waits_pending_for_the_next_start(
    world: World,
) -> None:
    stop, started = asyncio.Event(), asyncio.Event()
    running = asyncio.create_task(world.app.run(stop, listen=None, tick=False,
                                                started=started.set))
    await asyncio.wait_for(started.wait(), 30)
    stop.set()
    await asyncio.wait_for(running, 30)
    # One more message was still on its way through the pipeline.
    await world.app.gateway.receive(Inbound(
        channel="telegram", sender=Party("customer", "12345", "María"), text="Hola",
        external_id="tg-last", thread=ThreadHint(conversation="12345")))
    row = await _row(world)
    assert row.status == "pending" and row.lease_until is None  # not leased to the gone

    restarted = Outbox(world.app.adapters, world.app.services)
    await restarted.dispatch_once()  # at once, not after a lease
    assert len(world.sent_to("telegram", "12345")) == 1


async def test_a_gateway_stopping_late_never_gives_back_a_row_another_process_took_over(
    world: World,
) -> None:
    """Its lease ran out and another process claimed the row: releasing it would let it
    be sent twice."""
    from gateway.store.claims import claim_due, release

    await world.write("telegram", "12345", "Hola")
    row = await _row(world)  # handed over to this process, leased
    mine = {row.id: row.lease_until}
    world.clock.advance(seconds=15)
    assert await claim_due(OutboxItem, due="next_attempt_at", claimed="sending",
                           now=world.clock.now(), lease=timedelta(minutes=2), limit=5,
                           channel="telegram") == [row.id]  # another process takes it
    assert await release(OutboxItem, claimed="sending", now=world.clock.now(),
                         leases=mine) == 0
    assert (await _row(world)).status == "sending"
    # The process holding the lease gives it back: due at once, the attempt not counted.
    other = await _row(world)
    assert await release(OutboxItem, claimed="sending", now=world.clock.now(),
                         leases={other.id: other.lease_until}) == 1
    back = await _row(world)
    assert back.status == "pending" and back.lease_until is None and back.attempts == 1


def test_a_stop_timeout_that_is_not_a_bounded_duration_is_refused_naming_the_key(
    tmp_path: Path,
) -> None:
    from gateway.settings import SettingsError
    from tests.conftest import make_settings

    with pytest.raises(SettingsError, match=r"outbox\.stop_timeout"):
        make_settings(tmp_path, outbox={"stop_timeout": "soon"})
    with pytest.raises(SettingsError, match=r"outbox\.stop_timeout"):
        make_settings(tmp_path, outbox={"stop_timeout": "0s"})
    assert make_settings(tmp_path).outbox.stop_timeout == timedelta(seconds=5)
