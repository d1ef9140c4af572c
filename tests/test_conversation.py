"""Conversations beyond the first message: an agent's answer reaching the customer,
channel commands (/start, /estado) answered without a ticket, and the survey score."""

from __future__ import annotations

from gateway.core.messages import Inbound, Party, ThreadHint
from gateway.store.models import AuditEvent, Message, OutboxItem, Ticket
from tests.conftest import World


async def command(world: World, address: str, name: str, *, external_id: str,
                  locale: str | None = "es"):
    return await world.channels["telegram"].inject(Inbound(
        channel="telegram", sender=Party("customer", address, "María"), text=name,
        external_id=external_id, kind="command", locale=locale,
        thread=ThreadHint(conversation=address)))


async def test_an_agents_reply_reaches_the_customer_on_her_own_channel(world: World) -> None:
    first = await world.write("telegram", "555", "Mi pedido no llegó", name="María")
    await world.deliver()
    # Pedro answers in the ticket's thread of the console.
    await world.write("slack", "U0PEDRO", "Hola María, tu pedido sale hoy.", kind="agent",
                      name="Pedro", ticket_number=first.ticket_number, conversation=None)
    await world.deliver()
    answer = world.sent_to("telegram", "555")[-1]
    assert answer.text.startswith("Hola María, tu pedido sale hoy.") and not answer.automatic
    assert "— Pedro, Soporte Centralita" in answer.text  # signed
    ticket = await Ticket.get(number=first.ticket_number)
    assert ticket.first_response_at is not None
    # An internal note stays on the ticket.
    await world.write("slack", "U0PEDRO", "Ojo: cliente VIP", kind="agent", internal=True,
                      ticket_number=first.ticket_number, conversation=None)
    await world.deliver()
    assert world.sent_to("telegram", "555")[-1].text.startswith("Hola María, tu pedido sale")


async def test_start_greets_without_opening_a_ticket(world: World) -> None:
    accepted = await command(world, "777", "start", external_id="tg-1")
    await world.deliver()
    greeting = world.sent_to("telegram", "777")[-1]
    assert greeting.kind == "start" and "María" in greeting.text
    assert accepted.ticket_number is None and await Ticket.all().count() == 0
    # The same update delivered again is not answered twice.
    again = await command(world, "777", "start", external_id="tg-1")
    await world.deliver()
    assert again.duplicate and len(world.sent_to("telegram", "777")) == 1


async def test_estado_lists_the_customers_open_tickets(world: World) -> None:
    await world.write("telegram", "888", "La impresora no imprime", name="Luis")
    await world.write("telegram", "888", "Otra cosa: la factura", name="Luis",
                      new_ticket=True)
    await command(world, "888", "status", external_id="tg-2")
    await world.deliver()
    status = world.sent_to("telegram", "888")[-1]
    assert status.kind == "status"
    assert "#1001" in status.text and "#1002" in status.text and "en curso" in status.text
    assert await AuditEvent.filter(action="command").count() == 1


async def test_someone_with_no_tickets_asks_for_the_status(world: World) -> None:
    await command(world, "999", "status", external_id="tg-3", locale="en")
    await world.deliver()
    assert "no open" in world.sent_to("telegram", "999")[-1].text.lower()


async def test_the_survey_score_is_stored_once_and_thanked_once(world: World) -> None:
    first = await world.write("telegram", "321", "Hola", name="Ana")
    ticket = await Ticket.get(number=first.ticket_number)
    ticket.status = "resolved"
    await ticket.save()

    async def press(score: str, update: str):
        return await world.channels["telegram"].inject(Inbound(
            channel="telegram", sender=Party("customer", "321", "Ana"), text=score,
            external_id=update, kind="score",
            thread=ThreadHint(ticket_number=first.ticket_number, conversation="321")))

    await press("5", "cb-1")
    await press("2", "cb-2")  # she presses again
    await world.deliver()
    ticket = await Ticket.get(number=first.ticket_number)
    assert ticket.satisfaction == 5 and ticket.status == "resolved"  # not reopened
    thanks = [m for m in world.sent_to("telegram", "321") if m.kind == "survey_thanks"]
    assert len(thanks) == 1
    assert await AuditEvent.filter(action="survey.repeat").count() == 1
    assert await Message.filter(kind="score").count() == 2
    assert await OutboxItem.filter(kind="ack").count() == 1  # only the first message's


async def test_the_file_an_agent_attaches_reaches_the_customer(world: World) -> None:
    from gateway.core.messages import Attachment

    first = await world.write("email", "ana@example.test", "¿Me mandan la factura?",
                              external_id="<f1@x>")
    await world.write("slack", "U0PEDRO", "Aquí va la factura", kind="agent", name="Pedro",
                      ticket_number=first.ticket_number, conversation=None,
                      attachments=(Attachment("factura-1001.pdf", "application/pdf",
                                              b"%PDF-1.4 factura"),))
    await world.deliver()
    answer = world.sent_to("email", "ana@example.test")[-1]
    assert answer.kind == "agent_reply"
    assert [(a.filename, a.data) for a in answer.attachments] == [
        ("factura-1001.pdf", b"%PDF-1.4 factura")]
