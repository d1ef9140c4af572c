"""The MIME tree of one email, walked once: the body as text and HTML, the attachments
(with RFC 2231/2047 names, size-capped), the originals embedded in a delivery report and
its per-recipient status, and repairs for what broken mailers send (undeclared
boundaries, truncated base64, format=flowed).

Example:
    >>> from email.parser import BytesParser
    >>> msg = BytesParser(policy=POLICY).parsebytes(
    ...     b"Content-Type: multipart/mixed; boundary=XX\\r\\n\\r\\n"
    ...     b"--XX\\r\\nContent-Type: text/plain; charset=utf-8\\r\\n\\r\\nVan las fotos.\\r\\n"
    ...     b"--XX\\r\\nContent-Type: image/png\\r\\nContent-Disposition: inline; "
    ...     b"filename=caja.png\\r\\n\\r\\nPNG\\r\\n--XX--\\r\\n")
    >>> body = Walker(max_attachment=10 * 1024 * 1024)
    >>> body.visit(msg, 0)
    >>> body.text(), [(a.filename, a.inline, a.size) for a in body.attachments]
    ('Van las fotos.', [('caja.png', True, 3)])
"""

from __future__ import annotations

import base64
import email.errors
import logging
import mimetypes
import re
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesParser

import nh3

from adapters.email.charsets import decode_text
from adapters.email.headers import POLICY, Headers, one_line, unsurrogate
from adapters.email.html_text import html_to_text
from gateway.core.messages import Attachment

__all__ = ["MAX_DEPTH", "Walker"]

log = logging.getLogger("centralita.email.parse")

MAX_DEPTH = 40                 # MIME nesting we follow (deeper parts are ignored)

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


def _extension(content_type: str) -> str:
    if ext := _EXTENSIONS.get(content_type):
        return ext
    return mimetypes.guess_extension(content_type, strict=False) or ".bin"


def _safe_filename(name: str) -> str:
    name = one_line(unsurrogate(name)).replace("\\", "/").rsplit("/", 1)[-1].strip(" .")
    return name[:255]


def _raw_header(part: Message, name: str) -> str:
    """One header of a part as written (unparsed), '' when absent."""
    for key, value in part.raw_items():
        if key.lower() == name:
            return unsurrogate(str(value)).strip()
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
        filename = unsurrogate(filename or params.get("name", "")).strip()
        return cls(ctype, params, disposition, filename)

    def param(self, name: str) -> str:
        return self.params.get(name, "")


@dataclass
class Walker:
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
                subject = Headers(payload[0]).text("subject")[:100].strip()
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
        text = decode_text(data, charset)
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
            self.plain.append(decode_text(data, None))
            return
        head = (f'Content-Type: {ctype}; boundary="{match.group(1)}"\r\n'
                "\r\n").encode("latin-1", "replace")
        repaired = BytesParser(policy=POLICY).parsebytes(head + data)
        if repaired.is_multipart():
            self.visit(repaired, depth + 1)
        else:
            self.plain.append(decode_text(data, None))

    def _delivery_status(self, part: Message) -> None:
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else []
        if not self.report_type:
            self.report_type = "delivery-status"
        first: dict[str, str] | None = None
        for block in blocks[1:] or blocks:
            values = {str(k).lower(): one_line(unsurrogate(str(v)))
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

