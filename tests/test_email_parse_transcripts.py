"""The stories behind the email corpus (tests/email_corpus): what the agent sees when a
customer replies from Gmail, Outlook or a phone, in Spanish or English — the new lines
only, without the quoted history, reply headers or signatures, while forwards stay whole —
and what happens to the mail no human wrote: RFC 3834 automated mail, out-of-office
replies, bounces threaded to the mail that failed, and read receipts."""

from __future__ import annotations

import pytest

from adapters.email.parse import html_to_text, strip_quoted
from tests.test_email_parse import CORPUS, mail, parse

ACK = "centralita.19a2b3c4d5e.1f2e3d4c5b6a7988@example.com"


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
