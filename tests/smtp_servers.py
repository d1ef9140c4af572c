"""What the email-send tests share (`test_email_compose.py`, `test_email_send.py`): the
customer's mail server — aiosmtpd on loopback, keeping what arrives or refusing a stage —
and our side: María's mailbox settings, the acknowledgement to her, and `deliver`, which
composes a message and hands it to `send_smtp`.

Example:
    >>> servers = Servers(); server = servers.start()          # doctest: +SKIP
    >>> await deliver(acknowledgement(), mailbox(server.port))  # doctest: +SKIP
    >>> server.mailroom.mail()["Subject"]                       # doctest: +SKIP
    'Re: Mi pedido no llegó [#1042]'
"""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from adapters.email.compose import compose
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.smtp import send_smtp
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Outbound
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


class Servers:
    """Starts aiosmtpd servers on loopback (Controller keyword arguments as given), and
    stops them all (a test module's `start_server` fixture)."""

    def __init__(self) -> None:
        self.controllers: list[Controller] = []

    def start(self, **kwargs: Any) -> Server:
        mailroom = Mailroom()
        port = free_port()  # Controller(port=0) cannot tell which port it got
        controller = Controller(mailroom, hostname="127.0.0.1", port=port,
                                server_hostname="mx.correo.example", **kwargs)
        controller.start()
        self.controllers.append(controller)
        return Server(mailroom, port)

    def stop(self) -> None:
        for controller in self.controllers:
            controller.stop()


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
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
