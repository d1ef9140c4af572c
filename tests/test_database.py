"""The database underneath the pipeline: SQLite on the event loop's thread, and the plain
lookups the pipeline makes once per batch (`gateway.bulk.where_in`, `bulk.newest`)."""

from __future__ import annotations

import re
import sqlite3
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from tortoise import Tortoise, connections
from tortoise.exceptions import ValidationError
from tortoise.transactions import in_transaction

from gateway.store import bulk
from gateway.store.db import database, init_db, migrate
from gateway.store.models import Contact, Counter, Identity, OutboxItem, Ticket
from gateway.store.sqlite_engine import LoopSqliteClient
from tests.conftest import build_world, santiago


async def test_the_gateway_runs_sqlite_statements_on_its_own_thread(tmp_path) -> None:
    url = f"sqlite://{tmp_path}/c.sqlite3"
    await migrate(url)
    await Tortoise.close_connections()
    await init_db(url)
    try:
        client = connections.get("default")
        assert isinstance(client, LoopSqliteClient)
        await client.execute_query("SELECT 1")  # connects on first use
        seen: list[int] = []
        client._connection._conn.create_function(  # which thread runs the statement
            "whose", 0, lambda: seen.append(threading.get_ident()) or 1)
        await client.execute_query("SELECT whose()")
        assert seen == [threading.get_ident()]
        # The durability settings hold on this connection too.
        mode = await client.execute_query_dict("PRAGMA journal_mode")
        sync = await client.execute_query_dict("PRAGMA synchronous")
        assert mode[0]["journal_mode"] == "wal" and sync[0]["synchronous"] == 2  # FULL
        async with in_transaction():
            await Counter.create(name="ticket", value=1041)
    finally:
        await Tortoise.close_connections()
    # Committed is on disk: another connection (another process, say) reads it.
    with sqlite3.connect(tmp_path / "c.sqlite3") as other:
        assert other.execute("SELECT value FROM counter").fetchone() == (1041,)


async def test_a_failed_transaction_leaves_nothing_behind(tmp_path) -> None:
    url = f"sqlite://{tmp_path}/c.sqlite3"
    async with database(url, upgrade=True):
        with pytest.raises(RuntimeError):
            async with in_transaction():
                await Counter.create(name="ticket", value=7)
                raise RuntimeError("the batch failed half-way")
        assert await Counter.all().count() == 0
        await Counter.create(name="ticket", value=8)  # and the connection still works
        assert await Counter.all().values_list("value", flat=True) == [8]


async def test_the_batch_lookups_find_known_senders_and_each_chats_newest_ticket(
    db: str,
) -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    maria = await Contact.create(name="María", locale="es", created_at=now)
    await Identity.create(contact=maria, channel="telegram", address="12345", name="María")
    await Identity.create(contact=maria, channel="email", address="maria@example.test")
    for number, chat in ((1001, "12345"), (1002, "12345"), (1003, "999")):
        await Ticket.create(number=number, contact=maria, channel="telegram",
                            conversation=chat, subject="Hola", created_at=now,
                            updated_at=now)

    rows = await bulk.where_in(Identity, ("channel", "address", "contact_id"),
                               channel={"telegram"}, address=["12345", "67890"])
    assert rows == [{"channel": "telegram", "address": "12345", "contact_id": maria.id}]
    [contact] = await bulk.where_in(Contact, ("id", "name", "created_at"), id=[maria.id])
    assert contact["name"] == "María" and contact["created_at"] == now  # a datetime again
    assert await bulk.where_in(Identity, ("id",), channel=["telegram"], address=[]) == []

    newest = await bulk.newest(Ticket, ("channel", "conversation"), channel={"telegram"},
                               conversation={"12345", "999", "nobody"})
    numbers = {key: (await Ticket.get(id=last)).number for key, last in newest.items()}
    assert numbers == {("telegram", "12345"): 1002, ("telegram", "999"): 1003}


async def test_a_bulk_insert_stores_exactly_what_tortoise_would_and_refuses_the_same(
    db: str,
) -> None:
    """`bulk.insert` converts values with code generated per model; here it meets the
    odd values tortoise's own `create` accepts or refuses, side by side."""
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    maria = await Contact.create(name="María", locale="es", created_at=now)
    odd = {"contact_id": maria.id, "channel": "telegram", "subject": "x" * 300,
           "created_at": now, "updated_at": now.astimezone(ZoneInfo("America/Santiago")),
           "tags": ["vip", "urgente"], "reopened": True, "first_response_due": None}
    [ours] = await bulk.insert(Ticket, [{**odd, "number": 1001}])
    theirs = await Ticket.create(**{**odd, "number": 1002})
    assert ours.priority == theirs.priority == "normal"  # defaults, as tortoise fills them
    assert ours.tags == ["vip", "urgente"]
    fields = [name for name in Ticket._meta.db_fields if name not in ("id", "number")]
    stored = {t.number: t for t in await Ticket.filter(number__in=[1001, 1002])}
    assert {f: getattr(stored[1001], f) for f in fields} == \
        {f: getattr(stored[1002], f) for f in fields}

    too_long = {**odd, "number": 1003, "subject": "x" * 301}
    with pytest.raises(ValidationError):
        await Ticket.create(**too_long)
    with pytest.raises(ValidationError, match="subject"):
        await bulk.insert(Ticket, [too_long])
    assert await Ticket.filter(number=1003).count() == 0


async def test_a_bulk_update_sets_each_row_its_own_values(db: str) -> None:
    """How the outbox records a pass: each sent row gets its own platform id; a row
    given twice takes its last values."""
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    rows = [await OutboxItem.create(channel="telegram", audience="customer",
                                    recipient=str(n), kind="ack", text=f"Hola {n}",
                                    status="sending", next_attempt_at=now, created_at=now)
            for n in range(3)]
    first, second, third = rows
    await bulk.update(OutboxItem, ["status", "platform_id", "sent_at"], [
        {"id": first.id, "status": "sent", "platform_id": "m-1", "sent_at": now},
        {"id": second.id, "status": "sent", "platform_id": "m-x", "sent_at": now},
        {"id": second.id, "status": "sent", "platform_id": "m-2", "sent_at": now}])
    got = {r.id: r for r in await OutboxItem.all()}
    assert (got[first.id].status, got[first.id].platform_id) == ("sent", "m-1")
    assert (got[second.id].status, got[second.id].platform_id) == ("sent", "m-2")
    assert got[second.id].sent_at == now
    assert (got[third.id].status, got[third.id].platform_id) == ("sending", None)


BIG_TABLES = ("ticket", "message", "scheduled_action", "identity", "outbox", "audit_event",
              "attachment", "contact")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # SQLite's query plans
async def test_answering_a_ticket_reads_its_own_rows_not_every_tickets(
    db: str, tmp_path
) -> None:
    """With a year of tickets, an agent's reply, a customer's follow-up and the scheduler
    must stay as quick as on the first day: every statement they make finds the ticket's
    rows through an index. (Before 0004_ticket_lookups, cancelling the planned progress
    updates read every pending action of every ticket, and threading an answer read every
    message: ~70 ms per reply at 30,000 tickets, on the event loop's thread.)"""
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0))
    for n in range(20):
        await world.write("telegram", f"cliente-{n}", "Hola, mi pedido no llegó", name="Ana")
    first = await world.write("telegram", "555", "Mi pedido no llegó", name="María")
    await world.deliver()

    statements: list[str] = []
    client = connections.get("default")
    client._connection._conn.set_trace_callback(statements.append)
    await world.write("slack", "U0PEDRO", "Hola María, tu pedido sale hoy.", kind="agent",
                      name="Pedro", ticket_number=first.ticket_number, conversation=None)
    await world.write("telegram", "555", "¡Gracias! ¿Y cuándo llega?", name="María")
    await world.deliver()
    world.clock.advance(hours=3)
    await world.app.scheduler.run_due()
    await world.deliver()
    client._connection._conn.set_trace_callback(None)

    path = db.removeprefix("sqlite://").split("?")[0]
    slow: list[str] = []
    with sqlite3.connect(path) as other:
        for sql in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
                continue
            plan = [detail for *_, detail in other.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for table in BIG_TABLES:
                reads = [d for d in plan if d.startswith((f"SCAN {table}",
                                                          f"SEARCH {table} "))]
                # A lookup by ticket or by contact must search by it (or by primary
                # key), not read a whole table, or a range as wide as a status or a channel.
                for key in ("ticket_id", "contact_id"):
                    if re.search(rf'"{table}"\."{key}"=|[( ]"{key}"=', sql) and reads and \
                            not any(f"{key}=?" in d or "PRIMARY KEY" in d for d in reads):
                        slow.append(f"{reads}  <-  {sql[:150]}")
    assert len(statements) > 20  # the trace saw the work
    assert slow == []
