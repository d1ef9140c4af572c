"""The inbound pipeline, told as what customers and agents live through.

Every test runs on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

import asyncio

from gateway.store.models import AuditEvent, Contact, Identity, Message, OutboxItem, Ticket
from tests.conftest import World, build_world, santiago


async def test_maria_writes_on_sunday_night_and_gets_her_ticket_number_and_our_hours(
    db: str, tmp_path
) -> None:
    world = await build_world(tmp_path, santiago(2026, 11, 22, 22, 30))

    accepted = await world.write("telegram", "12345", "Hola, mi pedido no llegó", name="María")
    await world.deliver()

    assert accepted.new_ticket and accepted.ticket_number == 1001
    [ack] = world.sent_to("telegram", "12345")
    assert ack.kind == "ack_closed" and ack.automatic
    assert ack.subject == ""  # Telegram shows no subject: it is not even rendered
    assert "#1001" in ack.text
    assert "lunes a viernes, de 9:00 a 19:00 hrs" in ack.text
    assert "mañana a las 9:00" in ack.text  # we open Monday 09:00
    assert "/estado" in ack.text
    ticket = await Ticket.get(number=1001)
    # Telegram: 15 business minutes from Monday's opening.
    assert ticket.first_response_due == santiago(2026, 11, 23, 9, 15)
    notice, mirror = world.agents.sent  # the card, then a copy of what María received
    assert mirror.kind == "mirror" and mirror.text == ack.text
    assert notice.audience == "agents" and "#1001" in notice.text and "María" in notice.text


async def test_during_opening_hours_the_acknowledgement_promises_an_answer_within_the_sla(
    world: World,
) -> None:
    await world.write("email", "juan@example.test", "No puedo entrar a mi cuenta",
                      name="Juan Pérez", subject="Acceso")
    await world.deliver()

    [ack] = world.sent_to("email", "juan@example.test")
    assert ack.kind == "ack"
    assert "[#1001]" in ack.subject and "\n" not in ack.subject
    assert "#1001" in ack.text and "11:00" in ack.text  # 60 business minutes from 10:00


async def test_an_english_speaking_customer_is_answered_in_english(world: World) -> None:
    await world.write("telegram", "777", "Hi, my parcel is late", name="John", locale="en")
    await world.deliver()

    [ack] = world.sent_to("telegram", "777")
    assert "#1001" in ack.text and "/status" in ack.text
    assert "Gracias" not in ack.text


async def test_a_second_message_joins_the_same_ticket_and_is_not_acknowledged_again(
    world: World,
) -> None:
    first = await world.write("telegram", "12345", "Hola", name="María")
    world.clock.advance(minutes=2)
    second = await world.write("telegram", "12345", "Es el pedido 5531")
    await world.deliver()

    assert second.ticket_number == first.ticket_number and not second.new_ticket
    assert len(world.sent_to("telegram", "12345")) == 1
    assert await Message.filter(ticket__number=first.ticket_number, direction="in").count() == 2


async def test_a_redelivered_message_is_a_no_op(world: World) -> None:
    first = await world.write("telegram", "12345", "Hola", external_id="update-99")
    again = await world.write("telegram", "12345", "Hola", external_id="update-99")

    assert again.duplicate and again.ticket_number == first.ticket_number
    assert await Message.all().count() == 2  # the message and one acknowledgement
    assert await OutboxItem.filter(audience="customer").count() == 1


async def test_the_same_id_on_two_channels_is_two_messages(world: World) -> None:
    await world.write("telegram", "1", "a", external_id="42")
    other = await world.write("slack", "U1", "b", external_id="42")
    assert not other.duplicate and other.new_ticket


async def test_one_person_one_contact_many_tickets(world: World) -> None:
    await world.write("email", "ana@example.test", "Primera consulta", name="Ana")
    await world.write("email", "ana@example.test", "Otra consulta distinta", name="Ana")

    assert await Contact.all().count() == 1
    assert await Identity.filter(channel="email", address="ana@example.test").count() == 1
    assert await Ticket.all().count() == 2  # an email without reply headers is a new ticket


async def test_an_email_reply_to_our_acknowledgement_joins_the_ticket(world: World) -> None:
    first = await world.write("email", "ana@example.test", "Mi factura está mal",
                              subject="Factura", external_id="<a1@example.test>")
    await world.deliver()
    [ack] = world.sent_to("email")
    platform_id = (await OutboxItem.get(id=ack.outbox_id)).platform_id

    reply = await world.write("email", "ana@example.test", "Adjunto la factura",
                              subject="Re: Factura", reply_to=("<a1@example.test>", platform_id))

    assert reply.ticket_number == first.ticket_number
    assert ack.reply_to == ("<a1@example.test>",)  # our ack threads under her email


async def test_the_subject_tag_is_honoured_only_for_participants(world: World) -> None:
    first = await world.write("email", "ana@example.test", "Hola", subject="Pedido")
    tagged = await world.write("email", "ana@example.test", "Sigo esperando",
                               subject=f"Re: Pedido [#{first.ticket_number}]",
                               ticket_number=first.ticket_number)
    stranger = await world.write("email", "eve@example.test", "Quiero ver ese ticket",
                                 subject=f"[#{first.ticket_number}]",
                                 ticket_number=first.ticket_number)

    assert tagged.ticket_number == first.ticket_number
    assert stranger.new_ticket and stranger.ticket_number != first.ticket_number


async def test_a_reply_to_a_resolved_ticket_reopens_it(world: World) -> None:
    first = await world.write("telegram", "12345", "Hola")
    await Ticket.filter(number=first.ticket_number).update(status="resolved",
                                                           resolved_at=world.clock.now())
    world.clock.advance(hours=3)

    again = await world.write("telegram", "12345", "Volvió a fallar")
    await world.deliver()

    ticket = await Ticket.get(number=first.ticket_number)
    assert again.reopened and again.ticket_number == first.ticket_number
    assert ticket.status == "open" and ticket.reopened == 1 and ticket.resolved_at is None
    assert await AuditEvent.filter(ticket=ticket, action="reopened").exists()
    assert len(world.sent_to("telegram", "12345")) == 2  # acknowledged again on reopening


async def test_a_reply_to_a_closed_ticket_opens_a_new_one_that_links_back(world: World) -> None:
    first = await world.write("telegram", "12345", "Hola")
    await Ticket.filter(number=first.ticket_number).update(status="closed")

    again = await world.write("telegram", "12345", "Tengo otra consulta")

    assert again.new_ticket and again.ticket_number == first.ticket_number + 1
    new = await Ticket.get(number=again.ticket_number).prefetch_related("parent")
    assert new.parent is not None and new.parent.number == first.ticket_number


async def test_a_customer_answering_a_pending_ticket_puts_it_back_on_us(world: World) -> None:
    first = await world.write("telegram", "12345", "Hola")
    await Ticket.filter(number=first.ticket_number).update(status="pending")
    again = await world.write("telegram", "12345", "Aquí está el dato que pidieron")
    ticket = await Ticket.get(number=first.ticket_number)
    assert not again.reopened and ticket.status == "open"
    assert len([o for o in again.outbound if o.audience == "customer"]) == 0


async def test_automated_mail_bots_and_agents_are_never_acknowledged(world: World) -> None:
    await world.write("email", "mailer-daemon@example.test", "Delivery failed",
                      automated=True)
    await world.write("slack", "B0BOT", "build passed", kind="bot")
    customer = await world.write("telegram", "12345", "Hola")
    agent = await world.write("slack", "U0AGENT", "Estamos revisando", kind="agent",
                              name="Laura", ticket_number=customer.ticket_number,
                              conversation=None)
    await world.deliver()

    assert world.sent_to("email") == [] and world.sent_to("slack") == []
    # The customer gets her acknowledgement and Laura's words (relayed, not acknowledged).
    assert [(m.kind, m.automatic) for m in world.sent_to("telegram")] == [
        ("ack", True), ("agent_reply", False)]
    assert await Message.filter(automated=True, direction="in").count() == 1  # bounce stored
    ticket = await Ticket.get(number=customer.ticket_number)
    assert ticket.first_response_at == world.clock.now()
    assert agent.ticket_number == customer.ticket_number


async def test_at_most_one_acknowledgement_per_sender_per_window(world: World) -> None:
    await world.write("email", "ana@example.test", "Consulta uno")
    world.clock.advance(minutes=5)
    second = await world.write("email", "ana@example.test", "Consulta dos")
    world.clock.advance(minutes=6)
    third = await world.write("email", "ana@example.test", "Consulta tres")

    assert second.new_ticket and not [o for o in second.outbound if o.audience == "customer"]
    assert [o.kind for o in third.outbound if o.audience == "customer"] == ["ack"]
    assert await AuditEvent.filter(action="ack.suppressed").count() == 1


async def test_many_customers_at_once_get_distinct_ticket_numbers(world: World) -> None:
    results = await asyncio.gather(*(
        world.write("telegram", str(1000 + i), f"Hola {i}", name=f"Cliente {i}")
        for i in range(60)))
    await world.deliver()

    numbers = [r.ticket_number for r in results]
    assert sorted(numbers) == list(range(1001, 1061))
    assert len(world.sent_to("telegram")) == 60
