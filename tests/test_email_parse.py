"""Raw email → `Inbound` (adapters/email/parse.py): the corpus in tests/email_corpus, whose
expectations live in expected.toml, and the stories behind it — what the agent sees when a
customer writes from Gmail, Outlook or a phone, in Spanish or English, and what happens to
the mail no human wrote."""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import tomllib
from pathlib import Path

import pytest

import adapters.email.parse as parse_module
from adapters.email.parse import html_to_text, parse_email, strip_quoted
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Inbound

CORPUS = Path(__file__).parent / "email_corpus"
EXPECTED: dict[str, dict] = tomllib.loads((CORPUS / "expected.toml").read_text("utf-8"))
BOX = MailboxSettings(name="soporte", address="soporte@example.com", imap_host="localhost",
                      imap_user="soporte", smtp_host="localhost")
SETTINGS = EmailSettings(token_secret="corpus-secret", mailboxes=[BOX])
TOKENS = ReplyTokens("corpus-secret")
ACK = "centralita.19a2b3c4d5e.1f2e3d4c5b6a7988@example.com"


def parse(raw: bytes, **options) -> Inbound:
    return parse_email(raw, mailbox=BOX, settings=SETTINGS, tokens=TOKENS, **options)


def mail(body: str = "Hola, mi pedido no llegó.", *, subject: str = "Consulta",
         sender: str = "María <maria@correo.example>", to: str = "soporte@example.com",
         headers: str = "", content_type: str = 'text/plain; charset="utf-8"') -> bytes:
    """A small email as a mail client would send it (CRLF, 8-bit UTF-8 body)."""
    head = (f"From: {sender}\nTo: {to}\nSubject: {subject}\n"
            f"Message-ID: <{hashlib.md5(body.encode() + headers.encode()).hexdigest()}"
            f"@correo.example>\n{headers}MIME-Version: 1.0\nContent-Type: {content_type}\n"
            "Content-Transfer-Encoding: 8bit\n\n")
    return (head + body).replace("\n", "\r\n").encode("utf-8")


def synthetic_id(raw: bytes) -> str:
    return f"{hashlib.sha256(raw).hexdigest()[:32]}@centralita.missing-id"


# -- the corpus -------------------------------------------------------------------------------


def test_the_corpus_has_an_expectation_for_every_file_and_a_file_for_every_expectation():
    files = {path.name for path in CORPUS.glob("*.eml")}
    assert files == set(EXPECTED)
    assert len(files) >= 35


def check(msg: Inbound, want: dict, raw: bytes) -> None:
    assert msg.raw == raw
    assert msg.channel == "email" and msg.mailbox == "soporte"
    if "subject" in want:
        assert msg.subject == want["subject"]
    if "subject_starts" in want:
        assert msg.subject.startswith(want["subject_starts"])
    if "subject_min_length" in want:
        assert len(msg.subject) >= want["subject_min_length"]
    assert "\n" not in msg.subject and "\r" not in msg.subject
    if "sender" in want:
        assert msg.sender.address == want["sender"]
    if "sender_name" in want:
        assert msg.sender.name == want["sender_name"]
    assert msg.sender.kind == "customer"
    if "text" in want:
        assert msg.text == want["text"]
    if "text_starts" in want:
        assert msg.text.startswith(want["text_starts"]), msg.text
    for part in want.get("text_contains", []):
        assert part in msg.text, msg.text
    for part in want.get("text_not_contains", []):
        assert part not in msg.text, msg.text
    assert "\r" not in msg.text
    if "kind" in want:
        assert msg.kind == want["kind"]
    if "automated" in want:
        assert msg.automated is want["automated"]
    if "attachments" in want:
        assert len(msg.attachments) == want["attachments"]
    if "attachment_names" in want:
        assert [a.filename for a in msg.attachments] == want["attachment_names"]
    if "attachment_types" in want:
        assert [a.content_type for a in msg.attachments] == want["attachment_types"]
    if "inline" in want:
        assert sum(a.inline for a in msg.attachments) == want["inline"]
    for attachment in msg.attachments:
        assert attachment.data is not None and attachment.size == len(attachment.data)
    if "reply_to" in want:
        assert list(msg.thread.reply_to) == want["reply_to"]
    if "reply_to_count" in want:
        assert len(msg.thread.reply_to) == want["reply_to_count"]
    if "reply_to_first" in want:
        assert msg.thread.reply_to[0] == want["reply_to_first"]
    if "reply_to_last" in want:
        assert msg.thread.reply_to[-1] == want["reply_to_last"]
    if "ticket_number" in want:
        expected = None if want["ticket_number"] == "none" else want["ticket_number"]
        assert msg.thread.ticket_number == expected
    if "verified" in want:
        assert msg.thread.verified is want["verified"]
    assert msg.thread.conversation is None
    if "html_present" in want:
        assert (msg.html is not None) is want["html_present"]
    for part in want.get("html_not_contains", []):
        assert part not in (msg.html or "")
    if "external_id" in want:
        expected = synthetic_id(raw) if want["external_id"] == "synthetic" else want["external_id"]
        assert msg.external_id == expected
    assert msg.external_id
    if "locale" in want:
        assert msg.locale == (None if want["locale"] == "none" else want["locale"])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_parses_as_expected(name: str, caplog: pytest.LogCaptureFixture):
    raw = (CORPUS / name).read_bytes()
    with caplog.at_level(logging.WARNING, logger="centralita.email.parse"):
        msg = parse(raw)
    check(msg, EXPECTED[name], raw)
    # every file, broken or not, is understood by the parser, not by the last resort
    assert not [r for r in caplog.records if "kept as raw text" in r.getMessage()]


# -- what the agent sees of a reply --------------------------------------------------------


def test_maria_replies_from_gmail_in_spanish_quoting_our_ack_the_agent_sees_only_her_new_lines():
    msg = parse((CORPUS / "gmail_es_reply_quoted.eml").read_bytes())
    assert msg.sender.name == "María José Peña"
    assert msg.subject == "Re: Mi pedido no llegó"
    assert msg.text.startswith("Hola, ya pasaron tres días")
    assert "Tu número de solicitud" not in msg.text
    assert msg.thread.reply_to[-1] == ACK          # the acknowledgement she answers


QUOTED = "> Hola, recibimos tu solicitud.\n> Tu número es el #1042.\n"


@pytest.mark.parametrize(("language", "header"), [
    ("en", "On Mon, Nov 23, 2026 at 10:15 AM Soporte <soporte@example.com> wrote:"),
    ("en, wrapped by Gmail", "On Mon, Nov 23, 2026 at 10:15 AM Soporte Centralita <\n"
                             "soporte@example.com> wrote:"),
    ("es", "El lun, 23 nov 2026 a las 10:15, Soporte (<soporte@example.com>) escribió:"),
    ("es, Thunderbird", "El 23/11/26 a las 10:15, Soporte Centralita escribió:"),
    ("pt", "Em seg., 23 de nov. de 2026 às 10:15, Suporte <soporte@example.com> escreveu:"),
    ("fr", "Le lun. 23 nov. 2026 à 10:15, Support <soporte@example.com> a écrit :"),
    ("de", "Am Mo., 23. Nov. 2026 um 10:15 Uhr schrieb Support <soporte@example.com>:"),
])
def test_a_top_posted_reply_loses_the_quote_and_its_header(language: str, header: str):
    text = f"Sigue sin llegar, ¿me ayudan?\n\n{header}\n\n{QUOTED}"
    assert strip_quoted(text) == "Sigue sin llegar, ¿me ayudan?"


@pytest.mark.parametrize("history", [
    "-----Original Message-----\nFrom: Soporte <soporte@example.com>\n"
    "Sent: Monday, November 23, 2026 10:15 AM\nTo: Juan\nSubject: RE: Pedido\n\nHola Juan",
    "-----Mensaje original-----\nDe: Soporte <soporte@example.com>\n"
    "Enviado el: lunes, 23 de noviembre de 2026 10:15\nPara: Juan\nAsunto: RE: Pedido\n\nHola",
    "________________________________\nFrom: Soporte <soporte@example.com>\n"
    "Sent: Monday, November 23, 2026 10:15\nTo: Juan <juan@correo.example>\n"
    "Subject: Pedido\n\nHola Juan",
    "________________________________\nDe: Soporte <soporte@example.com>\n"
    "Enviado: lunes, 23 de noviembre de 2026 10:15\nPara: Juan <juan@correo.example>\n"
    "Asunto: Pedido\n\nHola Juan",
    "*From:* Soporte <soporte@example.com>\n*Sent:* Monday, November 23, 2026 10:15\n"
    "*To:* Juan\n*Subject:* Pedido\n\nHola Juan",
])
def test_juan_answers_from_outlook_and_the_unquoted_history_below_is_cut(history: str):
    text = f"Adjunto la factura otra vez.\n\nSaludos,\nJuan\n\n{history}\n"
    assert strip_quoted(text) == "Adjunto la factura otra vez.\n\nSaludos,\nJuan"


@pytest.mark.parametrize("footer", [
    "Sent from my iPhone", "Sent from my Android phone", "Sent from my Samsung Galaxy smartphone.",
    "Enviado desde mi iPhone", "Enviado desde mi Android", "Obtener Outlook para iOS",
    "Get Outlook for Android<https://aka.ms/ghei36>", "Enviado do meu iPhone",
    "Sent from Yahoo Mail on Android",
])
def test_phone_footers_are_not_part_of_what_the_customer_wrote(footer: str):
    text = f"Ok, gracias.\n\n{footer}\n\n{QUOTED}"
    assert strip_quoted(text) == "Ok, gracias."


def test_a_signature_after_the_dash_dash_line_is_dropped():
    assert strip_quoted("Hola, cambié de dirección.\n\n-- \nJuan Pérez\nGerente\n") == \
        "Hola, cambié de dirección."


def test_andres_answers_between_the_quoted_questions_and_keeps_his_answers():
    text = ("El 23/11/26 a las 10:15, Soporte escribió:\n> ¿Cuál es tu número de pedido?\n"
            "Es el 7781.\n\n> ¿Y la dirección?\nLos Aromos 55.\n")
    assert strip_quoted(text) == "Es el 7781.\n\nLos Aromos 55."


@pytest.mark.parametrize("text", [
    "El pedido llegó roto.\nEl repartidor dijo que escribió a ustedes.\nAm I right?",
    "On Monday I wrote:\nMy order never arrived.\nPlease check.",
    "El lunes les escribió mi hermano:\nque el pedido no llegó.",
])
def test_a_customer_sentence_that_looks_like_a_reply_header_is_kept(text: str):
    assert strip_quoted(text) == text


@pytest.mark.parametrize("marker", ["---------- Forwarded message ---------",
                                    "---------- Mensaje reenviado ---------",
                                    "Begin forwarded message:"])
def test_a_forward_keeps_the_forwarded_mail_it_is_what_the_customer_sends(marker: str):
    text = (f"Miren esto.\n\n{marker}\nDe: Tienda <t@tienda.example>\n"
            "Subject: Pedido enviado\n\nSu pedido fue enviado.\n")
    assert strip_quoted(text) == text.strip("\n")


def test_an_outlook_forward_is_recognised_by_its_rv_subject():
    raw = mail("Miren este aviso.\n\n________________________________\nDe: Tienda "
               "<t@tienda.example>\nEnviado: lunes, 23 de noviembre de 2026\nPara: Verónica\n"
               "Asunto: Entregado\n\nSu pedido fue entregado.\n", subject="RV: Entregado")
    assert "Su pedido fue entregado." in parse(raw).text
    reply = mail("Miren este aviso.\n\n________________________________\nDe: Tienda "
                 "<t@tienda.example>\nEnviado: lunes\nPara: Verónica\nAsunto: Entregado\n\n"
                 "Su pedido fue entregado.\n", subject="RE: Entregado")
    assert parse(reply).text == "Miren este aviso."


def test_when_only_quotes_remain_the_whole_text_is_kept():
    text = "> Hola, ¿sigue pendiente?\n> Saludos"
    assert strip_quoted(text) == text


def test_an_html_only_reply_from_gmail_reads_as_text_without_the_quote():
    html = ('<div dir="ltr">Gracias, <b>ya llegó</b>.<br>Saludos</div><div class="gmail_quote">'
            '<div class="gmail_attr">El lun, 23 nov 2026 a las 10:15, Soporte '
            '&lt;soporte@example.com&gt; escribió:<br></div><blockquote class="gmail_quote">'
            "Hola María, tu pedido sale hoy.</blockquote></div>")
    msg = parse(mail(html, content_type='text/html; charset="utf-8"'))
    assert msg.text == "Gracias, ya llegó.\nSaludos"
    assert msg.html is not None and "ya llegó" in msg.html


def test_html_to_text_renders_blocks_lists_quotes_and_drops_scripts():
    text = html_to_text("<html><head><style>p{}</style></head><body><h1>Hola</h1><p>uno&nbsp;"
                        "<i>dos</i></p><ul><li>a</li><li>b</li></ul><blockquote>citado"
                        "</blockquote><script>alert(1)</script><pre>x  y\nz</pre></body></html>")
    assert text == "Hola\n\nuno dos\n\n- a\n- b\n\n> citado\n>\nx  y\nz"
    assert html_to_text("<html><head><title>t</title><meta charset=utf-8><body>Hola") == "Hola"


# -- machines: RFC 3834 and friends -----------------------------------------------------------


@pytest.mark.parametrize(("headers", "sender", "automated"), [
    ("", "María <maria@correo.example>", False),
    ("Auto-Submitted: auto-generated\n", "Sistema <sistema@correo.example>", True),
    ("Auto-Submitted: auto-replied\n", "Ana <ana@correo.example>", True),
    ("Auto-Submitted: no\n", "Ana <ana@correo.example>", False),
    ("Precedence: bulk\n", "Tienda <news@tienda.example>", True),
    ("Precedence: list\n", "Lista <lista@tienda.example>", True),
    ("Precedence: junk\n", "Spam <spam@tienda.example>", True),
    ("List-Id: Clientes <clientes.tienda.example>\n", "Tienda <a@tienda.example>", True),
    ("List-Unsubscribe: <mailto:baja@tienda.example>\n", "Tienda <a@tienda.example>", True),
    ("Return-Path: <>\n", "Sistema <sistema@correo.example>", True),
    ("", "MAILER-DAEMON@mx.correo.example", True),
    ("", "postmaster@correo.example", True),
    ("", "LISTSERV@listas.example", True),
    ("", "majordomo@listas.example", True),
    ("", "clientes-request@listas.example", True),
    ("", "owner-clientes@listas.example", True),
    ("", "noreply@banco.example", True),
    ("", "no-reply@banco.example", True),
    ("", "donotreply@banco.example", True),
    ("", "do-not-reply@banco.example", True),
    ("", "Avisos <no_reply+cuenta@banco.example>", True),
    ("X-Auto-Response-Suppress: All\n", "Ana <ana@correo.example>", True),
    ("X-Auto-Response-Suppress: DR, OOF\n", "Ana <ana@correo.example>", True),
    ("X-Auto-Response-Suppress: AutoReply\n", "Ana <ana@correo.example>", True),
    ("X-Auto-Response-Suppress: DR, RN, NRN\n", "Ana <ana@correo.example>", False),
    ("X-Autoreply: yes\n", "Ana <ana@correo.example>", True),
    ("X-Autorespond: on\n", "Ana <ana@correo.example>", True),
    ("", "Reply Master <replymaster@correo.example>", False),
])
def test_mail_written_by_machines_is_stored_but_marked_automated(headers: str, sender: str,
                                                                  automated: bool):
    msg = parse(mail("Texto del mensaje.", sender=sender, headers=headers))
    assert msg.automated is automated
    assert msg.text == "Texto del mensaje."          # still a normal Inbound, stored


@pytest.mark.parametrize("subject", ["Out of Office: Consulta", "Automatic reply: Consulta",
                                     "Respuesta automática: Consulta",
                                     "Fuera de la oficina: Consulta", "RE: Autoreply"])
def test_out_of_office_subjects_make_an_auto_reply(subject: str):
    msg = parse(mail("Vuelvo el lunes.", subject=subject))
    assert (msg.kind, msg.automated) == ("auto_reply", True)


def test_a_human_subject_about_absence_is_not_an_auto_reply():
    msg = parse(mail("¿Por qué no contestan?", subject="Ausencia de respuesta"))
    assert (msg.kind, msg.automated) == ("message", False)


# -- bounces ----------------------------------------------------------------------------------


def test_the_bounce_of_our_answer_lands_on_the_ticket_of_the_mail_that_failed():
    msg = parse((CORPUS / "bounce_dsn_postfix_rfc822.eml").read_bytes())
    assert msg.kind == "bounce" and msg.automated
    # newest last: the Message-ID of the mail we sent, after its own References
    assert msg.thread.reply_to[-1] == "centralita.19a2b3c4d5e.bounce0001@example.com"
    assert msg.text.splitlines()[0] == (
        "Delivery failed to juan.perez@cliente.example (status 5.1.1; smtp; 550 5.1.1 "
        "<juan.perez@cliente.example>: Recipient address rejected: User unknown in virtual "
        "mailbox table).")


def test_a_bounce_carrying_only_the_headers_of_the_original_is_threaded_too():
    msg = parse((CORPUS / "bounce_exchange_rfc822_headers.eml").read_bytes())
    assert msg.thread.reply_to == ("ana-first-0001@empresa.example",
                                   "centralita.19a2b3c4d5e.bounce0002@example.com")


def test_an_old_style_bounce_without_a_report_is_threaded_by_the_copy_in_its_text():
    body = ("Hi. This is the qmail-send program at mx.correo.example.\n"
            "I'm afraid I wasn't able to deliver your message to the following addresses.\n\n"
            "<nadie@correo.example>:\nSorry, no mailbox here by that name. (#5.1.1)\n\n"
            "--- Below this line is a copy of the message.\n\n"
            "From: Soporte <soporte@example.com>\nMessage-ID: <centralita.qmail.1@example.com>\n"
            "Subject: [#1060] Recibimos tu solicitud\n\nHola\n")
    msg = parse(mail(body, sender="MAILER-DAEMON@mx.correo.example",
                     subject="failure notice"))
    assert msg.kind == "bounce"
    assert msg.thread.reply_to == ("centralita.qmail.1@example.com",)
    assert msg.text.startswith("Delivery failed to nadie@correo.example (status 5.1.1).")


def test_a_read_receipt_is_automated_and_not_a_bounce():
    raw = (b"From: Ana <ana@correo.example>\r\nTo: soporte@example.com\r\nSubject: Leido: Hola\r\n"
           b"Message-ID: <mdn.1@correo.example>\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: multipart/report; report-type=disposition-notification; "
           b"boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSu mensaje fue leido."
           b"\r\n--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
           b"Final-Recipient: rfc822; ana@correo.example\r\nDisposition: manual-action/"
           b"MDN-sent-manually; displayed\r\n\r\n--b--\r\n")
    msg = parse(raw)
    assert (msg.kind, msg.automated, msg.attachments) == ("auto_reply", True, ())


# -- which ticket -----------------------------------------------------------------------------


def test_a_reply_to_our_token_address_names_its_ticket_and_beats_the_subject_tag():
    token = TOKENS.address("soporte@example.com", 1042)
    msg = parse(mail("Escribo desde otro correo.", to=f"Soporte <{token}>",
                     subject="Re: [#77] Otro asunto"))
    assert (msg.thread.ticket_number, msg.thread.verified) == (1042, True)


@pytest.mark.parametrize("header", ["Cc", "Delivered-To", "X-Original-To"])
def test_the_token_address_is_found_wherever_the_server_put_it(header: str):
    token = TOKENS.address("soporte@example.com", 1042)
    msg = parse(mail("Hola", headers=f"{header}: {token}\n"))
    assert (msg.thread.ticket_number, msg.thread.verified) == (1042, True)


def test_a_forged_token_is_ignored_and_the_subject_tag_is_only_a_claim():
    forged = "soporte+t1042.aaaaaaaa@example.com"
    msg = parse(mail("Déjenme ver el ticket 1042", to=forged))
    assert (msg.thread.ticket_number, msg.thread.verified) == (None, False)
    msg = parse(mail("Déjenme ver el ticket 1042", to=forged, subject="[#1042] hola"))
    assert (msg.thread.ticket_number, msg.thread.verified) == (1042, False)


def test_a_token_of_another_mailbox_is_ignored():
    other = TOKENS.address("ventas@example.com", 1042)
    msg = parse(mail("Hola", to=other))
    assert msg.thread.ticket_number is None


def test_reply_ids_come_from_references_then_in_reply_to_newest_last_without_repeats():
    msg = parse(mail("Hola", headers="References: <a@x> <b@x>\n <c@x> <a@x>\n"
                                      "In-Reply-To: <c@x>\n"))
    assert msg.thread.reply_to == ("b@x", "a@x", "c@x")


# -- identity, names, locale --------------------------------------------------------------------


def test_without_a_message_id_a_redelivery_gets_the_same_synthetic_id():
    raw = (CORPUS / "no_message_id.eml").read_bytes()
    assert parse(raw).external_id == parse(raw).external_id == synthetic_id(raw)


def test_the_sender_falls_back_to_sender_then_return_path_then_unknown():
    base = b"To: soporte@example.com\r\nSubject: x\r\n"
    assert parse(base + b"Sender: Ana <Ana@Correo.example>\r\n\r\nx").sender.address == \
        "ana@correo.example"
    assert parse(base + b"Return-Path: <bob@correo.example>\r\n\r\nx").sender.address == \
        "bob@correo.example"
    assert parse(base + b"From: nadie\r\n\r\nx").sender.address == "unknown@invalid"


def test_a_broken_encoded_name_does_not_stop_the_message():
    msg = parse(mail("Hola", sender="=?x-nada?Q?Jos=E9?= =?utf-8?B?@@@?= <jose@correo.example>"))
    assert msg.sender.address == "jose@correo.example"
    assert msg.text == "Hola"


@pytest.mark.parametrize(("value", "locale"), [("es-CL", "es"), ("en-US", "en"), ("es", "es"),
                                               ("fr-FR", None), ("", None)])
def test_content_language_sets_the_locale_for_spanish_and_english(value: str, locale: str | None):
    headers = f"Content-Language: {value}\n" if value else ""
    assert parse(mail("Hola", headers=headers)).locale == locale


# -- attachments and HTML -----------------------------------------------------------------------


def multipart(*parts: str) -> bytes:
    body = "".join(f"--XX\r\n{part}\r\n" for part in parts) + "--XX--\r\n"
    return (b"From: Ana <ana@correo.example>\r\nTo: soporte@example.com\r\nSubject: Archivos\r\n"
            b"Message-ID: <files.1@correo.example>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=XX\r\n\r\n" + body.encode())


def test_a_file_over_the_limit_is_recorded_with_its_size_but_not_kept():
    big, small = bytes(range(256)) * 20, b"%PDF-1.4 small"
    raw = multipart(
        "Content-Type: text/plain; charset=utf-8\r\n\r\nVan dos archivos.",
        "Content-Type: application/zip; name=fotos.zip\r\nContent-Disposition: attachment; "
        "filename=fotos.zip\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(big).decode(),
        "Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(small).decode())
    msg = parse(raw, max_attachment=1000)
    zipped, pdf = msg.attachments
    assert (zipped.filename, zipped.data, zipped.size) == ("fotos.zip", None, len(big))
    assert (pdf.filename, pdf.data, pdf.size) == ("attachment-2.pdf", small, len(small))
    assert msg.text == "Van dos archivos."


def test_filenames_cannot_climb_out_of_a_directory():
    raw = multipart("Content-Type: text/plain\r\n\r\nHola",
                    "Content-Type: application/pdf\r\nContent-Disposition: attachment; "
                    'filename="..\\\\..\\\\windows/../../etc/passwd"\r\n\r\nx')
    assert parse(raw).attachments[0].filename == "passwd"


def test_an_empty_plain_alternative_gives_way_to_the_html():
    raw = multipart("Content-Type: text/plain; charset=utf-8\r\n\r\n\r\n",
                    "Content-Type: text/html; charset=utf-8\r\n\r\n<p>Mi pedido <b>4455</b></p>")
    assert parse(raw).text == "Mi pedido 4455"


def test_apple_mail_text_around_an_inline_image_is_kept_whole():
    raw = multipart("Content-Type: text/plain; charset=utf-8\r\n\r\nAsí llegó la caja:",
                    "Content-Type: image/png\r\nContent-Disposition: inline; filename=caja.png"
                    "\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=",
                    "Content-Type: text/plain; charset=utf-8\r\n\r\n¿Qué hago?")
    msg = parse(raw)
    assert msg.text == "Así llegó la caja:\n¿Qué hago?"
    assert [(a.filename, a.inline) for a in msg.attachments] == [("caja.png", True)]


def test_customer_html_loses_scripts_and_event_handlers():
    html = ('<p onclick="steal()">Hola <a href="javascript:steal()">aquí</a></p>'
            '<script>steal()</script><img src="x.png" onerror="steal()">'
            '<iframe src="https://evil.example"></iframe>')
    msg = parse(mail(html, content_type="text/html; charset=utf-8"))
    assert msg.html is not None
    for bad in ("<script", "onclick", "onerror", "javascript:", "<iframe", "steal"):
        assert bad not in msg.html
    assert msg.text == "Hola aquí"


# -- never raises -------------------------------------------------------------------------------


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        at = rng.randrange(len(data) + 1)
        if choice < 0.3 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.5:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        elif choice < 0.65:
            del data[at:at + rng.randint(1, 400)]
        elif choice < 0.75:
            data = data[:at]
        elif choice < 0.85:
            data[at:at] = rng.choice([b"\r\n--", b"\n\n", b"=?utf-8?B?", b"boundary=", b"\x00",
                                      b"Content-Type: multipart/mixed\r\n", b">", b"\r\n "])
        else:
            start = rng.randrange(len(data) + 1)
            data[at:at] = data[start:start + rng.randint(1, 300)]
    return bytes(data)


def test_three_hundred_mutated_corpus_files_never_raise():
    rng = random.Random(20261123)
    files = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    for _ in range(300):
        raw = mutate(rng.choice(files), rng)
        msg = parse(raw)
        assert isinstance(msg, Inbound) and msg.raw == raw and msg.channel == "email"
        assert msg.sender.address and msg.external_id


@pytest.mark.parametrize("raw", [
    b"", b"\x00" * 64, b"\xff\xfe" * 100, b"From:\r\n\r\n", b"\r\n\r\n\r\n", b"Subject: " * 5000,
    b"Content-Type: multipart/mixed; boundary=a\r\n\r\n" + b"--a\r\nContent-Type: "
    b"multipart/mixed; boundary=a\r\n\r\n" * 3000,
    bytes(random.Random(7).randrange(256) for _ in range(5000)),
])
def test_any_bytes_at_all_give_an_inbound(raw: bytes):
    msg = parse(raw)
    assert msg.raw == raw and msg.sender.address and msg.external_id


def test_when_the_parser_itself_fails_the_raw_text_is_kept_and_a_warning_logged(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture):
    def explode(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(parse_module, "_parse", explode)
    raw = mail("Hola, sigo esperando.", sender="Ana <Ana@correo.example>")
    with caplog.at_level(logging.WARNING, logger="centralita.email.parse"):
        msg = parse(raw)
    assert msg.text == "Hola, sigo esperando."
    assert msg.sender.address == "ana@correo.example"
    assert msg.external_id and msg.external_id.endswith("@correo.example")
    assert msg.raw == raw
    assert any("kept as raw text" in r.getMessage() for r in caplog.records)
