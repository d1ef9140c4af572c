"""Raw email → `Inbound` (adapters/email/parse.py): the corpus in tests/email_corpus, whose
expectations live in expected.toml; which ticket a mail names; identity, names and locale;
attachments and customers' HTML; and bytes no mail client would send, which never raise.
The stories behind the corpus (replies, machines, bounces) are in
test_email_parse_transcripts.py, which shares the helpers defined here."""

from __future__ import annotations

import base64
import hashlib
import logging
import random
import tomllib
from pathlib import Path

import pytest

import adapters.email.parse as parse_module
from adapters.email.parse import parse_email
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Inbound

CORPUS = Path(__file__).parent / "email_corpus"
EXPECTED: dict[str, dict] = tomllib.loads((CORPUS / "expected.toml").read_text("utf-8"))
BOX = MailboxSettings(name="soporte", address="soporte@example.com", imap_host="localhost",
                      imap_user="soporte", smtp_host="localhost")
SETTINGS = EmailSettings(token_secret="corpus-secret", mailboxes=[BOX])
TOKENS = ReplyTokens("corpus-secret")


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
