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

import email.header
import email.policy
import hashlib
import re
from email.message import Message

from adapters.email.charsets import decode_text
from adapters.email.ids import normalize_id, split_ids
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Party

__all__ = ["ADDRESS", "MAX_ID_LENGTH", "MISSING_ID_DOMAIN", "POLICY", "UNKNOWN_SENDER",
           "Headers", "address_in", "addresses", "cap_ids", "local_part", "locale_of",
           "mailboxes", "message_id", "one_line", "reply_ids", "sender_of", "ticket_of",
           "unsurrogate"]

POLICY = email.policy.default
UNKNOWN_SENDER = "unknown@invalid"
MISSING_ID_DOMAIN = "centralita.missing-id"
REPLY_IDS_HEAD, REPLY_IDS_TAIL = 1, 20   # References: the root plus the 20 newest ids
MAX_ID_LENGTH = 500            # Message.external_id is a 500-character column

# (starting only where a run of address characters starts: a long run is read once)
ADDRESS = re.compile(r"(?<![^\s<>()\[\]\"',;:@])[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
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
    """(address, display name) of each mailbox in one header value that names one, those
    in angle brackets first (see `mailboxes`)."""
    boxes = mailboxes(value)
    found = [(address, display) for address, display, angled in boxes if angled]
    found += [(address, display) for address, display, angled in boxes if not angled]
    names = _stdlib_names(headers, name, value) if found else {}
    return [(address, _display(names.get(address), address, display))
            for address, display in found]


def sender_of(headers: Headers) -> Party:
    """The customer: From, else Sender, else Return-Path. With no usable address in any of
    them, `UNKNOWN_SENDER` (a marker, never an address made up from a name) and the raw
    From as the name, undecoded, so agents see exactly what came."""
    for name in ("from", "sender", "return-path"):
        for value in headers.raw_all(name):
            for address, display in addresses(headers, name, value):
                return Party("customer", address, display)
    return Party("customer", UNKNOWN_SENDER, one_line(headers.raw("from"))[:MAX_NAME])


# -- mailboxes: what is an address and what only looks like one ------------------------------

MAX_ADDRESS = 254              # RFC 5321's limit for a path
MAX_NAME = 200                 # Contact.name is a 200-character column
STDLIB_LIMIT = 2000            # longer address headers: display names decoded here only
_ATOM = r"[^\s\x00-\x1f\x7f\"(),.:;<>@\[\]\\]+"
_ADDR_SPEC = re.compile(rf"(?:{_ATOM}(?:\.{_ATOM})*|\"(?:[^\"\\]|\\.)*\")"
                        rf"@(?:{_ATOM}(?:\.{_ATOM})*|\[[^\[\]\\\s]*\])")
_ROUTE = re.compile(r"^\s*(?:@[^,:<>]*,?\s*)+:")     # obsolete <@relay.example:ana@x>
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
_WORD_END = re.compile(r'[\s"()<>,;:]|=\?')
_LOOKS_LIKE_ADDRESS = re.compile(r"(?<![^\s<>()\[\]\"',;:@])[^\s<>()\[\]\"',;:@]+"
                                 r"@[^\s<>()\[\]\"',;:@.]+(?:\.[^\s<>()\[\]\"',;:@.]+)+")


def mailboxes(value: str) -> list[tuple[str, str, bool]]:
    """(address, display name, in angle brackets) of each mailbox in an address header,
    read the way RFC 5322 reads it: the address is what stands in angle brackets; without
    brackets, only a mailbox that is nothing but an address. Nothing in a quoted string,
    a comment or an encoded word is ever an address, so `"ceo@bank.example" <eve@x>`,
    `=?utf-8?q?ceo=40bank.example?= <eve@x>` and `=?utf-8?q?=0D=0A?= ceo@bank.example
    <eve@x>` all name eve@x; `CEO ceo@bank.example` (no brackets) and `<a@x> <b@y>` (two
    for one mailbox) name no one.

    Example:
        >>> mailboxes('"Ana, la jefa" <Ana@X.example>, b@y.example')
        [('ana@x.example', 'Ana, la jefa', True), ('b@y.example', '', False)]
    """
    found = []
    for tokens in _split(_tokens(value)):
        angles = {_angle_address(text) for kind, text in tokens if kind == "<"}
        if angles:
            address, angled = (angles.pop() if len(angles) == 1 else None), True
            before = tokens[:next(i for i, (kind, _) in enumerate(tokens) if kind == "<")]
            display = " ".join(text for kind, text in before if kind != "(")
        else:
            words = [(kind, text) for kind, text in tokens if kind != "("]
            address, angled, display = None, False, ""
            if len(words) == 1 and words[0][0] == "word" and _ADDR_SPEC.fullmatch(words[0][1]):
                address = words[0][1]
        if address and len(address) <= MAX_ADDRESS:
            found.append((one_line(address).lower(), display, angled))
    return found


def address_in(value: str) -> str | None:
    """The sender's address in one header value: the first in angle brackets, else the
    first mailbox that is nothing but an address; None when there is none."""
    boxes = mailboxes(value)
    return next((a for a, _, angled in boxes if angled), boxes[0][0] if boxes else None)


def _tokens(value: str) -> list[tuple[str, str]]:
    """The header's lexical pieces: ("\"", quoted text), ("(", comment), ("<", what the
    angle brackets hold), ("=?", an encoded word), ("word", text), and "," ";" ":"."""
    tokens: list[tuple[str, str]] = []
    at = 0
    while at < len(value):
        char = value[at]
        if char.isspace():
            at += 1
        elif char == '"' and (local := _quoted_local(value, at)):
            tokens.append(("word", local))      # "john doe"@example.org: one address
            at += len(local)
        elif char in "\"(<":
            end, closed = _closing(value, at)
            if not closed and (char == '"' or end < len(value)):
                tokens.append(("word", char))   # an unclosed quote, a stray "<": only a
                at += 1                         # character (a comment runs to the end)
                continue
            inner = value[at + 1:end - 1 if closed else end]
            tokens.append((char, re.sub(r"\\(.)", r"\1", inner) if char == '"' else inner))
            at = end
        elif char in ",;:)>":
            tokens.append((char, char))
            at += 1
        elif match := _ENCODED_WORD.match(value, at):
            tokens.append(("=?", match.group(0)))
            at = match.end()
        else:
            stop = _WORD_END.search(value, at + 1)
            end = stop.start() if stop else len(value)
            tokens.append(("word", value[at:end]))
            at = end
    return tokens


def _quoted_local(value: str, start: int) -> str | None:
    """A quoted local part and its domain, when the quoted string at `start` is one."""
    end, closed = _closing(value, start)
    if not (closed and value.startswith("@", end)):
        return None
    stop = _WORD_END.search(value, end + 1)
    return value[start:stop.start() if stop else len(value)]


def _closing(value: str, start: int) -> tuple[int, bool]:
    """Where the quoted string, comment (nested) or angle address opened at `start` ends:
    (just past its closing character, True), or (the end of the value, False) when it
    never closes — for "<", (where the next "<" is, False) when one comes first."""
    opener = value[start]
    closer = {'"': '"', "(": ")", "<": ">"}[opener]
    depth, at, quoted = 1, start + 1, False
    while at < len(value):
        char = value[at]
        if char == "\\":
            at += 2
            continue
        if opener == "<" and char == '"':
            quoted = not quoted
        elif opener == "<" and not quoted and char == "<":
            return at, False
        elif not quoted and char == closer:
            depth -= 1
            if depth == 0:
                return at + 1, True
        elif not quoted and opener == "(" and char == "(":
            depth += 1
        at += 1
    return len(value), False


def _split(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The tokens of each mailbox: split at "," and ";"; a group's name (before ":") and
    stray closing brackets dropped."""
    boxes: list[list[tuple[str, str]]] = [[]]
    for kind, text in tokens:
        if kind in ",;":
            boxes.append([])
        elif kind == ":":
            boxes[-1] = []
        elif kind not in ")>":
            boxes[-1].append((kind, text))
    return [box for box in boxes if box]


def _angle_address(inner: str) -> str | None:
    """The address in angle brackets, if it is one (an obsolete route before it dropped)."""
    spec = _ROUTE.sub("", inner).strip()
    return spec if _ADDR_SPEC.fullmatch(spec) else None


def _stdlib_names(headers: Headers, name: str, value: str) -> dict[str, str]:
    """Address → display name, as the standard library reads the header (not for a
    header over `STDLIB_LIMIT` characters: it takes seconds on those)."""
    names: dict[str, str] = {}
    if len(value) > STDLIB_LIMIT:
        return names
    for parsed in getattr(headers.parsed(name, value), "addresses", ()) or ():
        try:
            names.setdefault(f"{parsed.username}@{parsed.domain}".lower(),
                             parsed.display_name or "")
        except Exception:  # noqa: S112 - a malformed group or address: try the next one
            continue
    return names


def _display(stdlib: str | None, address: str, raw: str) -> str:
    """The display name that goes with `address`: the standard library's reading when it
    found that same address, else the phrase's encoded words decoded; none when it
    carries another address (a name such as "ceo@bank.example" only misleads)."""
    display = one_line(unsurrogate(stdlib if stdlib is not None else _decoded(raw)))
    display = display.strip("\"'")[:MAX_NAME]
    if any(other.lower() != address for other in _LOOKS_LIKE_ADDRESS.findall(display)):
        return ""
    return display


def _decoded(phrase: str) -> str:
    """A display name's encoded words decoded (adjacent ones joined), charsets as mail
    clients mean them; a word that cannot be decoded stays as it is."""
    def word(match: re.Match[str]) -> str:
        try:
            return "".join(part if isinstance(part, str) else decode_text(part, charset)
                           for part, charset in email.header.decode_header(match.group(0)))
        except Exception:
            return match.group(0)

    joined = re.sub(rf"({_ENCODED_WORD.pattern})\s+(?==\?)", r"\1", phrase)
    return _ENCODED_WORD.sub(word, joined)


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
