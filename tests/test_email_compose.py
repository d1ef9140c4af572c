"""Email out, told as what the customer's mail server receives: how a message is composed.

Every message is composed by `compose` and handed by `send_smtp` to a real SMTP server
(aiosmtpd on loopback, `tests.smtp_servers`); what arrives is parsed back the way her mail
client would read it: threading headers, subjects, names, the plain and HTML bodies,
attachments, and header injection refused. How delivery fails (refusals, timeouts, AUTH,
TLS) is in test_email_send.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.email.compose import compose
from adapters.email.ids import split_ids
from adapters.email.settings import EmailSettings
from adapters.email.smtp import send_smtp
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Attachment, PermanentError
from tests.smtp_servers import (
    HER_MAIL,
    MARIA,
    NOW,
    TOKENS,
    Server,
    Servers,
    acknowledgement,
    deliver,
    mailbox,
)


@pytest.fixture
def server() -> Iterator[Server]:
    """The customer's mail server, on loopback."""
    servers = Servers()
    yield servers.start()
    servers.stop()


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
