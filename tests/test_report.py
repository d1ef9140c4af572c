"""The service report a support lead reads on Monday evening: first response, SLA, resolution,
first-contact resolution, satisfaction and what is still unanswered — built from tickets
that went through the real pipeline, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gateway.core.messages import Inbound, Outbound, Party, ThreadHint
from gateway.desk.notices import queue
from gateway.desk.report import ChannelFigures, format_minutes, percentile, service_report
from gateway.desk.tickets import resolve
from gateway.store.models import Ticket
from tests.conftest import World, build_world, santiago
from tests.test_cli import assert_user_error, centralita, write_settings

MONDAY_EVENING = santiago(2026, 11, 23, 18, 0)
LAST_WEEK = santiago(2026, 11, 16, 18, 0)


async def answer(world: World, number: int, text: str = "Hola, ya lo revisamos.") -> None:
    await world.write("slack", "U0AGENT", text, kind="agent", name="Laura",
                      ticket_number=number, conversation=None)
    await world.deliver()


async def send_survey(world: World, number: int) -> None:
    """What the scheduler will do after resolution: a survey on the customer's channel."""
    ticket = await Ticket.get(number=number)
    await queue(ticket, Outbound(channel=ticket.channel, recipient="customer", text="¿Qué tal?",
                                 ticket_number=number, kind="survey", automatic=True),
                world.clock.now())
    await world.deliver()


async def score(world: World, channel: str, address: str, number: int, stars: int) -> None:
    await world.channels[channel].inject(Inbound(
        channel=channel, sender=Party("customer", address), text=str(stars), kind="score",
        external_id=f"score-{number}", thread=ThreadHint(ticket_number=number)))
    await world.deliver()


def by_channel(rows: list[ChannelFigures]) -> dict[str, ChannelFigures]:
    assert rows[-1].channel == "all"
    return {r.channel: r for r in rows}


@pytest.fixture
async def monday(db: str, tmp_path: Path) -> World:
    """Sunday 22:30 María writes on Telegram; on Monday three customers write by email at
    10:00 and Laura answers, resolves, and customers rate us — see the comments."""
    world = await build_world(tmp_path, santiago(2026, 11, 22, 22, 30))
    maria = await world.write("telegram", "12345", "Mi pedido no llegó", name="María")
    world.clock.set(santiago(2026, 11, 23, 9, 5))
    await answer(world, maria.ticket_number)  # 5 business minutes, 635 on the calendar
    world.clock.set(santiago(2026, 11, 23, 10, 0))
    ana = await world.write("email", "ana@example.test", "Necesito la factura", name="Ana")
    bea = await world.write("email", "bea@example.test", "No puedo entrar", name="Bea")
    await world.write("email", "carla@example.test", "¿Hacen envíos?", name="Carla")
    await world.deliver()
    world.clock.set(santiago(2026, 11, 23, 10, 20))
    await answer(world, ana.ticket_number)  # 20 minutes (email: 60 to answer)
    world.clock.set(santiago(2026, 11, 23, 10, 50))
    await answer(world, bea.ticket_number)  # 50 minutes; Carla is never answered
    world.clock.set(santiago(2026, 11, 23, 11, 0))
    await resolve(ana.ticket_number, "Laura", world.clock.now())  # one answer settled it
    world.clock.set(santiago(2026, 11, 23, 11, 30))
    await world.write("email", "bea@example.test", "Sigue sin funcionar", name="Bea",
                      ticket_number=bea.ticket_number)
    world.clock.set(santiago(2026, 11, 23, 11, 40))
    await answer(world, bea.ticket_number, "Prueba ahora, por favor.")
    world.clock.set(santiago(2026, 11, 23, 12, 0))
    await resolve(bea.ticket_number, "Laura", world.clock.now())  # two answers
    await resolve(maria.ticket_number, "Laura", world.clock.now())  # one answer
    for number in (maria.ticket_number, ana.ticket_number, bea.ticket_number):
        await send_survey(world, number)
    world.clock.set(santiago(2026, 11, 23, 12, 30))
    await score(world, "email", "ana@example.test", ana.ticket_number, 5)
    await score(world, "telegram", "12345", maria.ticket_number, 4)  # Bea does not answer
    world.clock.set(MONDAY_EVENING)
    return world


async def test_the_lead_reads_mondays_figures_per_channel_and_for_all(monday: World) -> None:
    rows = await service_report(LAST_WEEK, MONDAY_EVENING, sla=monday.app.services.sla)
    assert [r.channel for r in rows] == ["email", "telegram", "all"]
    email, telegram, every = (by_channel(rows)[c] for c in ("email", "telegram", "all"))

    assert (email.tickets, email.answered, email.unanswered) == (3, 2, 1)
    assert email.first_response_median == 35 and email.first_response_p90 == 50
    assert email.first_response_business_median == 35
    # Ana and Bea in time; Carla is past her due time with no answer: missed.
    assert (email.sla_met, email.sla_measured) == (2, 3)
    assert email.sla_met_pct == pytest.approx(66.67, abs=0.01)
    assert email.resolved == 2 and email.resolution_median == 90  # 60 and 120 minutes
    assert (email.first_contact_resolved, email.first_contact_resolution_pct) == (1, 50)
    assert email.csat_average == 5 and email.csat_responses == 1
    assert email.surveys_sent == 2 and email.csat_response_rate_pct == 50

    # María wrote on Sunday night: 635 minutes on the calendar, 5 of them open.
    assert telegram.tickets == 1 and telegram.unanswered == 0
    assert telegram.first_response_median == 635
    assert telegram.first_response_business_median == 5
    assert telegram.sla_met_pct == 100 and telegram.resolution_median == 810
    assert telegram.first_contact_resolution_pct == 100
    assert telegram.csat_average == 4 and telegram.csat_response_rate_pct == 100

    assert (every.tickets, every.answered, every.unanswered) == (4, 3, 1)
    assert every.first_response_median == 50 and every.first_response_p90 == 635
    assert every.first_response_business_median == 20
    assert every.first_response_business_p90 == 50
    assert (every.sla_met, every.sla_measured, every.sla_met_pct) == (3, 4, 75)
    assert every.resolution_median == 120
    assert (every.first_contact_resolved, every.resolved) == (2, 3)
    assert every.csat_average == 4.5 and every.csat_responses == 2
    assert every.surveys_sent == 3
    assert every.csat_response_rate_pct == pytest.approx(66.67, abs=0.01)


async def test_one_channel_and_no_sla_clock(monday: World) -> None:
    rows = await service_report(LAST_WEEK, MONDAY_EVENING, channel="telegram")
    assert [r.channel for r in rows] == ["telegram", "all"]
    assert rows[0] == replace(rows[1], channel="telegram")
    assert rows[0].first_response_business_median is None  # neither sla nor hours given
    hours = await service_report(LAST_WEEK, MONDAY_EVENING, channel="telegram",
                                 hours=monday.app.services.hours)
    assert hours[0].first_response_business_median == 5


async def test_only_tickets_created_in_the_period_count(monday: World) -> None:
    # From Monday 9:00 the Sunday-night ticket is out, even though it was answered later.
    rows = await service_report(santiago(2026, 11, 23, 9, 0), MONDAY_EVENING)
    assert [r.channel for r in rows] == ["email", "all"] and rows[-1].tickets == 3
    # `until` is excluded: tickets created at 10:00 do not count up to 10:00.
    rows = await service_report(santiago(2026, 11, 23, 9, 0), santiago(2026, 11, 23, 10, 0))
    assert rows == [rows[0]] and rows[0].channel == "all" and rows[0].tickets == 0
    assert rows[0].first_response_median is None and rows[0].sla_met_pct is None
    assert rows[0].csat_average is None and rows[0].unanswered == 0


async def test_a_ticket_not_yet_due_is_not_counted_against_the_sla(world: World) -> None:
    await world.write("email", "carla@example.test", "¿Hacen envíos?", name="Carla")
    await world.deliver()  # written Monday 10:00, due 11:00
    early = await service_report(LAST_WEEK, santiago(2026, 11, 23, 10, 30))
    assert early[-1].unanswered == 1 and early[-1].sla_measured == 0
    assert early[-1].sla_met_pct is None
    late = await service_report(LAST_WEEK, santiago(2026, 11, 23, 11, 30))
    assert (late[-1].sla_met, late[-1].sla_measured, late[-1].sla_met_pct) == (0, 1, 0)


async def test_notes_and_withdrawn_words_are_not_answers_that_settle_a_ticket(
        world: World) -> None:
    first = await world.write("telegram", "777", "Hola", name="Luis")
    await world.write("slack", "U0AGENT", "Cliente frecuente", kind="agent", internal=True,
                      ticket_number=first.ticket_number, conversation=None)
    ticket = await Ticket.get(number=first.ticket_number)
    assert ticket.first_response_at is None  # a note is no answer
    world.clock.advance(minutes=3)
    await answer(world, first.ticket_number)
    await resolve(first.ticket_number, "Laura", world.clock.now())
    rows = await service_report(LAST_WEEK, MONDAY_EVENING)
    assert rows[-1].first_contact_resolution_pct == 100  # the note is not a second reply
    assert rows[-1].first_response_median == 3


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([20, 50], 90) == 50
    assert percentile(range(1, 11), 90) == 9
    assert percentile(range(1, 11), 50) == 5
    assert percentile([7], 90) == 7
    assert percentile([], 90) is None


def test_minutes_read_like_a_person_would_say_them() -> None:
    assert format_minutes(45) == "45 min"
    assert format_minutes(200) == "3 h 20 min"
    assert format_minutes(180) == "3 h"
    assert format_minutes(2 * 1440 + 4 * 60) == "2 d 4 h"
    assert format_minutes(1440 + 20) == "1 d"
    assert format_minutes(59.7) == "1 h"
    assert format_minutes(0.2) == "<1 min"
    assert format_minutes(0) == "0 min"
    assert format_minutes(None) == "—"
    assert format_minutes(200, lang="en") == "3 h 20 min"


# --- the command -----------------------------------------------------------------------


def test_the_lead_runs_the_weekly_report_after_a_message(tmp_path: Path) -> None:
    write_settings(tmp_path)
    assert centralita(tmp_path, "migrate").code == 0
    empty = centralita(tmp_path, "report")
    assert empty.code == 0, empty
    assert empty.out.strip().startswith("No tickets created") and empty.err == "", empty
    assert len(empty.out.strip().splitlines()) == 1, empty
    sent = centralita(tmp_path, "simulate", "--channel", "telegram", "--from", "12345",
                      "--name", "María", "--text", "Hola, mi pedido no llegó")
    assert sent.code == 0, sent
    run = centralita(tmp_path, "report", "--since", "7d")
    assert run.code == 0, run
    assert "America/Santiago" in run.out
    for column in ("tickets", "1st response median", "p90", "SLA met", "resolution median",
                   "first-contact resolution", "CSAT", "unanswered"):
        assert column in run.out, (column, run)
    for row in ("telegram", "all"):
        assert f"│ {row} " in run.out, run
    assert "email" not in run.out
    only_email = centralita(tmp_path, "report", "--channel", "email")
    assert only_email.code == 0 and "No tickets created on email" in only_email.out, only_email


def test_a_period_that_is_not_a_duration_is_refused_naming_since(tmp_path: Path) -> None:
    write_settings(tmp_path)
    assert_user_error(centralita(tmp_path, "report", "--since", "banana"),
                      "--since", "7d", "'banana'")


def test_since_must_reach_back_some_time(tmp_path: Path) -> None:
    write_settings(tmp_path)
    assert_user_error(centralita(tmp_path, "report", "--since", "0d"), "--since")

