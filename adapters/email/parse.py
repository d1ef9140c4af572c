"""Raw email bytes → the gateway's `Inbound`: sender, subject, thread hints, the customer's
new words, sanitised HTML, attachments, and whether a machine wrote it.

`parse_email` never raises: whatever the bytes, it returns an `Inbound` (at worst the raw
bytes decoded as text) and keeps `raw` for audit. MIME is parsed by the standard library
(`email.policy.default`); what is ours is what the gateway needs on top of it, one module
each:

- `headers`: 8-bit and RFC 2047 header values, the sender, thread ids, the ticket;
- `parts` (with `charsets`): the MIME tree walked once — body, attachments, reports;
- `quotes`: the new text of a reply without the quoted history and the signature
  (`strip_quoted`), for the reply headers of Gmail, Outlook, Apple Mail, Thunderbird and
  phones in Spanish, English, Portuguese, French and German; a forward keeps the
  forwarded content;
- `html_text`: HTML-only mail as readable text (`html_to_text`, quoted blocks become
  "> " lines);
- `automated`: RFC 3834 and its folklore (`Auto-Submitted`, `Precedence`, `List-*`,
  noreply senders, Microsoft's `X-Auto-Response-Suppress`…) → `automated`; delivery
  reports (`kind="bounce"`) threaded to the message that failed, and out-of-office replies
  (`kind="auto_reply"`).

`html_to_text` and `strip_quoted` stay importable from here.

Example:
    >>> from adapters.email.settings import EmailSettings, MailboxSettings
    >>> box = MailboxSettings(name="soporte", address="soporte@example.com",
    ...                       imap_host="localhost", imap_user="soporte", smtp_host="localhost")
    >>> raw = (b"From: =?UTF-8?Q?Mar=C3=ADa?= <Maria@Example.org>\\r\\n"
    ...        b"Subject: Re: [#1042] =?UTF-8?Q?Mi_pedido_no_lleg=C3=B3?=\\r\\n"
    ...        b"Message-ID: <abc@mail.example.org>\\r\\n"
    ...        b"In-Reply-To: <ack-1@example.com>\\r\\n\\r\\n"
    ...        b"Sigue sin llegar.\\r\\n\\r\\nEl lun, 23 nov 2026, Soporte escribi\\xc3\\xb3:\\r\\n"
    ...        b"> Recibimos tu solicitud.\\r\\n")
    >>> msg = parse_email(raw, mailbox=box, settings=EmailSettings(mailboxes=[box]),
    ...                   tokens=ReplyTokens(""))
    >>> msg.sender
    Party(kind='customer', address='maria@example.org', name='María')
    >>> msg.text, msg.thread.reply_to, msg.thread.ticket_number
    ('Sigue sin llegar.', ('ack-1@example.com',), 1042)
"""

from __future__ import annotations

import email.errors
import hashlib
import logging
import re
from datetime import datetime
from email.message import Message
from email.parser import BytesParser

from adapters.email.automated import bounce_text, is_automated, kind_of, original_ids
from adapters.email.headers import (
    MAX_ID_LENGTH,
    MISSING_ID_DOMAIN,
    POLICY,
    UNKNOWN_SENDER,
    Headers,
    address_in,
    locale_of,
    message_id,
    one_line,
    reply_ids,
    sender_of,
    ticket_of,
)
from adapters.email.html_text import html_to_text
from adapters.email.ids import normalize_id
from adapters.email.parts import Walker
from adapters.email.quotes import is_forward, strip_quoted
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Inbound, Party, ThreadHint

__all__ = ["html_to_text", "parse_email", "strip_quoted"]

log = logging.getLogger("centralita.email.parse")


def parse_email(raw: bytes, *, mailbox: MailboxSettings, settings: EmailSettings,
                tokens: ReplyTokens, max_attachment: int = 10 * 1024 * 1024,
                received_at: datetime | None = None) -> Inbound:
    """One email as the gateway's `Inbound`; never raises (see the module's docstring).

    A part larger than `max_attachment` bytes (decoded) is recorded with `data=None`.
    """
    data = _as_bytes(raw)
    try:
        return _parse(data, mailbox, settings, tokens, max_attachment, received_at)
    except Exception as exc:
        log.warning("email of %d bytes could not be parsed (%s: %s); kept as raw text",
                    len(data), type(exc).__name__, exc)
        return _fallback(data, mailbox, received_at)


def _as_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes):
        return raw
    try:
        if isinstance(raw, str):
            return raw.encode("utf-8", "surrogateescape")
        return bytes(raw)  # type: ignore[call-overload]
    except Exception:
        return str(raw).encode("utf-8", "replace")


def _parse(raw: bytes, mailbox: MailboxSettings, settings: EmailSettings,
           tokens: ReplyTokens, max_attachment: int, received_at: datetime | None) -> Inbound:
    msg = _read_message(raw)
    headers = Headers(msg)
    sender = sender_of(headers)
    subject = one_line(headers.text("subject"))
    body = Walker(max_attachment)
    body.visit(msg, 0)

    kind = kind_of(headers, sender, subject, body)
    # Mail with no address to answer is stored for agents, never answered automatically.
    automated = (kind != "message" or sender.address == UNKNOWN_SENDER
                 or is_automated(headers, sender))
    text, reply_to = _text_and_reply_ids(kind, headers, subject, body)
    ticket, verified = ticket_of(headers, subject, mailbox, settings, tokens)
    return Inbound(
        channel="email",
        sender=sender,
        text=text,
        external_id=message_id(headers.raw("message-id"), raw),
        subject=subject,
        html=body.sanitised_html(),
        attachments=tuple(body.attachments),
        thread=ThreadHint(reply_to=reply_to, ticket_number=ticket, verified=verified),
        automated=automated,
        locale=locale_of(headers.raw("content-language") or body.language),
        received_at=received_at,
        mailbox=mailbox.name,
        raw=raw,
        kind=kind,
    )


def _read_message(raw: bytes) -> Message:
    """The MIME tree of `raw`, read again without junk lines that cut its headers short."""
    msg = BytesParser(policy=POLICY).parsebytes(raw)
    stray = any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect)
                for d in msg.defects)
    if stray and (repaired := _drop_stray_header_lines(raw)) is not None:
        msg = BytesParser(policy=POLICY).parsebytes(repaired)
    return msg


def _text_and_reply_ids(kind: str, headers: Headers, subject: str,
                        body: Walker) -> tuple[str, tuple[str, ...]]:
    """What the agent reads and the ids it threads on: for a bounce, a summary of the report
    and the ids of the mail that failed; else the sender's new words and the reply ids."""
    if kind == "bounce":
        return bounce_text(body), original_ids(body) or reply_ids(headers)
    text = body.text()
    if text:
        text = strip_quoted(text, forward=is_forward(subject))
    return text, reply_ids(headers)


_HEADER_LINE = re.compile(rb"^(?:From |[\x21-\x39\x3b-\x7e]+[ \t]*:|[ \t])")


def _drop_stray_header_lines(raw: bytes) -> bytes | None:
    """Without the junk lines (no colon) among the headers, which end the header section
    for the parser; None when there are none."""
    lines = raw.splitlines(keepends=True)
    kept: list[bytes] = []
    dropped = False
    for index, line in enumerate(lines):
        bare = line.rstrip(b"\r\n")
        if not bare or _HEADER_LINE.match(bare):
            if not bare:
                kept += lines[index:]
                break
            kept.append(line)
            continue
        if any(_HEADER_LINE.match(after) and after[:1] not in b" \t"
               for after in lines[index + 1:index + 6]):
            dropped = True
            continue
        kept += lines[index:]
        break
    return b"".join(kept) if dropped else None


def _fallback(raw: bytes, mailbox: MailboxSettings, received_at: datetime | None) -> Inbound:
    """What we can still say about bytes the parser choked on."""
    external_id = f"{hashlib.sha256(raw).hexdigest()[:32]}@{MISSING_ID_DOMAIN}"
    address, subject, text = UNKNOWN_SENDER, "", ""
    try:
        text = raw.decode("utf-8", "replace")
        match = re.search(rb"\r?\n\r?\n", raw)
        head = raw[:match.start()] if match else raw[:8192]
        if match and raw[match.end():].strip():
            text = raw[match.end():].decode("utf-8", "replace")
        head_text = head.decode("utf-8", "replace")
        if found := re.search(r"^Message-ID:[ \t]*(<[^<>\s]+>)", head_text, re.I | re.M):
            external_id = normalize_id(found.group(1))[:MAX_ID_LENGTH] or external_id
        found = re.search(r"^From:(.*)$", head_text, re.I | re.M)
        if found and (addr := address_in(found.group(1))):
            address = addr  # the bracketed one: never an address from the name
        if found := re.search(r"^Subject:(.*)$", head_text, re.I | re.M):
            subject = one_line(found.group(1))
    except Exception:
        log.warning("email fallback could not read the headers either")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Inbound(channel="email", sender=Party("customer", address), text=text,
                   external_id=external_id, subject=subject, received_at=received_at,
                   mailbox=getattr(mailbox, "name", ""), raw=raw,
                   automated=address == UNKNOWN_SENDER)
