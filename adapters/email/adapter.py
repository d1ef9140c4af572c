"""The email channel: every mailbox read over IMAP (IDLE), answers sent over SMTP.

A thin converter: raw mail → `Inbound` (parse.py), `Outbound` → MIME (compose.py); the
reading loop is imap.py and the sending is smtp.py. Replies leave from the mailbox the
customer wrote to (`Outbound.mailbox`).

Example:
    >>> adapter = EmailAdapter.from_settings(load_settings())      # doctest: +SKIP
    >>> await adapter.start(gateway.receive)                        # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from datetime import datetime

from adapters.email.compose import compose
from adapters.email.imap import Fetched, MailboxReader, Progress
from adapters.email.parse import parse_email
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.smtp import send_smtp
from adapters.email.tokens import ReplyTokens
from gateway.core.adapter import Capabilities, Port
from gateway.core.clock import Clock, SystemClock
from gateway.core.messages import Attachment, Inbound, Outbound, Receipt
from gateway.settings import Settings, SettingsError, channel_settings

log = logging.getLogger("centralita.email")
STOP_WAIT = 5.0  # seconds the mailbox readers get, together, to finish at stop


class EmailAdapter:
    """`start` reads every configured mailbox; `send` delivers one answer by SMTP."""

    channel = "email"
    capabilities = Capabilities(subjects=True, buttons=False)  # links, not buttons

    def __init__(self, settings: EmailSettings, *, company: str = "", clock: Clock | None = None,
                 max_attachment: int = 20 * 1024 * 1024, progress: Progress | None = None
                 ) -> None:
        if not settings.mailboxes:
            raise SettingsError("channels.email.mailboxes: at least one mailbox is needed")
        self.settings = settings
        self.company = company
        self.clock = clock or SystemClock()
        self.max_attachment = max_attachment
        self.progress = progress
        self.tokens = ReplyTokens(settings.token_secret)
        self.stop_wait = STOP_WAIT  # seconds the readers get, together, at stop
        self.readers: list[MailboxReader] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._port: Port | None = None

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock | None = None,
                      progress: Progress | None = None) -> EmailAdapter:
        """The adapter `[channels.email]` describes (SettingsError names a wrong key)."""
        return cls(channel_settings(settings, "email", EmailSettings),
                   company=settings.gateway.name, clock=clock,
                   max_attachment=settings.attachments.max_bytes, progress=progress)

    def parse(self, raw: bytes, mailbox: MailboxSettings,
              received_at: datetime | None = None) -> Inbound:
        """One raw mail as the gateway's Inbound (never raises)."""
        return parse_email(raw, mailbox=mailbox, settings=self.settings, tokens=self.tokens,
                           max_attachment=self.max_attachment, received_at=received_at)

    def _inbound(self, box: MailboxSettings, mail: Fetched) -> Inbound:
        """A mail as an Inbound; a mail too big to download is its headers, with the whole
        mail recorded as a file that was not downloaded (agents see its size)."""
        inbound = self.parse(mail.raw, box, mail.received_at)
        if mail.too_big is None:
            return inbound
        left = Attachment(filename="original.eml", content_type="message/rfc822",
                          size=mail.too_big)
        return replace(inbound, attachments=(*inbound.attachments, left))

    async def start(self, port: Port) -> None:
        self._port = port
        self._stop.clear()
        for box in self.settings.mailboxes:
            reader = MailboxReader(box, self.settings, state=port, clock=self.clock,
                                   progress=self.progress,
                                   handle=lambda batch, box=box: self._receive(box, batch))
            self.readers.append(reader)
            self._tasks.append(asyncio.create_task(reader.run(self._stop),
                                                   name=f"imap {box.name}"))

    async def _receive(self, box: MailboxSettings, batch: list[Fetched]) -> None:
        """Store a fetched chunk; returns once every message is committed (or raises, and
        the reader fetches the chunk again: dedup makes that safe)."""
        assert self._port is not None
        inbounds = [self._inbound(box, mail) for mail in batch]
        results = await asyncio.gather(*(self._port.receive(i) for i in inbounds),
                                       return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(batch)} message(s) were not stored: "
                               f"{failed[0]!r}")

    async def send(self, message: Outbound) -> Receipt:
        box = self.settings.mailbox(message.mailbox)
        mime, message_id = compose(message, mailbox=box, settings=self.settings,
                                   tokens=self.tokens, now=self.clock.now(),
                                   company=self.company)
        await send_smtp(mime, box)
        log.info("sent %s for ticket %s to %s as %s", message.kind, message.ticket_number,
                 message.recipient, message_id)
        return Receipt(platform_id=message_id)

    async def stop(self) -> None:
        """Every mailbox stops reading at once; a reader still busy after `stop_wait`
        seconds (a long fetch) is cancelled: what it had not committed is read again at
        the next start (the UID moves only after a committed chunk)."""
        self._stop.set()
        if self._tasks:
            _, busy = await asyncio.wait(self._tasks, timeout=self.stop_wait)
            for task in busy:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._tasks.clear()
        self.readers.clear()
