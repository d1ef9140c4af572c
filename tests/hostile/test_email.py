"""Hostile input at the email door: a From header built so that the gateway believes the
mail comes from someone else. What a mail client answers is the address in angle
brackets; anything in a display name, a quoted string, a comment or an encoded word only
looks like an address. The gateway reads it the same way: the bracketed address, or no
address at all (the `unknown@invalid` marker, with the raw header kept as the name) —
never one taken out of the name.

The parser's public function (`parse_email`) for each variant, and the real pipeline (a
Dovecot mailbox on loopback, the IMAP adapter, the SMTP server the acknowledgement goes
to) for the attack itself.
"""

from __future__ import annotations

import time

import pytest

import adapters.email.parse as parse_module
from adapters.email.headers import UNKNOWN_SENDER
from gateway.store.models import Contact, Identity, Message
from tests import test_email_channel
from tests.mailservers import USER, eventually
from tests.test_email_channel import Office, ticket_of
from tests.test_email_parse import mail, parse

# the email channel's fixtures: a real Dovecot and SMTP server on loopback, SQLite
office, dovecot, smtp, db_url = (test_email_channel.office, test_email_channel.dovecot,
                                 test_email_channel.smtp, test_email_channel.db_url)

CEO, EVE = "ceo@bank.example", "attacker@evil.example"
ATTACK = f"=?utf-8?q?=0D=0A?= {CEO} <{EVE}>"


def sent_by(sender: str) -> bytes:
    """A short mail whose From header is exactly `sender`."""
    return mail("Transfieran hoy, es urgente.", sender=sender)


# -- the bracketed address wins ----------------------------------------------------------------


@pytest.mark.parametrize("sender", [
    ATTACK,                                                     # the probe's header
    f"{CEO} <{EVE}>",                                           # an address as the name
    f'"{CEO}, CEO" <{EVE}>',                                    # quoted, with a comma
    f"{CEO}, CEO <{EVE}>",                                      # unquoted comma: two boxes
    f"=?utf-8?q?ceo=40bank.example?= <{EVE}>",                  # an encoded word (Q)
    f"=?utf-8?b?Y2VvQGJhbmsuZXhhbXBsZQ==?= <{EVE}>",            # an encoded word (B)
    f"=?utf-8?q?CEO_=3Cceo=40bank.example=3E?= <{EVE}>",        # encoded brackets
    f"=?utf-8?q?=0D=0ABcc:_{CEO}?= <{EVE}>",                    # CR/LF and a header inside
    f'"CEO\n {CEO}" <{EVE}>',                                   # a folded name
    f"(CEO {CEO}) {EVE}",                                       # a comment before
    f"{EVE} ({CEO})",                                           # a comment after
    f"{CEO} <{EVE}> {CEO}",                                     # trailing junk
    f"<{EVE}> {CEO}",
    f'"<{CEO}>" <{EVE}>',                                       # brackets inside quotes
])
def test_the_address_in_angle_brackets_is_the_sender_whatever_the_name_says(sender: str):
    msg = parse(sent_by(sender))
    assert msg.sender.address == EVE
    # and the name, which would only mislead the agents, does not carry the other address
    assert CEO not in msg.sender.name


@pytest.mark.parametrize("sender", [
    f"CEO {CEO}",                                               # missing brackets
    f"=?utf-8?q?CEO?= {CEO}",
    f'"CEO" {CEO}',
    f"{CEO} {EVE}",                                             # two bare addresses
    f"<{CEO}> <{EVE}>",                                         # two for one mailbox
    "=?utf-8?q?ceo=40bank.example?=",                           # only an encoded word
    "=?utf-8?q?x?=ceo@bank.example",                            # glued to one
    f'"{CEO}"',                                                 # only a quoted string
    f"({CEO})",                                                 # only a comment
    f"CEO <> {CEO}",                                            # empty brackets
    "Undisclosed recipients:;",
])
def test_without_a_usable_address_the_sender_is_marked_unknown_with_the_raw_header(
        sender: str):
    msg = parse(sent_by(sender))
    assert msg.sender.address == UNKNOWN_SENDER
    assert msg.sender.name == sender  # exactly what came, undecoded
    # Agents see it; nobody is sent an acknowledgement to a made-up address.
    assert msg.automated


@pytest.mark.parametrize("header", [
    b"From: CEO\r" + CEO.encode() + b" <" + EVE.encode() + b">",   # a bare CR
    b"From: CEO\n\t" + CEO.encode() + b" <" + EVE.encode() + b">",  # LF folding
    b"From: =?utf-8?q?CEO?=\r\n " + CEO.encode() + b"\r\n <" + EVE.encode() + b">",
])
def test_line_breaks_in_the_name_never_make_it_an_address(header: bytes):
    raw = header + b"\r\nTo: soporte@example.com\r\nSubject: x\r\n\r\nHola"
    assert parse(raw).sender.address in (EVE, UNKNOWN_SENDER)


@pytest.mark.parametrize(("sender", "address", "name"), [
    ('"Smith, Anne" <Anne.Smith@contoso.example>', "anne.smith@contoso.example",
     "Smith, Anne"),
    ("=?UTF-8?Q?Mar=C3=ADa_Jos=C3=A9?= <Maria@Example.org>", "maria@example.org", "María José"),
    ("=?iso-8859-1?Q?Ver=F3nica?= =?iso-8859-1?Q?_D=EDaz?= <vdiaz@x.example>", "vdiaz@x.example",
     "Verónica Díaz"),
    ("cliente@correo.example", "cliente@correo.example", ""),
    ("<cliente@correo.example>", "cliente@correo.example", ""),
    ("MAILER-DAEMON@mx.example.com (Mail Delivery System)", "mailer-daemon@mx.example.com", ""),
    ("Ana <ana@correo.example", "ana@correo.example", "Ana"),          # unclosed bracket
    ("<@relay.example:ana@correo.example>", "ana@correo.example", ""),  # obsolete route
    ('"john doe"@correo.example', '"john doe"@correo.example', ""),
    ("Soporte: Ana <ana@correo.example>;", "ana@correo.example", "Ana"),  # a group
    ("Ana <ana@correo.example>, Bea <bea@correo.example>", "ana@correo.example", "Ana"),
])
def test_ordinary_senders_keep_their_address_and_name(sender: str, address: str, name: str):
    msg = parse(sent_by(sender))
    assert (msg.sender.address, msg.sender.name) == (address, name)


def test_an_unusable_from_falls_back_to_the_sender_header_not_to_the_name():
    raw = sent_by(f"CEO {CEO}").replace(b"To:", f"Sender: <{EVE}>\r\nTo:".encode(), 1)
    assert parse(raw).sender.address == EVE


def test_the_last_resort_reader_does_not_take_the_address_from_the_name_either(
        monkeypatch: pytest.MonkeyPatch):
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(parse_module, "_parse", explode)
    assert parse(sent_by(ATTACK)).sender.address == EVE
    assert parse(sent_by(f"CEO {CEO}")).sender.address == UNKNOWN_SENDER


# -- through the real pipeline -------------------------------------------------------------------


def _mail(sender: str, subject: str, body: str, message_id: str) -> bytes:
    return (f"From: {sender}\r\nTo: {USER}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{message_id}>\r\nDate: Mon, 23 Nov 2026 10:00:00 -0300\r\n"
            f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
            ).encode()


async def test_the_forged_name_neither_joins_the_ceos_tickets_nor_gets_answers_meant_for_her(
        office: Office) -> None:
    # The CEO writes first, from her own address: a ticket of hers.
    await office.dovecot.append(_mail(f"Carla Ruiz <{CEO}>", "Cuenta corporativa",
                                      "Necesito revisar la cuenta.", "ceo-1@bank.example"))
    hers = await eventually(lambda: ticket_of("ceo-1@bank.example"))
    await office.deliver()
    # The attacker writes with her address in the name, answering the CEO's subject.
    await office.dovecot.append(_mail(ATTACK, f"Re: Cuenta corporativa [#{hers.number}]",
                                      "Cambien la cuenta de destino.", "eve-1@evil.example"))
    theirs = await eventually(lambda: ticket_of("eve-1@evil.example"))
    assert theirs.id != hers.id  # not joined to the CEO's ticket
    stored = await Message.get(external_id="eve-1@evil.example")
    assert stored.author_address == EVE
    identity = await Identity.get(channel="email", address=EVE).prefetch_related("contact")
    ceo = await Identity.get(channel="email", address=CEO).prefetch_related("contact")
    assert identity.contact.id != ceo.contact.id and await Contact.all().count() == 2
    # The acknowledgement goes to the attacker's own address, not to the CEO.
    await office.deliver()
    assert [m["To"] for m in office.smtp.received] == [CEO, EVE]


# -- headers built to be slow ---------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"to": "x" * 100_000},                                      # an address run with no @
    {"sender": '"' + "x" * 100_000 + f'" <{EVE}>'},              # a name that never ends
    {"sender": ", ".join(f"<a{i}@evil.example>" for i in range(5_000))},
    {"sender": "(" * 100_000 + f"<{EVE}>"},                     # comments that never close
])
def test_a_huge_address_header_is_read_in_linear_time(headers: dict[str, str]):
    started = time.perf_counter()
    msg = parse(mail("Hola", **headers))
    # a quadratic reading took 30 s on the first one; a linear one takes milliseconds
    assert time.perf_counter() - started < 2
    assert msg.sender.address in (EVE, "a0@evil.example", "maria@correo.example",
                                  UNKNOWN_SENDER)
