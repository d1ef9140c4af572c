"""Email out, told as what the customer's mail server receives.

Every message is composed by `compose` and handed by `send_smtp` to a real SMTP server
(aiosmtpd) on loopback; what arrives is parsed back the way her mail client would read it.
Failures are injected by the server itself (451, 550…), by a port nobody listens on, by a
server that never speaks, by a wrong password and by an untrusted certificate.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from adapters.email.compose import compose
from adapters.email.ids import split_ids
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.smtp import send_smtp
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Attachment, Outbound, PermanentError, TransientError
from gateway.web.http import free_port

NOW = datetime(2026, 11, 22, 22, 30, tzinfo=ZoneInfo("America/Santiago"))
MARIA = "maria@correo.example"
HER_MAIL = "CAF=3xQ7v+pedido-no-llego-" + "k" * 60 + "@mail.gmail.com"  # > 78 characters
TOKENS = ReplyTokens("s3cret")
SETTINGS = EmailSettings(token_secret="s3cret")


# --- the customer's mail server ----------------------------------------------------------


@dataclass
class Mailroom:
    """An aiosmtpd handler keeping what arrives; `refuse_*` answer a stage with an error."""

    envelopes: list[Envelope] = field(default_factory=list)
    over_tls: list[bool] = field(default_factory=list)
    refuse_mail: str | None = None
    refuse_rcpt: str | None = None
    refuse_data: str | None = None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_mail:
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.refuse_data:
            return self.refuse_data
        self.envelopes.append(envelope)
        implicit = server.transport.get_extra_info("ssl_object") is not None
        self.over_tls.append(session.ssl is not None or implicit)  # STARTTLS or TLS
        return "250 2.0.0 queued"

    # Plain methods, not properties: aiosmtpd inspects every member of its handler.
    def raw(self) -> bytes:
        [envelope] = self.envelopes
        return envelope.original_content or envelope.content

    def mail(self) -> EmailMessage:
        """The one message received, as her mail client parses it."""
        return BytesParser(policy=default).parsebytes(self.raw())


@dataclass
class Server:
    mailroom: Mailroom
    port: int


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """Starts aiosmtpd servers on loopback (Controller keyword arguments as given)."""
    controllers: list[Controller] = []

    def start(**kwargs: Any) -> Server:
        mailroom = Mailroom()
        port = free_port()  # Controller(port=0) cannot tell which port it got
        controller = Controller(mailroom, hostname="127.0.0.1", port=port,
                                server_hostname="mx.correo.example", **kwargs)
        controller.start()
        controllers.append(controller)
        return Server(mailroom, port)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    return cert, key


def server_tls(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


# --- our side ------------------------------------------------------------------------------


def mailbox(port: int, **overrides: Any) -> MailboxSettings:
    values: dict[str, Any] = {
        "name": "soporte", "address": "soporte@centralita.example",
        "display_name": "Soporte Centralita", "imap_host": "imap.centralita.example",
        "imap_user": "soporte", "smtp_host": "127.0.0.1", "smtp_port": port,
        "smtp_security": "none", "timeout": timedelta(seconds=5),
    }
    values.update(overrides)
    return MailboxSettings(**values)


def acknowledgement(**overrides: Any) -> Outbound:
    """The automatic acknowledgement to María's first mail about ticket 1042."""
    values: dict[str, Any] = {
        "channel": "email", "recipient": MARIA, "kind": "ack", "automatic": True,
        "ticket_number": 1042, "reply_to": (HER_MAIL,),
        "text": "Hola María, tu número de solicitud es el #1042.\n\nTe respondemos mañana.",
        "ticket_subject": "Mi pedido no llegó", "locale": "es",
    }
    values.update(overrides)
    return Outbound(**values)


async def deliver(out: Outbound, box: MailboxSettings, *, company: str = "",
                  settings: EmailSettings = SETTINGS) -> str:
    message, message_id = compose(out, mailbox=box, settings=settings, tokens=TOKENS,
                                  now=NOW, company=company)
    await send_smtp(message, box)
    return message_id


# --- what María receives -------------------------------------------------------------------


async def test_the_acknowledgement_to_maria_threads_under_her_mail_and_names_her_ticket(
    server: Server,
) -> None:
    box = mailbox(server.port)
    message_id = await deliver(acknowledgement(), box)

    mail = server.mailroom.mail()
    envelope = server.mailroom.envelopes[0]
    assert envelope.mail_from == "soporte@centralita.example"
    assert envelope.rcpt_tos == [MARIA]
    # It leaves with our Message-ID (the gateway stores it to thread her answer) ...
    assert mail["Message-ID"] == f"<{message_id}>"
    assert message_id.endswith("@centralita.example")
    # ... and sits under her mail: her client shows it in the same conversation, even with
    # Gmail's long ids (never RFC 2047 encoded, which would break threading).
    assert mail["In-Reply-To"] == f"<{HER_MAIL}>"
    assert split_ids(mail["References"]) == [HER_MAIL]
    assert b"=?utf-8?q?=3C" not in server.mailroom.raw()
    assert mail["Subject"] == "Re: Mi pedido no llegó [#1042]"
    assert mail["From"] == "Soporte Centralita <soporte@centralita.example>"
    assert mail["To"] == MARIA
    assert mail["Date"].datetime == NOW
    assert mail["Content-Language"] == "es"
    # A robot wrote it: her out-of-office must not answer it (RFC 3834, Microsoft).
    assert mail["Auto-Submitted"] == "auto-replied"
    assert mail["X-Auto-Response-Suppress"] == "All"
    # Answering goes to an address that proves she got our mail about ticket 1042.
    [reply_to] = mail["Reply-To"].addresses
    assert reply_to.addr_spec.startswith("soporte+t1042.")
    assert TOKENS.ticket_number(reply_to.addr_spec, box.address) == 1042


async def test_her_third_mail_in_the_thread_gets_every_id_in_order_and_one_tag(
    server: Server,
) -> None:
    thread = ("first@mail.gmail.com", "centralita.1.ab@centralita.example", HER_MAIL)
    await deliver(acknowledgement(
        reply_to=thread, ticket_subject="RE: Mi pedido no llegó [#1042]",
    ), mailbox(server.port))

    mail = server.mailroom.mail()
    assert split_ids(mail["References"]) == list(thread)
    assert mail["In-Reply-To"] == f"<{HER_MAIL}>"
    assert mail["Subject"] == "RE: Mi pedido no llegó [#1042]"  # no "Re: RE:", one tag


async def test_a_reminder_nobody_asked_for_is_auto_generated(server: Server) -> None:
    await deliver(acknowledgement(reply_to=(), kind="progress", subject="Seguimos en ello"),
                  mailbox(server.port))

    mail = server.mailroom.mail()
    assert mail["Auto-Submitted"] == "auto-generated"
    assert mail["X-Auto-Response-Suppress"] == "All"
    assert mail["Subject"] == "Seguimos en ello [#1042]"
    assert "In-Reply-To" not in mail and "References" not in mail


async def test_an_agents_reply_is_a_human_mail_without_auto_submitted(server: Server) -> None:
    await deliver(acknowledgement(automatic=False, kind="reply",
                                  text="Hola María, tu pedido sale hoy. Saludos, Ana"),
                  mailbox(server.port))

    mail = server.mailroom.mail()
    assert "Auto-Submitted" not in mail
    assert "X-Auto-Response-Suppress" not in mail
    assert mail["In-Reply-To"] == f"<{HER_MAIL}>"  # still in her conversation


async def test_without_a_display_name_the_company_name_shows_and_without_tokens_the_mailbox(
    server: Server,
) -> None:
    box = mailbox(server.port, display_name="")
    message, _ = compose(acknowledgement(), mailbox=box, settings=EmailSettings(),
                         tokens=ReplyTokens(""), now=NOW, company="Tienda Ñandú")
    await send_smtp(message, box)

    mail = server.mailroom.mail()
    assert mail["From"].addresses[0].display_name == "Tienda Ñandú"
    assert "Reply-To" not in mail  # answers go to the From address itself


async def test_her_client_shows_plain_text_and_safe_html_of_the_same_words(
    server: Server,
) -> None:
    text = ("Hola María:\n"
            "probamos <script>alert('x')</script> & seguimos.\n"
            "Sigue tu envío en https://envios.example/seguir?id=7&k=a.\n"
            "\n"
            "Saludos, Ana\n"
            + "larga " * 300)  # one 1800-character line: too long for SMTP as it is
    await deliver(acknowledgement(automatic=False, text=text), mailbox(server.port))

    mail = server.mailroom.mail()
    assert mail.get_content_type() == "multipart/alternative"
    plain = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert plain.get_content().replace("\r\n", "\n") == text + "\n"
    body = html.get_content()
    assert "<script>" not in body and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body
    assert ('<a href="https://envios.example/seguir?id=7&amp;k=a">'
            "https://envios.example/seguir?id=7&amp;k=a</a>.") in body
    assert "<p>Hola María:<br>" in body and "<p>Saludos, Ana<br>" in body
    assert plain["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert max(len(line) for line in server.mailroom.raw().split(b"\r\n")) <= 998


async def test_an_answer_keeps_the_customers_subject_so_gmail_threads_it(
        server: Server) -> None:
    # The acknowledgement template has its own subject, but an answer in María's thread
    # must carry hers: Gmail joins a conversation only when the subject matches.
    await deliver(acknowledgement(subject="Recibimos tu solicitud [#1042]"),
                  mailbox(server.port))
    assert server.mailroom.mail()["Subject"] == "Re: Mi pedido no llegó [#1042]"


async def test_spanish_subject_and_sender_name_arrive_intact(server: Server) -> None:
    box = mailbox(server.port, display_name="Atención al Cliente — Ñandú")
    # A survey that starts its own conversation keeps the template's subject.
    await deliver(acknowledgement(subject="¿Recibió su pedido? Encuesta rápida", reply_to=()),
                  box)

    mail = server.mailroom.mail()
    assert mail["Subject"] == "¿Recibió su pedido? Encuesta rápida [#1042]"
    assert mail["From"].addresses[0].display_name == "Atención al Cliente — Ñandú"
    headers = server.mailroom.raw().split(b"\r\n\r\n", 1)[0]
    assert headers.isascii() and b"=?utf-8?" in headers  # RFC 2047 on the wire


async def test_attachments_arrive_with_their_spanish_names_and_missing_ones_are_named(
    server: Server,
) -> None:
    pdf = b"%PDF-1.4\n" + bytes(range(256)) * 40
    await deliver(acknowledgement(automatic=False, attachments=(
        Attachment("presupuesto año 2026 – señal.pdf", "application/pdf", pdf),
        Attachment("notas.txt", "text/plain", "línea 1\nlínea 2\n".encode()),
        Attachment("video.mp4", "video/mp4", None, size=80_000_000),
    )), mailbox(server.port))

    mail = server.mailroom.mail()
    assert mail.get_content_type() == "multipart/mixed"
    files = {part.get_filename(): part for part in mail.iter_attachments()}
    assert set(files) == {"presupuesto año 2026 – señal.pdf", "notas.txt"}
    assert files["presupuesto año 2026 – señal.pdf"].get_content() == pdf
    assert files["presupuesto año 2026 – señal.pdf"].get_content_type() == "application/pdf"
    assert files["notas.txt"].get_content_type() == "text/plain"
    assert b"filename*" in server.mailroom.raw()  # RFC 2231
    text = mail.get_body(("plain",)).get_content()
    assert "(attachment not sent: video.mp4)" in text
    assert "(attachment not sent: video.mp4)" in mail.get_body(("html",)).get_content()


# --- header injection ------------------------------------------------------------------------


@pytest.mark.parametrize("recipient", [
    "",
    "   ",
    "maria@correo.example, jefe@correo.example",
    "maria@correo.example; jefe@correo.example",
    "maria@correo.example jefe@correo.example",
    "maria @correo.example",
    "maria@correo.example\r\nBcc: x@evil.example",
    "maria@correo.example\nBcc: x@evil.example",
    "María <maria@correo.example>, x@evil.example",
    "not an address",
    "maria@localhost",
])
async def test_a_recipient_that_is_not_exactly_one_address_is_refused_before_sending(
    server: Server, recipient: str,
) -> None:
    with pytest.raises(PermanentError) as refused:
        await deliver(acknowledgement(recipient=recipient), mailbox(server.port))

    assert "address" in refused.value.reason
    assert server.mailroom.envelopes == []


async def test_a_name_and_address_recipient_is_accepted(server: Server) -> None:
    await deliver(acknowledgement(recipient="María Pérez <maria@correo.example>"),
                  mailbox(server.port))

    mail = server.mailroom.mail()
    assert mail["To"].addresses[0].display_name == "María Pérez"
    assert server.mailroom.envelopes[0].rcpt_tos == [MARIA]


async def test_line_breaks_in_subject_and_names_never_create_a_header(server: Server) -> None:
    box = mailbox(server.port, display_name="Soporte\r\nBcc: spy@evil.example")
    await deliver(acknowledgement(
        subject="Hola\r\nBcc: x@evil.example\r\n\r\n<html>pwned\u2028X-Evil: 2",
        locale="es\r\nX-Evil: 1", ticket_subject="",
        recipient="María <maria@correo.example>",
    ), box)

    mail = server.mailroom.mail()
    assert server.mailroom.envelopes[0].rcpt_tos == [MARIA]
    assert "Bcc" not in mail and "X-Evil" not in mail
    assert mail["Subject"] == "Hola Bcc: x@evil.example <html>pwned X-Evil: 2 [#1042]"
    assert mail["From"].addresses[0].display_name == "Soporte Bcc: spy@evil.example"
    assert mail["From"].addresses[0].addr_spec == "soporte@centralita.example"
    assert "Content-Language" not in mail  # not a language tag: left out
    assert mail.get_body(("plain",)).get_content().startswith("Hola María")


# --- when the server says no -----------------------------------------------------------------


@pytest.mark.parametrize(("stage", "reply", "error", "shown"), [
    ("refuse_data", "451 4.3.0 try later", TransientError, "SMTP 451 4.3.0 try later"),
    ("refuse_rcpt", "450 4.2.1 mailbox busy", TransientError, "450 4.2.1 mailbox busy"),
    ("refuse_mail", "421 4.7.0 too many connections", TransientError, "421"),
    ("refuse_rcpt", "550 5.1.1 no such user", PermanentError, "550 5.1.1 no such user"),
    ("refuse_data", "554 5.7.1 message rejected as spam", PermanentError,
     "SMTP 554 5.7.1 message rejected as spam (from 127.0.0.1)"),
    ("refuse_mail", "553 5.7.1 sender not allowed", PermanentError, "553 5.7.1"),
])
async def test_the_server_answer_decides_whether_the_outbox_retries(
    server: Server, stage: str, reply: str, error: type[Exception], shown: str,
) -> None:
    setattr(server.mailroom, stage, reply)

    with pytest.raises(error) as failed:
        await deliver(acknowledgement(), mailbox(server.port))

    assert shown in failed.value.reason
    assert server.mailroom.envelopes == []


async def test_no_server_listening_is_a_transient_failure() -> None:
    port = free_port()  # nobody listens here: connection refused

    with pytest.raises(TransientError) as failed:
        await deliver(acknowledgement(), mailbox(port))

    assert f"127.0.0.1:{port}" in failed.value.reason


async def test_a_server_that_never_answers_times_out_as_a_transient_failure() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts, says nothing until the client gives up
        writer.close()

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransientError) as failed:
            await deliver(acknowledgement(),
                          mailbox(port, timeout=timedelta(milliseconds=300)))
    finally:
        listener.close()
    assert "did not answer in time" in failed.value.reason


async def test_a_server_that_hangs_up_at_once_is_a_transient_failure() -> None:
    async def rude(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    listener = await asyncio.start_server(rude, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransientError):
            await deliver(acknowledgement(), mailbox(port))
    finally:
        listener.close()


# --- SMTP AUTH -------------------------------------------------------------------------------


def _only_soporte(server, session, envelope, mechanism, auth_data) -> AuthResult:
    good = (isinstance(auth_data, LoginPassword) and auth_data.login == b"soporte"
            and auth_data.password == b"clave-correcta")
    # handled=False: aiosmtpd then answers 535 itself (by default a failed authenticator
    # is assumed to have answered, and the client waits for a reply that never comes).
    return AuthResult(success=good, handled=False)


# Plain AUTH on loopback, on purpose: aiosmtpd warns about it for every connection.
plain_auth = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")


@pytest.fixture
def auth_server(start_server: Callable[..., Server]) -> Server:
    return start_server(authenticator=_only_soporte, auth_require_tls=False,
                        auth_required=True)


@plain_auth
async def test_with_the_right_password_the_mail_leaves(auth_server: Server) -> None:
    box = mailbox(auth_server.port, smtp_user="soporte", smtp_password="clave-correcta")
    await deliver(acknowledgement(), box)

    assert auth_server.mailroom.envelopes[0].rcpt_tos == [MARIA]


@plain_auth
async def test_a_wrong_password_is_permanent_and_never_shown(auth_server: Server) -> None:
    box = mailbox(auth_server.port, smtp_user="soporte", smtp_password="clave-vieja")

    with pytest.raises(PermanentError) as failed:
        await deliver(acknowledgement(), box)

    assert "535" in failed.value.reason
    assert "clave-vieja" not in failed.value.reason
    assert "clave-vieja" not in repr(failed.value.__cause__)
    assert auth_server.mailroom.envelopes == []


@plain_auth
async def test_without_credentials_a_server_requiring_auth_refuses_permanently(
    auth_server: Server,
) -> None:
    with pytest.raises(PermanentError) as failed:
        await deliver(acknowledgement(), mailbox(auth_server.port))

    assert "530" in failed.value.reason


# --- TLS ----------------------------------------------------------------------------------


@pytest.fixture
def starttls_server(start_server: Callable[..., Server],
                    certificate: tuple[Path, Path]) -> Server:
    return start_server(tls_context=server_tls(certificate), require_starttls=True)


async def test_a_self_signed_certificate_is_refused_and_retried_later(
    starttls_server: Server,
) -> None:
    box = mailbox(starttls_server.port, smtp_security="starttls")

    with pytest.raises(TransientError) as failed:
        await deliver(acknowledgement(), box)

    assert "certificate was refused" in failed.value.reason
    assert starttls_server.mailroom.envelopes == []


async def test_a_trusted_certificate_carries_the_mail_over_starttls(
    starttls_server: Server, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The machine trusts our test authority, as it would a real one: no setting needed.
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    await deliver(acknowledgement(), mailbox(starttls_server.port, smtp_security="starttls"))

    assert starttls_server.mailroom.over_tls == [True]
    assert starttls_server.mailroom.mail()["Subject"] == "Re: Mi pedido no llegó [#1042]"


async def test_implicit_tls_checks_the_certificate_too(
    start_server: Callable[..., Server], certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tls = start_server(ssl_context=server_tls(certificate))
    box = mailbox(tls.port, smtp_security="tls")

    with pytest.raises(TransientError) as failed:
        await deliver(acknowledgement(), box)
    assert "certificate was refused" in failed.value.reason

    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    await deliver(acknowledgement(), box)
    assert tls.mailroom.over_tls == [True]


async def test_starttls_configured_but_not_offered_never_sends_in_clear(server: Server) -> None:
    with pytest.raises(TransientError) as failed:
        await deliver(acknowledgement(), mailbox(server.port, smtp_security="starttls"))

    assert "STARTTLS" in failed.value.reason
    assert server.mailroom.envelopes == []
