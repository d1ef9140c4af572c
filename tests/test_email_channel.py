"""The email channel end to end, against a real Dovecot IMAP server and a real SMTP server
on loopback: customers write to soporte@, get the acknowledgement in the same thread, and
their replies, auto-replies and bounces land where they belong.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.email.adapter import EmailAdapter
from adapters.email.ids import normalize_id
from adapters.email.imap import MailboxReader
from adapters.email.settings import EmailSettings
from adapters.memory import MemoryAdapter
from gateway.app import App, assemble
from gateway.core.clock import ManualClock
from gateway.store.models import ChannelState, Message, OutboxItem, Ticket
from tests.conftest import make_settings, santiago
from tests.mailservers import PASSWORD, SALES, USER, Dovecot, SmtpSink, dovecot_missing, eventually


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """These tests exercise the mail servers; SQLite is enough for the database side."""
    return f"sqlite://{tmp_path}/centralita.sqlite3"


@pytest.fixture
def dovecot() -> AsyncIterator[Dovecot]:
    if reason := dovecot_missing():
        if os.environ.get("CENTRALITA_REQUIRE_DOVECOT") == "1":
            pytest.fail(reason + " and CENTRALITA_REQUIRE_DOVECOT=1")
        pytest.skip(reason)
    server = Dovecot()
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


@pytest.fixture
def smtp() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink  # type: ignore[misc]
    sink.stop()


@dataclass
class Office:
    """The support office: the gateway reading soporte@ and answering through SMTP."""

    app: App
    email: EmailAdapter
    agents: MemoryAdapter
    dovecot: Dovecot
    smtp: SmtpSink
    settings: object
    clock: ManualClock

    async def deliver(self) -> int:
        total = 0
        for _ in range(10):
            done = await self.app.outbox.dispatch_once()
            total += done
            if not done:
                return total
        return total

    async def restart(self) -> None:
        """Stop reading mail and start again with a fresh adapter, as after a restart."""
        await self.app.stop()
        self.email = EmailAdapter.from_settings(self.settings, clock=self.clock)  # type: ignore[arg-type]
        self.app = assemble(self.settings, adapters={"email": self.email,  # type: ignore[arg-type]
                                                     "agents": self.agents}, clock=self.clock)
        await self.app.start()


def email_settings(dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path, *,
                   extra: list[dict[str, object]] = (),  # type: ignore[assignment]
                   channel: dict[str, object] | None = None, **mailbox: object):
    box = {"name": "soporte", "address": USER, "display_name": "Soporte Ejemplo",
           "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_tls": False,
           "imap_user": USER, "imap_password": PASSWORD, "smtp_host": "127.0.0.1",
           "smtp_port": smtp.port, "smtp_security": "none", "poll_interval": "1s"}
    box.update(mailbox)
    others = [{**box, **other} for other in extra]
    return make_settings(tmp_path, channels={"email": {
        "token_secret": "test-secret", "reconnect_max": "2s", "mailboxes": [box, *others],
        **(channel or {})}})


@pytest.fixture
async def office(db: str, dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path
                 ) -> AsyncIterator[Office]:
    async for opened in open_office(email_settings(dovecot, smtp, tmp_path), dovecot, smtp):
        yield opened


async def open_office(settings: object, dovecot: Dovecot, smtp: SmtpSink
                      ) -> AsyncIterator[Office]:
    """The office running on `settings` for the block of a fixture."""
    clock = ManualClock(santiago(2026, 11, 23, 10, 0))  # Monday, open
    email = EmailAdapter.from_settings(settings, clock=clock)
    agents = MemoryAdapter("agents")
    app = assemble(settings, adapters={"email": email, "agents": agents}, clock=clock)
    office = Office(app, email, agents, dovecot, smtp, settings, clock)
    await app.start()
    yield office
    await office.app.stop()


def mail(sender: str, subject: str, body: str, *, message_id: str, name: str = "",
         headers: str = "", to: str = USER) -> bytes:
    who = f"{name} <{sender}>" if name else sender
    return (f"From: {who}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
            f"Date: Mon, 23 Nov 2026 10:00:00 -0300\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=utf-8\r\n{headers}\r\n{body}\r\n"
            ).encode()


async def ticket_of(message_id: str) -> Ticket | None:
    message = await Message.filter(external_id=message_id).prefetch_related("ticket").first()
    return message.ticket if message else None


async def test_a_new_mail_gets_the_acknowledgement_in_the_same_thread(office: Office) -> None:
    # María writes to soporte@ from her own mail client on Monday at 10:00.
    await office.dovecot.append(mail("maria@cliente.test", "Mi pedido no llegó",
                                     "Hola, hice el pedido 5531 y no me llega.",
                                     message_id="m1@cliente.test", name="María Pérez"))
    ticket = await eventually(lambda: ticket_of("m1@cliente.test"))
    assert ticket.channel == "email" and ticket.subject == "Mi pedido no llegó"
    await office.deliver()
    ack = office.smtp.received[-1]
    # She gets it in the same conversation of her mail client, with her ticket number.
    assert ack["To"] == "maria@cliente.test"
    assert ack["In-Reply-To"] == "<m1@cliente.test>"
    assert "<m1@cliente.test>" in ack["References"]
    assert f"[#{ticket.number}]" in ack["Subject"]
    assert ack["Auto-Submitted"] == "auto-replied"
    assert ack["Reply-To"].startswith(f"soporte+t{ticket.number}.")
    body = ack.get_body(("plain",)).get_content()
    assert str(ticket.number) in body and "María" in body
    # The agents' console heard about the new ticket, and saw the acknowledgement go out.
    assert [m.kind for m in office.agents.sent] == ["new_ticket", "mirror"]
    # The mail was marked seen and the position stored for a restart.
    state = await ChannelState.get(channel="email", key="soporte/INBOX")
    assert state.value["last_uid"] == 1

    # Her reply to our acknowledgement lands on the same ticket, without a new one.
    our_id = normalize_id(ack["Message-ID"])
    await office.dovecot.append(mail(
        "maria@cliente.test", f"Re: {ack['Subject']}", "Les adjunto la boleta.",
        message_id="m2@cliente.test", headers=f"In-Reply-To: <{our_id}>\r\n"
        f"References: <m1@cliente.test> <{our_id}>\r\n"))
    again = await eventually(lambda: ticket_of("m2@cliente.test"))
    assert again.id == ticket.id
    assert await Ticket.all().count() == 1
    await office.deliver()
    assert len(office.smtp.received) == 1  # no second acknowledgement


async def test_a_reply_from_another_address_to_the_token_address_joins_the_ticket(
        office: Office) -> None:
    await office.dovecot.append(mail("maria@cliente.test", "Factura", "¿Me envían la factura?",
                                     message_id="t1@cliente.test"))
    ticket = await eventually(lambda: ticket_of("t1@cliente.test"))
    await office.deliver()
    reply_to = office.smtp.received[-1]["Reply-To"]
    # Her colleague answers from the office account, to the address our mail gave.
    await office.dovecot.append(mail("contabilidad@cliente.test", "Factura",
                                     "Soy de contabilidad, la necesitamos hoy.",
                                     message_id="t2@cliente.test", to=reply_to))
    joined = await eventually(lambda: ticket_of("t2@cliente.test"))
    assert joined.id == ticket.id


async def test_the_same_subject_from_a_stranger_does_not_join_an_old_ticket(
        office: Office) -> None:
    await office.dovecot.append(mail("maria@cliente.test", "Consulta", "Hola",
                                     message_id="s1@cliente.test"))
    first = await eventually(lambda: ticket_of("s1@cliente.test"))
    tag = f"[#{first.number}]"
    await office.dovecot.append(mail("otro@desconocido.test", f"Consulta {tag}",
                                     "Quiero ver ese ticket", message_id="s2@cliente.test"))
    second = await eventually(lambda: ticket_of("s2@cliente.test"))
    assert second.id != first.id


async def test_an_auto_reply_from_the_customers_side_does_not_start_a_loop(
        office: Office) -> None:
    await office.dovecot.append(mail("juan@cliente.test", "Cambio de dirección",
                                     "Me mudé, ¿pueden actualizar mi dirección?",
                                     message_id="a1@cliente.test"))
    ticket = await eventually(lambda: ticket_of("a1@cliente.test"))
    await office.deliver()
    ack_id = normalize_id(office.smtp.received[-1]["Message-ID"])
    # Juan's mail server answers our acknowledgement with his out-of-office message.
    await office.dovecot.append(mail(
        "juan@cliente.test", "Respuesta automática: Cambio de dirección",
        "Estoy de vacaciones hasta el lunes.", message_id="a2@cliente.test",
        headers=f"Auto-Submitted: auto-replied\r\nIn-Reply-To: <{ack_id}>\r\n"))
    stored = await eventually(lambda: Message.get_or_none(external_id="a2@cliente.test"))
    assert stored.ticket_id == ticket.id and stored.automated
    # It is on the ticket, and nothing is sent back: no loop.
    await office.deliver()
    assert len(office.smtp.received) == 1
    # A whole new mail from an automated sender opens a ticket but gets no answer either.
    await office.dovecot.append(mail("noreply@tienda.test", "Su pedido fue enviado",
                                     "Pedido 5531 enviado.", message_id="a3@tienda.test"))
    await eventually(lambda: ticket_of("a3@tienda.test"))
    await office.deliver()
    assert len(office.smtp.received) == 1


async def test_a_bounce_is_stored_on_the_ticket_and_agents_are_told_not_answered(
        office: Office) -> None:
    await office.dovecot.append(mail("pedro@cliente.test", "Garantía", "Se rompió la pantalla.",
                                     message_id="b1@cliente.test"))
    ticket = await eventually(lambda: ticket_of("b1@cliente.test"))
    await office.deliver()
    ack_id = normalize_id(office.smtp.received[-1]["Message-ID"])
    bounce = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.cliente.test>\r\n"
        f"To: {USER}\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <bounce1@mx.cliente.test>\r\nAuto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
        ' boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\n'
        "The mail system could not deliver your message to pedro@cliente.test:"
        " mailbox full\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.cliente.test\r\n\r\nFinal-Recipient: rfc822; pedro@cliente.test"
        "\r\nAction: failed\r\nStatus: 5.2.2\r\n\r\n--B\r\n"
        "Content-Type: text/rfc822-headers\r\n\r\n"
        f"From: {USER}\r\nTo: pedro@cliente.test\r\nMessage-ID: <{ack_id}>\r\n"
        "Subject: Garantía\r\n\r\n--B--\r\n").encode()
    await office.dovecot.append(bounce)
    stored = await eventually(lambda: Message.get_or_none(external_id="bounce1@mx.cliente.test"))
    assert stored.ticket_id == ticket.id and stored.kind == "bounce"
    await office.deliver()
    assert len(office.smtp.received) == 1  # the bounce is not answered
    assert "delivery_failed" in [m.kind for m in office.agents.sent]


async def test_a_restart_in_the_middle_of_a_burst_loses_and_repeats_nothing(
        office: Office) -> None:
    await office.app.stop()  # the burst arrives while the gateway is down
    for i in range(120):
        await office.dovecot.append(mail(f"cliente{i}@burst.test", f"Consulta {i}",
                                         f"Mensaje {i}", message_id=f"burst{i}@burst.test"))
    # The gateway comes up and is killed after part of the burst is stored.
    await office.restart()
    await eventually(lambda: _count_stored(40), within=30)
    for task in office.email._tasks:
        task.cancel()  # a crash: no clean shutdown, whatever was in flight is cut
    await asyncio.gather(*office.email._tasks, return_exceptions=True)
    stored_before = await Ticket.all().count()
    assert 0 < stored_before <= 120
    await office.restart()
    await eventually(lambda: _count_stored(120), within=60)
    # The reader stores how far it has read only once a whole chunk is committed: when it
    # says 120, every mail of the burst has been handled and nothing more is coming.
    await eventually(lambda: _read_up_to(120), within=60)
    # Every customer has exactly one ticket and exactly one acknowledgement queued.
    assert await Ticket.all().count() == 120
    assert await Message.filter(direction="in").count() == 120
    assert await OutboxItem.filter(channel="email", kind="ack").count() == 120


async def _count_stored(at_least: int) -> bool:
    return await Message.filter(direction="in").count() >= at_least


async def _read_up_to(uid: int, key: str = "soporte/INBOX") -> bool:
    state = await ChannelState.get_or_none(channel="email", key=key)
    return state is not None and state.value.get("last_uid") == uid


async def test_the_imap_server_dropping_the_connection(office: Office) -> None:
    reader = office.email.readers[0]
    await eventually(lambda: reader.connected.is_set())
    # The server drops every connection (a restart, a network cut) while we IDLE.
    office.dovecot.kick()
    await eventually(lambda: reader.sessions >= 2, within=40)
    await office.dovecot.append(mail("lucia@cliente.test", "¿Siguen ahí?", "Hola",
                                     message_id="d1@cliente.test"))
    assert await eventually(lambda: ticket_of("d1@cliente.test"), within=40)


async def test_without_idle_the_mailbox_is_polled_and_processed_mail_is_moved(
        db: str, dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path) -> None:
    await dovecot.create_folder("Procesados")
    settings = email_settings(dovecot, smtp, tmp_path, idle=False, move_to="Procesados")
    email = EmailAdapter.from_settings(settings)
    app = assemble(settings, adapters={"email": email, "agents": MemoryAdapter("agents")})
    await app.start()
    try:
        await dovecot.append(mail("ana@cliente.test", "Hola", "Consulta",
                                  message_id="p1@cliente.test"))
        assert await eventually(lambda: ticket_of("p1@cliente.test"))
        assert await eventually(lambda: _moved(dovecot))
    finally:
        await app.stop()


async def _moved(dovecot: Dovecot) -> bool:
    return await dovecot.count("INBOX") == 0 and await dovecot.count("Procesados") == 1


async def test_a_first_sync_imports_only_recent_mail_and_shows_its_progress(
        db: str, dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path) -> None:
    # The mailbox already holds a year of old mail and this week's unanswered mail.
    now = santiago(2026, 11, 23, 10, 0)
    for i in range(3):
        await dovecot.append(mail(f"viejo{i}@cliente.test", "Antiguo", "Del año pasado",
                                  message_id=f"old{i}@cliente.test"),
                             date=now - timedelta(days=300))
    for i in range(60):
        await dovecot.append(mail(f"nuevo{i}@cliente.test", "Reciente", "De esta semana",
                                  message_id=f"new{i}@cliente.test"),
                             date=now - timedelta(days=2))
    seen: list[tuple[str, int, int]] = []
    settings = email_settings(dovecot, smtp, tmp_path)
    email = EmailAdapter(EmailSettings(**settings.channels["email"], import_days=30),
                         clock=ManualClock(now),
                         progress=lambda key, done, total: seen.append((key, done, total)))
    app = assemble(settings, adapters={"email": email, "agents": MemoryAdapter("agents")},
                   clock=ManualClock(now))
    await app.start()
    try:
        await eventually(lambda: _count_stored(60), within=30)
    finally:
        await app.stop()
    assert await Message.filter(external_id__startswith="old").count() == 0
    assert seen[-1] == ("soporte/INBOX", 60, 60) and len(seen) == 2  # two chunks of 50


async def test_one_mail_to_soporte_and_ventas_makes_one_ticket_and_one_acknowledgement(
        db: str, dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path) -> None:
    settings = email_settings(dovecot, smtp, tmp_path, extra=[{
        "name": "ventas", "address": SALES, "imap_user": SALES}])
    email = EmailAdapter.from_settings(settings)
    app = assemble(settings, adapters={"email": email, "agents": MemoryAdapter("agents")})
    await app.start()
    try:
        # Rosa writes to soporte@ with ventas@ in Cc: the same mail lands in both boxes.
        both = mail("rosa@cliente.test", "Cotización y soporte", "¿Me cotizan 3 equipos?",
                    message_id="cc1@cliente.test", headers=f"Cc: {SALES}\r\n")
        await dovecot.append(both, user=USER)
        await dovecot.append(both, user=SALES)
        await eventually(lambda: all(reader.sessions for reader in email.readers))
        await eventually(lambda: _both_read(email))
        await _drain(app)
        assert await Ticket.all().count() == 1
        assert await Message.filter(direction="in").count() == 1
        assert len(smtp.received) == 1
    finally:
        await app.stop()


async def _both_read(email: EmailAdapter) -> bool:
    states = await ChannelState.filter(channel="email").values_list("key", "value")
    return {key for key, value in states if value.get("last_uid") == 1} == {
        "soporte/INBOX", "ventas/INBOX"}


async def _drain(app: App) -> None:
    while await app.outbox.dispatch_once():
        pass


async def test_a_changed_uidvalidity_rescans_without_answering_twice(office: Office) -> None:
    await office.dovecot.append(mail("eva@cliente.test", "Hola", "Primera consulta",
                                     message_id="u1@cliente.test"))
    await eventually(lambda: ticket_of("u1@cliente.test"))
    await office.deliver()
    # The server's mailbox was rebuilt: the UIDs we stored no longer mean the same mail.
    await office.app.stop()
    await ChannelState.filter(channel="email").update(
        value={"uidvalidity": 1, "last_uid": 999})
    await office.dovecot.append(mail("raul@cliente.test", "Otra", "Mi consulta",
                                     message_id="u2@cliente.test"))
    await office.restart()
    await eventually(lambda: ticket_of("u2@cliente.test"))
    await office.deliver()
    # Everything was read again; the first mail is recognised and not answered again.
    assert await Message.filter(direction="in").count() == 2
    assert len(office.smtp.received) == 2  # one acknowledgement per mail, never three


async def test_idle_is_renewed_and_mail_still_arrives_after_renewals(
        db: str, dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = email_settings(dovecot, smtp, tmp_path, idle_renew="1s")
    email = EmailAdapter.from_settings(settings)
    app = assemble(settings, adapters={"email": email, "agents": MemoryAdapter("agents")})
    await app.start()
    try:
        await eventually(lambda: email.readers[0].connected.is_set())
        renewed = _count_idles(email.readers[0], monkeypatch)
        await eventually(lambda: len(renewed) >= 3, within=30)  # three IDLE renewals
        await dovecot.append(mail("leo@cliente.test", "Hola", "¿Sigue abierto?",
                                  message_id="i1@cliente.test"))
        assert await eventually(lambda: ticket_of("i1@cliente.test"), within=10)
        assert email.readers[0].sessions == 1  # renewed in place, never reconnected
    finally:
        await app.stop()


def _count_idles(reader: MailboxReader, monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """One entry each time an IDLE of `reader` ends without error (with no mail coming,
    only its renewal ends it) and the reader goes on to the next one."""
    ended: list[None] = []
    idle = reader._idle

    async def counted(*args: object) -> None:
        await idle(*args)  # type: ignore[arg-type]
        ended.append(None)

    monkeypatch.setattr(reader, "_idle", counted)
    return ended
