"""The scheduler, on a controllable clock: customers are kept informed while they wait,
agents are warned before a deadline, resolved tickets get the survey, the check-in and
close; a customer's reply cancels what was coming; a restart fires what came due once;
two processes on PostgreSQL never fire the same action twice.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.core.commands import Pending, Resolve
from gateway.store.models import AuditEvent, Message, ScheduledAction, Ticket
from scheduler.runner import Scheduler
from tests.conftest import ROOT, World, build_world, santiago


async def tick(world: World) -> int:
    """The scheduler looks for due work, then the outbox delivers what it queued."""
    fired = await world.app.scheduler.run_due()
    await world.deliver()
    return fired


def kinds(world: World, channel: str = "telegram", to: str = "555") -> list[str]:
    return [m.kind for m in world.sent_to(channel, to)]


async def test_maria_hears_from_us_every_4_business_hours_at_most_3_times(world: World) -> None:
    await world.write("telegram", "555", "Mi pedido no llegó", name="María")  # Monday 10:00
    await tick(world)
    assert kinds(world) == ["ack"]
    world.clock.advance(hours=4)  # 14:00
    await tick(world)
    assert kinds(world) == ["ack", "progress"]
    progress = world.sent_to("telegram", "555")[-1]
    assert "#1001" in progress.text
    world.clock.advance(hours=4)  # 18:00
    await tick(world)
    world.clock.advance(hours=5)  # 23:00: only 1 business hour since 18:00
    await tick(world)
    assert kinds(world).count("progress") == 2
    world.clock.set(santiago(2026, 11, 24, 12, 0))  # Tuesday 12:00: 4 business hours
    await tick(world)
    world.clock.advance(days=3)
    await tick(world)
    assert kinds(world).count("progress") == 3  # progress_max


async def test_an_agents_reply_restarts_the_clock(world: World) -> None:
    first = await world.write("telegram", "555", "Hola", name="María")
    world.clock.advance(hours=3)
    await world.write("slack", "U0LAURA", "Lo estoy viendo", kind="agent", name="Laura",
                      ticket_number=first.ticket_number, conversation=None)
    world.clock.advance(hours=2)  # 5 h after her message, 2 h after Laura's
    await tick(world)
    assert "progress" not in kinds(world)
    world.clock.advance(hours=2)
    await tick(world)
    assert kinds(world).count("progress") == 1


async def test_a_ticket_written_at_18h_gets_its_update_the_next_day_at_noon(
        world: World) -> None:
    world.clock.set(santiago(2026, 11, 23, 18, 0))
    await world.write("telegram", "555", "Hola", name="María")
    progress = await ScheduledAction.get(kind="progress")
    assert progress.due_at == santiago(2026, 11, 24, 12, 0)  # 1 h Monday + 3 h Tuesday


async def test_agents_are_warned_before_and_at_the_first_response_deadline(
        world: World) -> None:
    await world.write("telegram", "555", "Hola", name="María")  # due in 15 business min
    world.clock.advance(minutes=12)  # 80 %
    await tick(world)
    warnings = [m for m in world.agents.sent if m.kind == "sla_warning"]
    assert len(warnings) == 1 and "80 %" in warnings[0].text and "#1001" in warnings[0].text
    world.clock.advance(minutes=3)
    await tick(world)
    warnings = [m for m in world.agents.sent if m.kind == "sla_warning"]
    assert len(warnings) == 2 and "vencido" in warnings[1].text
    assert await AuditEvent.filter(action__in=["sla.warn", "sla.breach"]).count() == 2


async def test_a_sunday_night_ticket_is_warned_at_80_percent_of_the_working_minutes(
        db: str, tmp_path: Path) -> None:
    # María writes at 22:30 on Sunday: her 15 business minutes start Monday at 9:00.
    world = await build_world(tmp_path, santiago(2026, 11, 22, 22, 30))
    await world.write("telegram", "555", "Hola", name="María")
    warning = await ScheduledAction.get(kind="sla_warn:first_response")
    assert warning.due_at == santiago(2026, 11, 23, 9, 12)  # 12 of the 15 minutes, not 7:06
    world.clock.set(santiago(2026, 11, 23, 9, 11))
    await tick(world)
    assert not [m for m in world.agents.sent if m.kind == "sla_warning"]
    world.clock.set(santiago(2026, 11, 23, 9, 12))
    await tick(world)
    warnings = [m for m in world.agents.sent if m.kind == "sla_warning"]
    assert len(warnings) == 1 and "80 %" in warnings[0].text


async def test_after_an_outage_past_the_deadline_the_warning_then_the_breach_arrive(
        world: World) -> None:
    await world.write("telegram", "555", "Hola", name="María")  # due in 15 business min
    world.clock.advance(minutes=40)  # the gateway was down through both moments
    await tick(world)
    await tick(world)  # the warning planned the breach, due already
    warnings = [m for m in world.agents.sent if m.kind == "sla_warning"]
    assert len(warnings) == 2
    assert "80 %" in warnings[0].text and "vencido" in warnings[1].text
    await tick(world)
    assert len([m for m in world.agents.sent if m.kind == "sla_warning"]) == 2


async def test_no_warning_when_an_agent_answered_in_time(world: World) -> None:
    first = await world.write("telegram", "555", "Hola", name="María")
    world.clock.advance(minutes=5)
    await world.write("slack", "U0LAURA", "Hola María", kind="agent", name="Laura",
                      ticket_number=first.ticket_number, conversation=None)
    world.clock.advance(minutes=20)
    await tick(world)
    assert not [m for m in world.agents.sent if m.kind == "sla_warning"]


async def test_after_resolution_thanks_survey_check_in_and_close(world: World) -> None:
    first = await world.write("telegram", "555", "Hola", name="María")
    await world.agent_does(Resolve, first.ticket_number)
    await tick(world)
    assert kinds(world)[-1] == "resolved"
    world.clock.advance(hours=1)
    await tick(world)
    assert kinds(world)[-1] == "survey"
    world.clock.advance(days=2)
    await tick(world)
    assert kinds(world)[-1] == "follow_up"
    world.clock.advance(days=5)
    await tick(world)
    ticket = await Ticket.get(number=first.ticket_number)
    assert ticket.status == "closed" and kinds(world)[-1] == "closed"
    # The card on the agents' console is redrawn: the ticket closed without them.
    assert world.agents.sent[-1].kind == "card_update"
    assert world.agents.sent[-1].ticket_number == first.ticket_number


async def test_a_customer_reply_after_resolution_reopens_and_cancels_what_was_coming(
        world: World) -> None:
    first = await world.write("telegram", "555", "Hola", name="María")
    await world.agent_does(Resolve, first.ticket_number)
    await tick(world)
    world.clock.advance(minutes=30)
    await world.write("telegram", "555", "En realidad sigue fallando", name="María")
    assert (await Ticket.get(number=first.ticket_number)).status == "open"
    world.clock.advance(days=10)
    await tick(world)
    assert "survey" not in kinds(world) and "closed" not in kinds(world)
    assert await ScheduledAction.filter(kind__in=["survey", "follow_up", "close"],
                                        status="cancelled").count() == 3


async def test_an_email_customer_answers_the_survey_with_a_number(world: World) -> None:
    first = await world.write("email", "ana@example.test", "Consulta", external_id="<a1@x>")
    await world.agent_does(Resolve, first.ticket_number)
    await tick(world)
    world.clock.advance(hours=1)
    await tick(world)
    survey = world.sent_to("email", "ana@example.test")[-1]
    assert survey.kind == "survey"
    await world.write("email", "ana@example.test", "5", external_id="<a2@x>",
                      reply_to=("<a1@x>",))
    await world.write("email", "ana@example.test", "2", external_id="<a3@x>",
                      reply_to=("<a1@x>",))
    ticket = await Ticket.get(number=first.ticket_number)
    assert ticket.satisfaction == 5 and ticket.status == "resolved"


async def test_pending_on_the_customer_reminds_then_resolves(world: World) -> None:
    first = await world.write("telegram", "555", "Hola", name="María")
    await world.agent_does(Pending, first.ticket_number)
    await tick(world)
    world.clock.advance(days=2)
    await tick(world)
    assert kinds(world)[-1] == "pending_reminder"
    world.clock.advance(days=3)
    await tick(world)
    await tick(world)
    assert (await Ticket.get(number=first.ticket_number)).status == "resolved"
    assert kinds(world)[-1] == "resolved"


async def test_a_restart_fires_what_came_due_while_down_exactly_once(world: World) -> None:
    first = await world.write("telegram", "555", "Hola", name="María")
    await world.agent_does(Resolve, first.ticket_number)
    await tick(world)
    # The gateway is down for three days; a new process comes up.
    world.clock.advance(days=3)
    restarted = Scheduler(world.app.services, on_due=world.app.gateway.due,
                          wake=world.app.outbox.wake)
    assert await restarted.run_due() == 2  # the survey and the check-in, late
    assert max(restarted.lateness) >= timedelta(days=2).total_seconds()
    assert await restarted.run_due() == 0
    await world.deliver()
    assert kinds(world).count("survey") == 1 and kinds(world).count("follow_up") == 1


async def test_the_opening_digest_lists_what_arrived_while_closed(db: str,
                                                                  tmp_path: Path) -> None:
    world = await build_world(tmp_path, santiago(2026, 11, 21, 23, 0))  # Saturday night
    await world.write("telegram", "555", "Hola, ¿atienden el domingo?", name="María")
    world.clock.set(santiago(2026, 11, 22, 12, 0))
    await world.write("email", "ana@example.test", "Factura duplicada", name="Ana",
                      subject="Factura duplicada")
    world.clock.set(santiago(2026, 11, 23, 9, 0))  # Monday, we open
    digest = await world.app.scheduler.digest_if_due()
    assert digest is not None
    assert digest.text.index("#1001") < digest.text.index("#1002")
    assert await world.app.scheduler.digest_if_due() is None  # once per opening


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_two_processes_on_postgresql_never_fire_the_same_action(
        world: World, db_url: str, tmp_path: Path) -> None:
    for i in range(200):
        await world.write("telegram", str(7000 + i), "Hola", name=f"Cliente {i}")
    # Make every progress update due now for the real clock the processes use.
    await ScheduledAction.filter(kind="progress").update(
        due_at=santiago(2020, 1, 1, 9, 0))
    await ScheduledAction.exclude(kind="progress").update(status="cancelled")
    script = tmp_path / "fire.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio
        from gateway.store.db import database
        from gateway.app import assemble
        from gateway.settings import load_settings

        async def main():
            settings = load_settings({str(ROOT / "settings.toml")!r},
                                     database={{"url": {db_url!r}}},
                                     scheduler={{"batch": 7}})
            async with database(settings.database.url):
                runner = assemble(settings, adapters={{}}).scheduler
                fired = 0
                while (n := await runner.run_due()):
                    fired += n
                print(fired)

        asyncio.run(main())
    """))
    runs = [await asyncio.create_subprocess_exec(
        sys.executable, str(script), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE) for _ in range(2)]
    outputs = [await run.communicate() for run in runs]
    counts = [int(out.decode().split()[-1]) for out, _ in outputs]
    assert sum(counts) == 200, outputs
    assert all(counts), f"one process did all the work: {counts}"
    per_ticket = await Message.filter(kind="progress").values_list("ticket_id", flat=True)
    assert len(per_ticket) == 200 and len(set(per_ticket)) == 200
