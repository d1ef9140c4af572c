"""Bad input never crashes the gateway or loses a message.

Every test runs on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.commands import (
    Actor,
    EditTemplate,
    OpenTemplate,
    Resolve,
    Retract,
    Revise,
    Typed,
    Withdraw,
)
from gateway.core.messages import Attachment, Inbound, InboundRejected, Party, ThreadHint
from gateway.store.models import Attachment as StoredAttachment
from gateway.store.models import AuditEvent, Message, OutboxItem, Template, Ticket
from tests.conftest import World, build_world, santiago


async def test_an_empty_message_still_gets_a_ticket_and_an_acknowledgement(world: World) -> None:
    accepted = await world.write("telegram", "12345", "")
    await world.deliver()
    assert accepted.new_ticket
    assert len(world.sent_to("telegram")) == 1


async def test_a_one_megabyte_message_is_stored_whole(world: World) -> None:
    text = "mi pedido no llegó " * 55_000  # about 1 MB
    accepted = await world.write("email", "ana@example.test", text)
    stored = await Message.get(id=accepted.message_id)
    assert stored.text == text.rstrip() or stored.text == text
    ticket = await Ticket.get(number=accepted.ticket_number)
    assert len(ticket.subject) <= 120


async def test_invalid_utf8_is_stored_readable_and_the_raw_bytes_are_kept(world: World) -> None:
    raw = b"Hola \xff\xfe se cay\xf3 el sistema\x00"
    text = raw.decode("utf-8", "surrogateescape")  # what a careless adapter might pass on
    accepted = await world.write("email", "ana@example.test", text, raw=raw,
                                 name="Ana\r\nBcc: eve@example.test")
    stored = await Message.get(id=accepted.message_id)
    assert stored.text.startswith("Hola \ufffd\ufffd se cay\ufffd el sistema")
    assert "\x00" not in stored.text
    assert stored.raw_source == raw
    assert "\n" not in stored.author_name  # no header injection through a name


async def test_an_unknown_channel_is_refused_but_recorded(world: World) -> None:
    with pytest.raises(InboundRejected, match="unknown channel 'fax'"):
        await world.app.gateway.receive(Inbound(channel="fax", sender=Party("customer", "555"),
                                                text="Hola por fax", external_id="f1"))
    event = await AuditEvent.get(action="inbound.rejected")
    assert event.detail["text"] == "Hola por fax" and event.detail["channel"] == "fax"
    assert await Ticket.all().count() == 0


async def test_a_broken_admin_template_falls_back_to_the_shipped_text(world: World) -> None:
    # An admin saved an acknowledgement that fails at render time (unknown variable).
    await Template.create(key="ack", locale="es", channel="", version=1, subject="",
                          body="Hola {{ cliente.nombre }}", created_by="admin")
    accepted = await world.write("telegram", "12345", "Hola", name="María")
    await world.deliver()

    [ack] = world.sent_to("telegram")
    assert f"#{accepted.ticket_number}" in ack.text  # the shipped default went out
    event = await AuditEvent.get(action="template.failed")
    assert event.detail["key"] == "ack" and "cliente" in event.detail["error"]


async def test_an_admin_edited_template_is_used_for_the_next_message(world: World) -> None:
    await world.write("telegram", "1", "Hola")
    await Template.create(key="ack", locale="es", channel="telegram", version=1, subject="",
                          body="¡Hola! Tu número es {{ ticket.number }}.", created_by="admin")
    second = await world.write("telegram", "2", "Hola")
    await world.deliver()
    assert world.sent_to("telegram", "2")[0].text == f"¡Hola! Tu número es {second.ticket_number}."


async def test_a_sandbox_escape_in_a_stored_template_never_runs(world: World) -> None:
    await Template.create(key="ack", locale="es", channel="", version=1, subject="",
                          body="{{ ''.__class__.__mro__[1].__subclasses__() }}",
                          created_by="admin")
    await world.write("telegram", "12345", "Hola")
    await world.deliver()
    [ack] = world.sent_to("telegram")
    assert "subclasses" not in ack.text and "class" not in ack.text
    assert await AuditEvent.filter(action="template.failed").exists()


async def test_attachments_are_stored_within_the_limit_and_recorded_beyond_it(
    db: str, tmp_path: Path
) -> None:
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              attachments={"max_bytes": 1000})
    photo = Attachment("foto.jpg", "image/jpeg", data=b"\xff\xd8" + b"x" * 500)
    video = Attachment("video.mp4", "video/mp4", data=b"v" * 5000)
    accepted = await world.write("telegram", "12345", "Mira la foto",
                                 attachments=(photo, video))

    rows = {a.filename: a for a in await StoredAttachment.filter(message_id=accepted.message_id)}
    assert rows["foto.jpg"].storage == "disk" and Path(rows["foto.jpg"].path).read_bytes() == (
        photo.data)
    assert rows["video.mp4"].storage == "skipped" and rows["video.mp4"].size == 5000


async def test_attachments_can_live_in_the_database(db: str, tmp_path: Path) -> None:
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              attachments={"store": "db"})
    accepted = await world.write("email", "ana@example.test", "Adjunto",
                                 attachments=(Attachment("a.pdf", "application/pdf", b"%PDF"),))
    [row] = await StoredAttachment.filter(message_id=accepted.message_id)
    assert row.storage == "db" and row.data == b"%PDF"


async def test_an_agent_message_that_names_no_ticket_is_refused(world: World) -> None:
    with pytest.raises(InboundRejected, match="must name its ticket"):
        await world.write("slack", "U0AGENT", "¿A quién le respondo?", kind="agent",
                          conversation=None)
    assert await Message.all().count() == 0


# --- the agents' door: forged commands, strangers, numbers no ticket has ------------------


async def test_someone_outside_the_agents_rooms_cannot_command_and_is_recorded(
        world: World) -> None:
    first = await world.write("telegram", "555", "Hola", name="María")
    stranger = Actor(console="agents", address="U0EVE", name="Eve", rooms=frozenset({"C0OTHER"}))
    for command in (Resolve(stranger, first.ticket_number),
                    Typed(stranger, f"assign {first.ticket_number} @Eve", ref="t1"),
                    OpenTemplate(stranger, "ack", "es")):
        result = await world.app.gateway.command(command)
        assert not result.ok and result.text.startswith("Solo los")
    assert (await Ticket.get(number=first.ticket_number)).status == "open"
    assert await AuditEvent.filter(action="command.refused", actor="agents:U0EVE").count() == 3


async def test_a_forged_undo_cannot_cancel_what_no_agent_wrote(world: World) -> None:
    # María waits four hours: the scheduler queues her progress update; before the outbox
    # sends it, an agent forges "Undo" with that row's id. Only agents' words go back.
    await world.write("telegram", "555", "Hola", name="María")
    await world.deliver()
    world.clock.advance(hours=4)
    await world.app.scheduler.run_due()
    progress = await OutboxItem.get(kind="progress")
    assert progress.status == "pending" and progress.attempts == 0
    result = await world.agent_does(Withdraw, progress.id)
    assert not result.ok and "Demasiado tarde" in result.text
    await world.deliver()
    assert [m.kind for m in world.sent_to("telegram", "555")][-1] == "progress"


async def test_commands_with_junk_or_impossible_numbers_change_nothing(world: World) -> None:
    first = await world.write("telegram", "555", "Hola", name="María")
    for line in ("resolve ; DROP TABLE ticket", "resolve 99999999999999999999",
                 "priority 1001 <script>", "assign", "template ../../etc/passwd es",
                 "note 1001", "\u202eresolve 1001", "x" * 5000):
        result = await world.agent_does(Typed, line, "t-junk")
        assert not result.ok, line
    assert (await Ticket.get(number=first.ticket_number)).status == "open"
    assert (await Ticket.get(number=first.ticket_number)).priority == "normal"
    assert await Template.all().count() == 0


async def test_a_forged_text_form_or_an_edit_of_nothing_stores_nothing(
        db: str, tmp_path: Path) -> None:
    carla = Actor(console="agents", address="U0CARLA", name="Carla")
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              agents={"admins": ["U0CARLA"]})
    for ref in ("ack|xx|", "nope|es|", "../../x|es|telegram", ""):
        result = await world.app.gateway.command(EditTemplate(carla, ref, "", "Hola"))
        assert not result.ok and result.errors, ref
    assert not (await world.app.gateway.command(Revise(carla, "C0AGENTS:123.4", "x"))).ok
    assert not (await world.app.gateway.command(Retract(carla, "C0AGENTS:123.4"))).ok
    assert await Template.all().count() == 0


async def test_a_survey_press_naming_an_impossible_ticket_is_not_a_crash(
        world: World) -> None:
    # A modified client's button names ticket 10**20, a number the database cannot even
    # compare: it names no ticket, and the press is read like any in her chat.
    await world.write("telegram", "555", "Hola", name="María")
    accepted = await world.channels["telegram"].inject(Inbound(
        channel="telegram", sender=Party("customer", "555", "María"), text="5",
        kind="score", external_id="callback:forged",
        thread=ThreadHint(ticket_number=10**20, conversation="555")))
    assert accepted.ticket_number == 1001
    with pytest.raises(InboundRejected):  # and from a chat with no ticket, it is refused
        await world.channels["telegram"].inject(Inbound(
            channel="telegram", sender=Party("customer", "556", "Eve"), text="5",
            kind="score", external_id="callback:forged-2",
            thread=ThreadHint(ticket_number=10**20, conversation="556")))
