"""Hostile mail at the mailbox's door, against a real Dovecot IMAP server: a mail too big
to download never stops the mailbox, and the mail after it is answered as usual."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.email.adapter import EmailAdapter
from gateway.core.clock import ManualClock
from gateway.store.models import Attachment, ChannelState, Message
from tests.conftest import santiago
from tests.mailservers import Dovecot, SmtpSink, eventually
from tests.test_email_channel import (  # noqa: F401  (fixtures)
    Office,
    db_url,
    dovecot,
    email_settings,
    mail,
    open_office,
    smtp,
    ticket_of,
)

LIMIT = 64 * 1024


@pytest.fixture
async def office(db: str, dovecot: Dovecot, smtp: SmtpSink,  # noqa: F811
                 tmp_path: Path) -> AsyncIterator[Office]:
    settings = email_settings(dovecot, smtp, tmp_path, channel={"max_message_bytes": LIMIT})
    async for opened in open_office(settings, dovecot, smtp):
        yield opened


async def test_a_mail_too_big_to_download_is_recorded_and_the_next_one_is_answered(
        office: Office) -> None:
    # Someone sends soporte@ a 300 KB mail (the limit here is 64 KB)…
    huge = "x" * (300 * 1024)
    await office.dovecot.append(mail("pesado@cliente.test", "Mis fotos", huge,
                                     message_id="big@cliente.test", name="Pesado"))
    # …and then María writes an ordinary mail.
    await office.dovecot.append(mail("maria@cliente.test", "Mi pedido no llegó",
                                     "Hola, hice el pedido 5531 y no me llega.",
                                     message_id="m1@cliente.test", name="María Pérez"))
    maria = await eventually(lambda: ticket_of("m1@cliente.test"))
    big = await ticket_of("big@cliente.test")
    assert big is not None and big.subject == "Mis fotos" and maria.id != big.id
    # The big mail was not downloaded: its ticket holds its headers and the whole mail is
    # recorded as a file left on the server, with its size, for the agents.
    stored = await Message.get(external_id="big@cliente.test")
    assert huge[:100] not in stored.text
    assert len(stored.raw_source or b"") < LIMIT
    files = await Attachment.filter(message_id=stored.id)
    assert [(f.filename, f.content_type) for f in files] == [("original.eml", "message/rfc822")]
    assert files[0].size > 300 * 1024
    assert files[0].storage == "skipped" and files[0].data is None
    # Both customers get their acknowledgement; the mailbox moved past both mails.
    await office.deliver()
    assert sorted(m["To"] for m in office.smtp.received) == [
        "maria@cliente.test", "pesado@cliente.test"]
    state = await ChannelState.get(channel="email", key="soporte/INBOX")
    assert state.value["last_uid"] == 2


class StuckGateway:
    """A gateway whose commit never comes back (a database that hangs)."""

    def __init__(self) -> None:
        self.called = asyncio.Event()
        self.state: dict[tuple[str, str], dict[str, Any]] = {}

    async def receive(self, inbound: Any) -> Any:
        self.called.set()
        await asyncio.Event().wait()

    async def load_state(self, channel: str, key: str) -> dict[str, Any]:
        return self.state.get((channel, key), {})

    async def save_state(self, channel: str, key: str, value: dict[str, Any]) -> None:
        self.state[(channel, key)] = value


async def test_stopping_while_a_mail_is_being_stored_is_bounded_and_the_mail_comes_back(
        dovecot: Dovecot, smtp: SmtpSink, tmp_path: Path) -> None:  # noqa: F811
    settings = email_settings(dovecot, smtp, tmp_path)
    email = EmailAdapter.from_settings(settings, clock=ManualClock(santiago(2026, 11, 23, 10)))
    email.stop_wait = 0.2
    gateway = StuckGateway()
    await email.start(gateway)  # type: ignore[arg-type]
    await dovecot.append(mail("maria@cliente.test", "Hola", "¿Siguen abiertos?",
                              message_id="m1@cliente.test"))
    await asyncio.wait_for(gateway.called.wait(), 15)
    # SIGTERM arrives while her mail is being stored and the database does not answer.
    started = time.monotonic()
    await email.stop()
    assert time.monotonic() - started < 3  # the readers got 0.2 s, then were cancelled
    # Nothing was confirmed: the next start reads her mail again.
    assert gateway.state.get(("email", "soporte/INBOX"), {}).get("last_uid") is None
