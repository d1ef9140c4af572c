"""Raw email bytes → the gateway's `Inbound`: sender, subject, thread hints, the customer's
new words, sanitised HTML, attachments, and whether a machine wrote it.

`parse_email` never raises: whatever the bytes, it returns an `Inbound` (at worst the raw
bytes decoded as text) and keeps `raw` for audit. MIME is parsed by the standard library
(`email.policy.default`); what is ours is what the gateway needs on top of it:

- the new text of a reply without the quoted history and the signature (`strip_quoted`),
  for the reply headers of Gmail, Outlook, Apple Mail, Thunderbird and phones in Spanish,
  English, Portuguese, French and German; a forward keeps the forwarded content;
- HTML-only mail as readable text (`html_to_text`, quoted blocks become "> " lines);
- RFC 3834 and its folklore (`Auto-Submitted`, `Precedence`, `List-*`, noreply senders,
  Microsoft's `X-Auto-Response-Suppress`…) → `automated`;
- delivery reports (`kind="bounce"`) threaded to the message that failed, and
  out-of-office replies (`kind="auto_reply"`).

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

import base64
import codecs
import email.errors
import email.policy
import email.utils
import hashlib
import logging
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from html.parser import HTMLParser

import nh3

from adapters.email.ids import normalize_id, split_ids
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import Attachment, Inbound, Party, ThreadHint

__all__ = ["html_to_text", "parse_email", "strip_quoted"]

log = logging.getLogger("centralita.email.parse")

POLICY = email.policy.default
UNKNOWN_SENDER = "unknown@invalid"
MISSING_ID_DOMAIN = "centralita.missing-id"
MAX_DEPTH = 40                 # MIME nesting we follow (deeper parts are ignored)
REPLY_IDS_HEAD, REPLY_IDS_TAIL = 1, 20   # References: the root plus the 20 newest ids
MAX_ID_LENGTH = 500            # Message.external_id is a 500-character column

_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
_SPACES = re.compile(r"\s+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\udc80-\udcff]")
_AUTOMATED_LOCAL = re.compile(
    r"mailer-daemon|postmaster|listserv|majordomo|owner-.+|.+-request"
    r"|no[-_.]?reply(?:[-+_.].*)?|do[-_.]?not[-_.]?reply(?:[-+_.].*)?")
_BOUNCE_LOCAL = re.compile(r"mailer-daemon|postmaster")
_FAILURE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status notification|failure|has failed|failed)"
    r"|failure notice|mail delivery (?:failed|failure|subsystem)|returned mail|not delivered"
    r"|no se (?:pudo|puede) entregar|no entregado|error de entrega|entrega fallida"
    r"|notificaci[óo]n de estado de entrega|devuelto|non remis|unzustellbar"
    r"|n[ãa]o (?:foi )?entregue", re.I)
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:(?:re|aw|sv|r)\s*:\s*)?(?:\[[^\]]*\]\s*)?"
    r"(?:out of (?:the )?office\b|ooo\b|automatic reply\b|auto(?:matic)?[- ]?(?:reply|response)"
    r"|autoresponder|respuesta autom[áa]tica|fuera de (?:la )?oficina|resposta autom[áa]tica"
    r"|fora do escrit[óo]rio|r[ée]ponse automatique|absence du bureau|abwesenheitsnotiz"
    r"|automatische antwort)", re.I)
_FORWARD_SUBJECT = re.compile(
    r"^\s*(?:\[[^\]]*\]\s*)?(?:fwd?|fw|rv|reenv(?:iado)?|enc|tr|wg|i)\s*:", re.I)


# -- the entry point ------------------------------------------------------------------------


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
    msg = BytesParser(policy=POLICY).parsebytes(raw)
    stray = any(isinstance(d, email.errors.MissingHeaderBodySeparatorDefect)
                for d in msg.defects)
    if stray and (repaired := _drop_stray_header_lines(raw)) is not None:
        msg = BytesParser(policy=POLICY).parsebytes(repaired)
    headers = _Headers(msg)
    sender = _sender(headers)
    subject = _line(headers.text("subject"))
    body = _Walker(max_attachment)
    body.visit(msg, 0)

    kind = _kind(headers, sender, subject, body)
    automated = kind != "message" or _automated(headers, sender)

    if kind == "bounce":
        text = _bounce_text(body)
        reply_to = _original_ids(body) or _reply_ids(headers)
    else:
        text = body.text()
        if text:
            text = strip_quoted(text, forward=bool(_FORWARD_SUBJECT.match(subject)))
        reply_to = _reply_ids(headers)

    ticket, verified = _ticket(headers, subject, mailbox, settings, tokens)
    return Inbound(
        channel="email",
        sender=sender,
        text=text,
        external_id=_message_id(headers.raw("message-id"), raw),
        subject=subject,
        html=body.sanitised_html(),
        attachments=tuple(body.attachments),
        thread=ThreadHint(reply_to=reply_to, ticket_number=ticket, verified=verified),
        automated=automated,
        locale=_locale(headers.raw("content-language") or body.language),
        received_at=received_at,
        mailbox=mailbox.name,
        raw=raw,
        kind=kind,
    )


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


# -- headers --------------------------------------------------------------------------------


def _unsurrogate(value: str) -> str:
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


def _line(value: str) -> str:
    return _SPACES.sub(" ", _CONTROL.sub(" ", value)).strip()


class _Headers:
    """Header values of one message, read from the raw lines: 8-bit bytes decoded first,
    then parsed by the policy (so a broken header costs its own value, not the message)."""

    def __init__(self, msg: Message) -> None:
        self._items: dict[str, list[str]] = {}
        for name, value in msg.raw_items():
            text = _unsurrogate(str(value)).replace("\r", "").replace("\n", "")
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
        return _unsurrogate(str(header)) if header is not None else value


def _addresses(headers: _Headers, name: str, value: str) -> list[tuple[str, str]]:
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
        if _ADDRESS.fullmatch(spec or ""):
            found.append((spec, display))
        elif match := _ADDRESS.search(value):
            found.append((match.group(0), ""))
    return [(_line(_unsurrogate(a)), _line(_unsurrogate(n)).strip("\"'")) for a, n in found]


def _sender(headers: _Headers) -> Party:
    for name in ("from", "sender", "return-path"):
        for value in headers.raw_all(name):
            for address, display in _addresses(headers, name, value):
                if "@" in address:
                    return Party("customer", address.lower(), display)
    display = ""
    if value := headers.raw("from"):
        header = headers.parsed("from", value)
        display = _line(_unsurrogate(str(header))) if header is not None else _line(value)
    return Party("customer", UNKNOWN_SENDER, display)


def _local_part(address: str) -> str:
    return address.rsplit("@", 1)[0].lower()


def _message_id(value: str, raw: bytes) -> str:
    mid = normalize_id(value) if value else ""
    if mid and len(mid) <= MAX_ID_LENGTH:
        return mid
    if mid:  # absurdly long: still stable and unique, and fits the column
        return f"{hashlib.sha256(mid.encode()).hexdigest()[:32]}@{MISSING_ID_DOMAIN}"
    return f"{hashlib.sha256(raw).hexdigest()[:32]}@{MISSING_ID_DOMAIN}"


def _cap_ids(ids: list[str]) -> tuple[str, ...]:
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


def _reply_ids(headers: _Headers) -> tuple[str, ...]:
    ids: list[str] = []
    for name in ("references", "in-reply-to"):
        for value in headers.raw_all(name):
            ids += split_ids(value)
    return _cap_ids(ids)


def _ticket(headers: _Headers, subject: str, mailbox: MailboxSettings,
            settings: EmailSettings, tokens: ReplyTokens) -> tuple[int | None, bool]:
    if tokens.enabled:
        for name in ("to", "cc", "delivered-to", "x-original-to", "envelope-to"):
            for value in headers.raw_all(name):
                for address in _ADDRESS.findall(value):
                    if (number := tokens.ticket_number(address, mailbox.address)) is not None:
                        return number, True
    if match := settings.tag_pattern().search(subject):
        return int(match.group(1)), False
    return None, False


def _locale(value: str) -> str | None:
    first = value.split(",")[0].strip().lower()
    primary = re.split(r"[-_\s;]", first, maxsplit=1)[0]
    return primary if primary in ("es", "en") else None


# -- automated mail and kinds -----------------------------------------------------------------


def _automated(headers: _Headers, sender: Party) -> bool:
    """RFC 3834 and what mail systems actually send (see PLATFORMS.md "Email")."""
    auto = headers.raw("auto-submitted").split(";")[0].strip().lower()
    if headers.has("auto-submitted") and auto != "no":
        return True
    if headers.raw("precedence").strip().lower() in ("bulk", "list", "junk", "auto_reply"):
        return True
    if any(headers.has(name) for name in ("list-id", "list-unsubscribe", "list-post",
                                           "list-help", "list-subscribe", "list-owner")):
        return True
    if any(value.strip().replace(" ", "") == "<>" for value in headers.raw_all("return-path")):
        return True
    if headers.has("x-autoreply") or headers.has("x-autorespond"):
        return True
    suppress = {part.strip().lower() for part in
                headers.raw("x-auto-response-suppress").split(",")}
    if suppress & {"all", "oof", "autoreply"}:
        return True
    candidates = [sender.address]
    for value in headers.raw_all("sender"):
        candidates += [address for address, _ in _addresses(headers, "sender", value)]
    return any(_AUTOMATED_LOCAL.fullmatch(_local_part(a)) for a in candidates if "@" in a)


def _kind(headers: _Headers, sender: Party, subject: str, body: _Walker) -> str:
    if body.report_type == "delivery-status":
        return "bounce"
    if _BOUNCE_LOCAL.fullmatch(_local_part(sender.address)) and _FAILURE_SUBJECT.search(subject):
        return "bounce"
    if body.report_type == "disposition-notification":  # a read receipt
        return "auto_reply"
    auto = headers.raw("auto-submitted").split(";")[0].strip().lower()
    if auto == "auto-replied" or headers.has("x-autoreply") or headers.has("x-autorespond"):
        return "auto_reply"
    if _AUTO_REPLY_SUBJECT.match(subject):
        return "auto_reply"
    return "message"


def _original_ids(body: _Walker) -> tuple[str, ...]:
    """The thread ids of the message a bounce reports: its References, In-Reply-To and
    Message-ID (newest last), from the embedded original or, failing that, from a copy of
    its headers in the report's text."""
    for original in body.embedded + body.forwarded:
        headers = _Headers(original)
        mid = normalize_id(headers.raw("message-id"))
        if mid:
            return _cap_ids([*_reply_ids(headers), mid])
    text = "\n".join(body.plain)
    found = re.findall(r"^\s*Message-ID:\s*(<[^<>\s]+>)", text, re.I | re.M)
    return _cap_ids([normalize_id(value) for value in found])


def _bounce_text(body: _Walker) -> str:
    status = body.failed or {}
    recipient = status.get("recipient", "")
    human = body.text().strip()
    if not recipient and (match := re.search(r"^\s*<([^<>\s]+@[^<>\s]+)>:", human, re.M)):
        recipient = match.group(1)
    code = status.get("status", "")
    if not code and (match := re.search(r"\b([45]\.\d{1,3}\.\d{1,3})\b", human)):
        code = match.group(1)
    action = {"delayed": "delayed", "delivered": "succeeded", "relayed": "relayed",
              "expanded": "expanded"}.get(status.get("action", ""), "failed")
    summary = f"Delivery {action}" + (f" to {recipient}" if recipient else "")
    details = "; ".join(part for part in (f"status {code}" if code else "",
                                          status.get("diagnostic", "")) if part)
    summary += f" ({details})." if details else "."
    return f"{summary}\n\n{human}" if human else summary


# -- the MIME tree ----------------------------------------------------------------------------

# Charset names as mail clients mean them (WHATWG-style supersets).
_CHARSETS = {
    "iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252",
    "us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252",
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "cp936": "gb18030",
    "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
    "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "iso-8859-9": "cp1254", "tis-620": "cp874",
    "utf8": "utf-8", "unicode-1-1-utf-7": "utf-7",
}
_EXTENSIONS = {
    "application/pdf": ".pdf", "image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif",
    "image/webp": ".webp", "image/heic": ".heic", "text/plain": ".txt", "text/html": ".html",
    "text/calendar": ".ics", "text/csv": ".csv", "message/rfc822": ".eml",
    "application/zip": ".zip", "application/msword": ".doc", "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/ms-tnef": ".dat", "audio/mpeg": ".mp3", "video/mp4": ".mp4",
}
_META_CHARSET = re.compile(rb"<meta[^>]{0,200}?charset\s*=\s*[\"']?\s*([\w.:-]{1,40})", re.I)
_BOUNDARY_LINE = re.compile(r"^--([^\s]{1,70}?)(?:--)?\s*$", re.M)


def _mostly_utf8(data: bytes) -> str | None:
    """`data` as UTF-8 when it is UTF-8 (a few bad bytes, e.g. a truncated tail, allowed)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
    high = len(data) - len(data.decode("ascii", "ignore"))
    return text if text.count("\ufffd") * 10 < high else None


def _decode_text(data: bytes, charset: str | None) -> str:
    """Bytes of a text part as str, '\\n' line endings: the declared charset (as clients
    mean it), else UTF-8, else cp1252; never raises, bad bytes become U+FFFD."""
    name = (charset or "").strip().strip("\"'").lower()
    alias = _CHARSETS.get(name, name)
    try:
        codec = codecs.lookup(alias).name if alias else ""
    except Exception:  # unknown, or not even a name ("utf\x00-8")
        codec = ""
    text: str | None = None
    if codec and not (alias == "cp1252" and name != alias):
        try:
            text = data.decode(codec)
        except Exception:
            text = _mostly_utf8(data) if codec != "utf-8" else None
            if text is None:
                text = data.decode(codec, "replace")
    if text is None:   # no charset, an unknown one, or "latin-1"/"us-ascii" (often UTF-8)
        text = _mostly_utf8(data)
    if text is None:
        text = data.decode("cp1252", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _extension(content_type: str) -> str:
    if ext := _EXTENSIONS.get(content_type):
        return ext
    return mimetypes.guess_extension(content_type, strict=False) or ".bin"


def _safe_filename(name: str) -> str:
    name = _line(_unsurrogate(name)).replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    return name[:255]


def _raw_header(part: Message, name: str) -> str:
    """One header of a part as written (unparsed), '' when absent."""
    for key, value in part.raw_items():
        if key.lower() == name:
            return _unsurrogate(str(value)).strip()
    return ""


@dataclass(frozen=True)
class _PartInfo:
    """Content-Type and Content-Disposition of a part, each parsed once (the stdlib's
    get_content_type/get_param/get_filename parse the header again on every call)."""

    content_type: str
    params: dict[str, str]
    disposition: str | None
    filename: str

    @classmethod
    def of(cls, part: Message) -> _PartInfo:
        header = part.get("content-type")
        if header is None:
            ctype, params = part.get_default_type(), {}
        else:
            ctype = str(getattr(header, "content_type", "") or "text/plain").lower()
            params = {str(k).lower(): str(v) for k, v in
                      (getattr(header, "params", None) or {}).items()}
        if ctype.count("/") != 1:
            ctype = "text/plain"
        disposition, filename = None, ""
        header = part.get("content-disposition")
        if header is not None:
            disposition = str(getattr(header, "content_disposition", "") or "").lower() or None
            for key, value in (getattr(header, "params", None) or {}).items():
                if str(key).lower() == "filename":
                    filename = str(value)
        filename = _unsurrogate(filename or params.get("name", "")).strip()
        return cls(ctype, params, disposition, filename)

    def param(self, name: str) -> str:
        return self.params.get(name, "")


@dataclass
class _Walker:
    """Collects the body, attachments and any delivery report from a MIME tree."""

    max_attachment: int
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    embedded: list[Message] = field(default_factory=list)   # originals in a report
    forwarded: list[Message] = field(default_factory=list)  # message/rfc822 attachments
    report_type: str = ""
    failed: dict[str, str] | None = None
    language: str = ""

    def text(self) -> str:
        plain = "\n".join(part.strip("\n") for part in self.plain if part.strip())
        if plain.strip():
            return plain
        if self.html:
            return html_to_text("\n".join(self.html))
        return ""

    def sanitised_html(self) -> str | None:
        if not self.html:
            return None
        try:
            return nh3.clean("\n".join(self.html),
                             url_schemes=nh3.ALLOWED_URL_SCHEMES | {"cid"})
        except Exception as exc:
            log.warning("HTML could not be sanitised (%s); dropped", exc)
            return ""

    def visit(self, part: Message, depth: int, *, in_report: bool = False,
              in_alternative: bool = False) -> None:
        if depth > MAX_DEPTH:
            return
        try:
            self._visit(part, depth, in_report, in_alternative)
        except Exception as exc:  # one broken part costs itself, not the message
            log.warning("skipped a MIME part that could not be read (%s: %s)",
                        type(exc).__name__, exc)

    def _visit(self, part: Message, depth: int, in_report: bool, in_alternative: bool) -> None:
        info = _PartInfo.of(part)
        ctype = info.content_type
        # (get_payload() of a leaf would decode it with its declared charset, and raises
        # ValueError for some broken names: leaves are read as bytes, by _payload)
        payload = part.get_payload() if part.is_multipart() else None
        if ctype.startswith("multipart/"):
            if isinstance(payload, list):
                if ctype == "multipart/report":
                    self.report_type = self.report_type or info.param("report-type").lower()
                    in_report = True
                for sub in payload:
                    self.visit(sub, depth + 1, in_report=in_report,
                               in_alternative=ctype == "multipart/alternative")
            else:
                self._repair(ctype, _payload(part), depth)
            return
        if ctype == "message/delivery-status":
            self._delivery_status(part)
            return
        if ctype in ("message/rfc822", "message/global") and isinstance(payload, list):
            if in_report and payload:
                self.embedded.append(payload[0])
                return
            filename = info.filename
            if payload:
                self.forwarded.append(payload[0])
                subject = _Headers(payload[0]).text("subject")[:100].strip()
                filename = filename or (f"{subject}.eml" if subject else "")
            self._attach(part, info, _message_bytes(payload[0]) if payload else b"", filename)
            return
        if ctype in ("text/rfc822-headers", "message/global-headers") and in_report:
            data = part.get_payload(decode=True) or b""
            self.embedded.append(BytesParser(policy=POLICY).parsebytes(data, headersonly=True))
            return
        if ctype == "message/disposition-notification" and in_report:
            return
        if ctype in ("text/plain", "text/html") and info.disposition != "attachment" \
                and not info.filename:
            self._body(part, info)
            return
        if in_alternative and ctype.startswith("text/") and not info.filename \
                and ctype != "text/calendar":
            return  # another rendering of the body (text/enriched, Gmail's AMP…)
        self._attach(part, info, _payload(part), info.filename)

    def _body(self, part: Message, info: _PartInfo) -> None:
        data = _payload(part)
        charset = info.param("charset") or None
        if info.content_type == "text/html" and not charset \
                and (match := _META_CHARSET.search(data[:4096])):
            charset = match.group(1).decode("ascii", "replace")
        text = _decode_text(data, charset)
        if not self.language and (language := _raw_header(part, "content-language")):
            self.language = language
        if info.content_type == "text/html":
            self.html.append(text)
            return
        if info.param("format").lower() == "flowed":
            text = _unflow(text, info.param("delsp").lower() == "yes")
        self.plain.append(text)

    def _attach(self, part: Message, info: _PartInfo, data: bytes, filename: str) -> None:
        ctype, disposition = info.content_type, info.disposition
        name = _safe_filename(filename)
        if not name:
            name = f"attachment-{len(self.attachments) + 1}{_extension(ctype)}"
        inline = (ctype.startswith("image/") and disposition != "attachment"
                  and (disposition == "inline" or bool(_raw_header(part, "content-id"))))
        size = len(data)
        self.attachments.append(Attachment(
            filename=name, content_type=ctype[:127],
            data=data if size <= self.max_attachment else None, size=size, inline=inline))

    def _repair(self, ctype: str, data: bytes, depth: int) -> None:
        """A multipart whose boundary was never declared: take the one its body uses."""
        match = _BOUNDARY_LINE.search(data.decode("latin-1"))
        if match is None:
            self.plain.append(_decode_text(data, None))
            return
        head = (f'Content-Type: {ctype}; boundary="{match.group(1)}"\r\n'
                "\r\n").encode("latin-1", "replace")
        repaired = BytesParser(policy=POLICY).parsebytes(head + data)
        if repaired.is_multipart():
            self.visit(repaired, depth + 1)
        else:
            self.plain.append(_decode_text(data, None))

    def _delivery_status(self, part: Message) -> None:
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        if not self.report_type:
            self.report_type = "delivery-status"
        first: dict[str, str] | None = None
        for block in blocks[1:] or blocks:
            values = {str(k).lower(): _line(_unsurrogate(str(v)))
                      for k, v in block.raw_items()}
            recipient = values.get("final-recipient") or values.get("original-recipient") or ""
            entry = {
                "recipient": recipient.split(";", 1)[-1].strip(),
                "action": values.get("action", "").lower(),
                "status": values.get("status", ""),
                "diagnostic": values.get("diagnostic-code", ""),
            }
            if first is None and entry["recipient"]:
                first = entry
            if entry["action"] == "failed" and entry["recipient"]:
                self.failed = entry
                return
        self.failed = first


def _payload(part: Message) -> bytes:
    """The decoded body of a leaf part; base64 cut short decodes as far as it goes."""
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return str(part.get_payload() or "").encode("utf-8", "surrogateescape")
    if any(isinstance(d, email.errors.InvalidBase64LengthDefect) for d in part.defects):
        # here get_payload(decode=True) gave back the undecoded text
        encoded = re.sub(rb"[^A-Za-z0-9+/]", b"", data)
        try:
            return base64.b64decode(encoded[:len(encoded) // 4 * 4])
        except Exception:
            return data
    return data


def _message_bytes(message: Message) -> bytes:
    try:
        return message.as_bytes(policy=POLICY.clone(max_line_length=0))
    except Exception:
        try:
            return message.as_string().encode("utf-8", "surrogateescape")
        except Exception:
            return b""


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676 format=flowed: soft line breaks (a trailing space) joined again."""
    out: list[str] = []
    pending: str | None = None
    pending_depth = 0
    for line in text.split("\n"):
        line = line.rstrip("\r")
        stripped = line.lstrip(">")
        depth = len(line) - len(stripped)
        if stripped.startswith(" "):
            stripped = stripped[1:]   # space-stuffing
        if pending is not None and depth == pending_depth:
            stripped = pending + stripped
        elif pending is not None:
            out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
        pending = None
        if stripped.endswith(" ") and stripped != "-- ":
            pending, pending_depth = (stripped[:-1] if delsp else stripped), depth
            continue
        out.append(">" * depth + (" " if depth else "") + stripped)
    if pending is not None:
        out.append(">" * pending_depth + (" " if pending_depth else "") + pending)
    return "\n".join(out)


# -- HTML to text -----------------------------------------------------------------------------

_BLOCK = frozenset({
    "address", "article", "aside", "center", "dd", "div", "dl", "dt", "fieldset",
    "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
    "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "thead",
    "tfoot", "tr", "ul",
})
_PARAGRAPH = frozenset({"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})
# (not <head>: mail often leaves it unclosed; what it holds that is text is listed here)
_SKIP = frozenset({"script", "style", "title", "template", "noscript", "xml", "svg"})
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "area", "base", "col",
                   "embed", "param", "source", "track", "wbr"})


class _TextRenderer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self.current: list[str] = []
        self.depth = 0        # blockquote nesting
        self.skip = 0
        self.pre = 0

    def flush(self, *, blank: bool = False) -> None:
        text = "".join(self.current)
        self.current = []
        if not self.pre:
            text = _SPACES.sub(" ", text.replace("\xa0", " ")).strip()
        if text:
            self.lines.append((self.depth, text))
        if blank and self.lines and self.lines[-1][1]:
            self.lines.append((self.depth, ""))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
        elif self.skip:
            return
        elif tag == "br":
            text = "".join(self.current)
            self.current = []
            text = text if self.pre else _SPACES.sub(" ", text.replace("\xa0", " ")).strip()
            self.lines.append((self.depth, text))
        elif tag == "blockquote":
            self.flush(blank=True)
            self.depth += 1
        elif tag in _BLOCK:
            self.flush(blank=tag in _PARAGRAPH)
            if tag == "li":
                self.current.append("- ")
            elif tag == "pre":
                self.pre += 1
            elif tag == "hr":
                self.lines.append((self.depth, "________________________________"))
        elif tag in ("td", "th"):
            self.current.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
        elif self.skip:
            return
        elif tag == "blockquote":
            self.flush(blank=True)
            self.depth = max(0, self.depth - 1)
        elif tag in _BLOCK:
            if tag == "pre":
                self.flush()
                self.pre = max(0, self.pre - 1)
            else:
                self.flush(blank=tag in _PARAGRAPH)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            parts = data.split("\n")
            for extra in parts[1:]:
                self.current.append(parts[0])
                self.flush()
                parts[0] = extra
            self.current.append(parts[0])
        else:
            self.current.append(data)


def html_to_text(html: str) -> str:
    """Readable text of an HTML body: blocks and <br> become lines, lists get "- ",
    <blockquote> becomes "> " lines (so quoted history is recognised like plain text),
    scripts and styles vanish. Never raises."""
    renderer = _TextRenderer()
    try:
        renderer.feed(html)
        renderer.close()
    except Exception as exc:
        log.warning("HTML could not be fully read (%s); partial text kept", exc)
    renderer.flush()
    out: list[str] = []
    for depth, text in renderer.lines:
        line = ("> " * depth + text).rstrip() if text else ">" * depth
        if not text and out and not out[-1].lstrip(">").strip():
            continue
        out.append(line)
    return "\n".join(out).strip("\n")


# -- the new text of a reply ----------------------------------------------------------------

_STARTERS = re.compile(r"^(?:On|El|Em|Le|Am|W dniu|Il|Op|Den)\b|@", re.I)
_REPLY_HEADER = re.compile(
    r"^(?:On\b.{0,300}\bwrote"
    r"|El\b.{0,300}\bescribi[óo]"
    r"|Em\b.{0,300}\bescreveu"
    r"|Le\b.{0,300}\ba\s+[ée]crit"
    r"|Am\b.{0,300}\bschrieb\b.{0,300}"
    r"|.{0,200}[\w.+-]+@[\w-]+\.[\w.-]+>?\)?\s*(?:wrote|escribi[óo]|escreveu|a\s+[ée]crit"
    r"|schrieb)"
    r")\s*:\s*$", re.I | re.S)
# what a client's reply header always has and a customer's "On Monday I wrote:" lacks
_HEADER_DETAIL = re.compile(r"@|\d{1,2}:\d{2}|\b(?:19|20)\d{2}\b|\d{1,2}[/.-]\d{1,2}[/.-]\d{2}")
_ORIGINAL = re.compile(
    r"^-{2,}\s*(?:Original Message|Mensaje original|Mensagem original|Message d'origine"
    r"|Ursprüngliche Nachricht|Messaggio originale)\s*-{2,}$", re.I)
_FORWARD = re.compile(
    r"^(?:-{2,}\s*(?:Forwarded message|Mensaje reenviado|Mensagem encaminhada"
    r"|Mensagem reencaminhada|Message transféré|Weitergeleitete Nachricht"
    r"|Forwarded Message)\s*-{2,}"
    r"|(?:Begin forwarded message|Inicio del mensaje reenviado|Comienzo del mensaje reenviado"
    r"|Início da mensagem reencaminhada|Début du message réexpédié"
    r"|Anfang der weitergeleiteten Nachricht)\s*:)\s*$", re.I)
_LABEL_FROM = re.compile(r"^\*?(?:From|De|Von|Da|Van)\s*:\*?\s*\S", re.I)
_LABEL_SENT = re.compile(
    r"^\*?(?:Sent|Date|Enviado(?: el)?|Enviada em|Fecha|Data|Gesendet|Datum|Envoyé|Inviato)"
    r"\s*:", re.I)
_LABEL_SUBJECT = re.compile(
    r"^\*?(?:Subject|Asunto|Assunto|Betreff|Objet|Oggetto|Onderwerp)\s*:", re.I)
_UNDERSCORES = re.compile(r"^_{10,}$")
_DEVICE = (r"(?:iPhone|iPad|Android|Samsung|Galaxy|smartphone|mobile|phone|móvil|movil"
           r"|celular|teléfono|telefone|telemóvel|portable|Handy|BlackBerry|Huawei|Xiaomi"
           r"|Redmi|Motorola|Pixel|dispositivo)")
_MOBILE = re.compile(
    r"^(?:Sent from my\s+(?:\w+\s+){0,2}" + _DEVICE + r"\b.{0,40}"
    r"|Enviado desde mi\s+(?:\w+\s+){0,2}" + _DEVICE + r"\b.{0,40}"
    r"|Enviado (?:do|a partir do) meu\s+(?:\w+\s+){0,2}" + _DEVICE + r"\b.{0,40}"
    r"|Envoyé de mon\s+(?:\w+\s+){0,2}" + _DEVICE + r"\b.{0,40}"
    r"|Von meinem\s+(?:\w+\s+){0,2}" + _DEVICE + r"\b.{0,40}gesendet"
    r"|(?:Sent from|Enviado desde)\s+(?:Yahoo Mail|Outlook|Mail|Correo|Gmail)\b.{0,40}"
    r"|(?:Get|Obtener|Obtenha|Obtenir|Holen Sie sich)\s+Outlook"
    r"\s+(?:for|para|pour|für)\s+(?:iOS|Android)\b.{0,80})$", re.I)


def _quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _reply_header(lines: list[str], i: int) -> int | None:
    """If a reply header ("On … wrote:") starts at line i (it may wrap over up to three
    lines), the index of its last line."""
    first = lines[i].strip()
    if not _STARTERS.search(first) or len(first) > 400:
        return None
    joined = first
    for j in range(i, min(i + 3, len(lines))):
        if j > i:
            nxt = lines[j].strip()
            if not nxt or _quoted(lines[j]):
                return None
            joined += " " + nxt
        if len(joined) > 700:
            return None
        if _REPLY_HEADER.match(joined) and _HEADER_DETAIL.search(joined):
            return j
    return None


def _header_block(lines: list[str], i: int) -> bool:
    """An Outlook-style block "From: … Sent: … To: … Subject: …" starting at line i."""
    if not _LABEL_FROM.match(lines[i].strip()):
        return False
    sent = subject = False
    for line in lines[i + 1:i + 9]:
        stripped = line.strip()
        sent = sent or bool(_LABEL_SENT.match(stripped))
        subject = subject or bool(_LABEL_SUBJECT.match(stripped))
        if sent and subject:
            return True
    return False


def _inline_reply(lines: list[str], start: int) -> bool:
    """After a reply header: quoted lines first, then the sender's own lines again?"""
    seen_quote = False
    for line in lines[start:]:
        if not line.strip():
            continue
        if _quoted(line):
            seen_quote = True
            continue
        if not seen_quote:
            return False          # unquoted history (Outlook style): not an inline reply
        return not _MOBILE.match(line.strip())
    return False


def strip_quoted(text: str, *, forward: bool = False) -> str:
    """The new lines of a reply: quoted history, reply headers and the signature removed.

    Recognises "> " quotes, "On … wrote:" in es/en/pt/fr/de, Outlook's "-----Original
    Message-----" and "From:/De: … Sent:/Enviado: … Subject:/Asunto:" blocks, "-- "
    signatures and phone footers ("Enviado desde mi iPhone"). Inline (bottom-posted)
    answers keep the sender's lines between the quotes. A forward ("---------- Forwarded
    message ---------", or `forward=True` for an "Fwd:/RV:" subject before an Outlook
    block) is kept whole: the forwarded content is what the sender is sending. When
    nothing would be left, the whole text is returned.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    cut = len(lines)
    drop: set[int] = set()
    i = 0
    while i < len(lines):
        stripped = lines[i].strip()
        if not stripped or _quoted(lines[i]):
            i += 1
            continue
        if _FORWARD.match(stripped):
            return text.strip("\n")
        if _ORIGINAL.match(stripped) or _header_block(lines, i):
            if forward:
                return text.strip("\n")
            cut = i
            previous = i - 1
            while previous >= 0 and not lines[previous].strip():
                previous -= 1
            if previous >= 0 and _UNDERSCORES.match(lines[previous].strip()):
                cut = previous
            break
        if (end := _reply_header(lines, i)) is not None:
            if _inline_reply(lines, end + 1):
                drop.update(range(i, end + 1))
                i = end + 1
                continue
            cut = i
            break
        i += 1

    kept: list[str] = []
    for index, line in enumerate(lines[:cut]):
        stripped = line.strip()
        if index in drop or _quoted(line):
            continue
        if stripped == "--":
            break
        if _MOBILE.match(stripped):
            continue
        kept.append(line.rstrip())
    result = "\n".join(kept).strip("\n")
    result = re.sub(r"\n{3,}", "\n\n", result)
    if not result.strip():
        return text.strip("\n")
    return result


# -- the last resort --------------------------------------------------------------------------


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
        if found and (addr := _ADDRESS.search(found.group(1))):
            address = addr.group(0).lower()
        if found := re.search(r"^Subject:(.*)$", head_text, re.I | re.M):
            subject = _line(found.group(1))
    except Exception:
        log.warning("email fallback could not read the headers either")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return Inbound(channel="email", sender=Party("customer", address), text=text,
                   external_id=external_id, subject=subject, received_at=received_at,
                   mailbox=getattr(mailbox, "name", ""), raw=raw)
