"""Header values of one email as the gateway reads them: undeclared 8-bit bytes and RFC 2047
words decoded, the sender found even in broken headers, thread ids capped, and the ticket
named by a reply-token address or a subject tag.

Example:
    >>> from email.parser import BytesParser
    >>> msg = BytesParser(policy=POLICY).parsebytes(
    ...     b"From: =?UTF-8?Q?Mar=C3=ADa?= <Maria@Example.org>\\r\\n"
    ...     b"References: <a@x> <b@x>\\r\\nIn-Reply-To: <b@x>\\r\\n\\r\\nHola")
    >>> headers = Headers(msg)
    >>> sender_of(headers)
    Party(kind='customer', address='maria@example.org', name='María')
    >>> reply_ids(headers)
    ('a@x', 'b@x')
"""

from __future__ import annotations

import email.policy
import email.utils
import hashlib
import re
from email.message import Message

from adapters.email.ids import normalize_id, split_ids
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Party

__all__ = ["ADDRESS", "MAX_ID_LENGTH", "MISSING_ID_DOMAIN", "POLICY", "UNKNOWN_SENDER",
           "Headers", "addresses", "cap_ids", "local_part", "locale_of", "message_id",
           "one_line", "reply_ids", "sender_of", "ticket_of", "unsurrogate"]

POLICY = email.policy.default
UNKNOWN_SENDER = "unknown@invalid"
MISSING_ID_DOMAIN = "centralita.missing-id"
REPLY_IDS_HEAD, REPLY_IDS_TAIL = 1, 20   # References: the root plus the 20 newest ids
MAX_ID_LENGTH = 500            # Message.external_id is a 500-character column

ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")


def unsurrogate(value: str) -> str:
    """Undeclared 8-bit bytes (kept by the parser as surrogates) as UTF-8, else cp1252."""
    if not _SURROGATE.search(value):
        return value
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace").decode("utf-8", "replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def one_line(value: str) -> str:
    """`value` on one line: control characters and runs of spaces as one space, trimmed."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


class Headers:
    """Header values of one message, read from the raw lines: 8-bit bytes decoded first,
    then parsed by the policy (so a broken header costs its own value, not the message)."""

    def __init__(self, msg: Message) -> None:
        self._items: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            text = unsurrogate(str(value)).replace("\r", "").replace("\n", "")
            self._items.setdefault(str(name).lower(), []).append(text)

    def has(self, name: str) -> bool:
        return name in self._items

    def raw_all(self, name: str) -> list[str]:
        return self._items.get(name, [])

    def raw(self, name: str) -> str:
        values = self._items.get(name)
        return values[0] if values else ""

    def parsed(self, name: str, value: str) -> object | None:
        try:
            return POLICY.header_factory(name, value)
        except Exception:
            return None

    def text(self, name: str) -> str:
        """The first value, RFC 2047 decoded ('' when absent)."""
        value = self.raw(name)
        if not value or "=?" not in value:
            return value    # nothing to decode (and a 20 kB subject costs nothing)
        header = self.parsed(name, value)
        return unsurrogate(str(header)) if header is not None else value


def addresses(headers: Headers, name: str, value: str) -> list[tuple[str, str]]:
    """(address, display name) pairs in one header value, most careful parser first."""
    found: list[tuple[str, str]] = []
    header = headers.parsed(name, value)
    for addr in getattr(header, "addresses", ()) or ():
        try:
            if addr.username and addr.domain:
                found.append((f"{addr.username}@{addr.domain}", addr.display_name or ""))
        except Exception:  # noqa: S112 - a malformed group or address: try the next one
            continue
    if not found:
        try:
            display, spec = email.utils.parseaddr(value)
        except Exception:
            display, spec = "", ""
        if ADDRESS.fullmatch(spec or ""):
            found.append((spec, display))
        elif match := ADDRESS.search(value):
            found.append((match.group(0), ""))
    return [(one_line(unsurrogate(a)), one_line(unsurrogate(n)).strip("\"'")) for a, n in found]


def sender_of(headers: Headers) -> Party:
    """The customer: From, else Sender, else Return-Path, else `UNKNOWN_SENDER`."""
    for name in ("from", "sender", "return-path"):
        for value in headers.raw_all(name):
            for address, display in addresses(headers, name, value):
                if "@" in address:
                    return Party("customer", address.lower(), display)
    display = ""
    if value := headers.raw("from"):
        header = headers.parsed("from", value)
        display = one_line(unsurrogate(str(header))) if header is not None else one_line(value)
    return Party("customer", UNKNOWN_SENDER, display)


def local_part(address: str) -> str:
    return address.rsplit("@", 1)[0].lower()


def message_id(value: str, raw: bytes) -> str:
    """The Message-ID without <>, else a stable synthetic one (the same for a redelivery)."""
    mid = normalize_id(value) if value else ""
    if mid and len(mid) <= MAX_ID_LENGTH:
        return mid
    if mid:  # absurdly long: still stable and unique, and fits the column
        return f"{hashlib.sha256(mid.encode()).hexdigest()[:32]}@{MISSING_ID_DOMAIN}"
    return f"{hashlib.sha256(raw).hexdigest()[:32]}@{MISSING_ID_DOMAIN}"


def cap_ids(ids: list[str]) -> tuple[str, ...]:
    """Deduplicated (an id repeated later counts where it last appears), newest last,
    at most the root plus the 20 newest."""
    seen: dict[str, None] = {}
    for value in ids:
        if value and len(value) <= MAX_ID_LENGTH:
            seen.pop(value, None)
            seen[value] = None
    ordered = list(seen)
    if len(ordered) > REPLY_IDS_HEAD + REPLY_IDS_TAIL:
        ordered = ordered[:REPLY_IDS_HEAD] + ordered[-REPLY_IDS_TAIL:]
    return tuple(ordered)


def reply_ids(headers: Headers) -> tuple[str, ...]:
    """The ids this message answers: References then In-Reply-To, capped (`cap_ids`)."""
    ids: list[str] = []
    for name in ("references", "in-reply-to"):
        for value in headers.raw_all(name):
            ids += split_ids(value)
    return cap_ids(ids)


def ticket_of(headers: Headers, subject: str, mailbox: MailboxSettings,
              settings: EmailSettings, tokens: ReplyTokens) -> tuple[int | None, bool]:
    """(ticket number, verified): a valid token address among the recipients is verified;
    a subject tag is only a claim."""
    if tokens.enabled:
        for name in ("to", "cc", "delivered-to", "x-original-to", "envelope-to"):
            for value in headers.raw_all(name):
                for address in ADDRESS.findall(value):
                    if (number := tokens.ticket_number(address, mailbox.address)) is not None:
                        return number, True
    if match := settings.tag_pattern().search(subject):
        return int(match.group(1)), False
    return None, False


def locale_of(value: str) -> str | None:
    """'es' or 'en' from a Content-Language value ("es-CL" → "es"), else None."""
    first = value.split(",")[0].strip().lower()
    primary = re.split(r"[-_\s;]", first, maxsplit=1)[0]
    return primary if primary in ("es", "en") else None
