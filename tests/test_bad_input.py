"""Bad input never crashes the gateway or loses a message.

Every test runs on SQLite and on a real PostgreSQL server.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.core.messages import Attachment, Inbound, Party
from gateway.pipeline.receive import InboundRejected
from gateway.store.models import Attachment as StoredAttachment
from gateway.store.models import AuditEvent, Message, Template, Ticket
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
