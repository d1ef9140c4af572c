"""Outgoing email: one `Outbound` becomes one MIME message, ready for SMTP.

`compose` is a pure function (no network): the message threads under the customer's mail
(In-Reply-To/References), names its ticket in the subject (`[#1042]`), answers to a signed
reply address when tokens are on, and marks automatic mail as such (RFC 3834) so other
robots do not answer it. Every header value we build is stripped of CR/LF and control
characters: a customer name or subject can never add a header.

Example:
    >>> from datetime import datetime, timezone
    >>> from gateway.core.messages import Outbound
    >>> from adapters.email.settings import EmailSettings, MailboxSettings
    >>> from adapters.email.tokens import ReplyTokens
    >>> box = MailboxSettings(name="soporte", address="soporte@example.com",
    ...                       display_name="Soporte", imap_host="imap.example.com",
    ...                       imap_user="soporte", smtp_host="smtp.example.com")
    >>> out = Outbound(channel="email", recipient="maria@example.org", text="Hola",
    ...                ticket_number=1042, automatic=True, reply_to=("abc@mail.example.org",),
    ...                ticket_subject="Mi pedido")
    >>> now = datetime(2026, 11, 22, tzinfo=timezone.utc)
    >>> msg, message_id = compose(out, mailbox=box, settings=EmailSettings(),
    ...                           tokens=ReplyTokens(""), now=now)
    >>> msg["Subject"], msg["In-Reply-To"], msg["Auto-Submitted"]
    ('Re: Mi pedido [#1042]', '<abc@mail.example.org>', 'auto-replied')
    >>> msg["Message-ID"] == f"<{message_id}>"
    True
"""

from __future__ import annotations

import email.policy
import html
import re
import unicodedata
from datetime import datetime
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, formataddr, getaddresses, parseaddr

from adapters.email.ids import make_message_id, normalize_id
from adapters.email.settings import ADDRESS, EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.messages import SURVEY_SCORES, Attachment, Outbound, PermanentError, score_label

_RE = re.compile(r"^\s*re\s*:", re.IGNORECASE)
_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_PARAGRAPHS = re.compile(r"\n[ \t]*\n\s*")
_LANGUAGE = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")
# A Message-ID we are willing to repeat in In-Reply-To/References: printable ASCII,
# no brackets or spaces, short enough for one header line.
_MSG_ID = re.compile(r"[!-;=?-~]{1,900}")
_TRAILING = ".,;:!?'\""
_BREAKS = ("Cc", "Zl", "Zp")   # control characters, line and paragraph separators
_DROPPED = ("Cf", "Cs")        # invisible formatting (bidi overrides…), lone surrogates
_JOINERS = "\u200c\u200d"      # zero-width (non-)joiners keep emoji and scripts whole


def clean_header(value: object) -> str:
    """A header value made safe: no CR/LF or control characters, whitespace collapsed.

    >>> clean_header("Hola\\r\\nBcc: x@evil.example")
    'Hola Bcc: x@evil.example'
    >>> clean_header("=?utf-8?q?a=0D=0ABcc:_x@evil?=")  # an encoded line break too
    'a Bcc: x@evil'
    """
    raw = str(value or "")
    for _ in range(5):  # "=?utf-8?q?a=0D=0ABcc:…?=" would become a line break when the
        if "=?" not in raw:  # email policy decodes it: decode it here, then clean it
            break
        try:
            decoded = str(make_header(decode_header(raw)))
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            decoded = raw.replace("=?", "= ?")
        if decoded == raw:
            raw = raw.replace("=?", "= ?")
            break
        raw = decoded
    text = "".join(
        " " if unicodedata.category(ch) in _BREAKS else ch
        for ch in raw
        if unicodedata.category(ch) not in _DROPPED or ch in _JOINERS
    )
    return " ".join(text.split())


def recipient_address(recipient: str) -> tuple[str, str]:
    """(display name, address) of the one recipient, or PermanentError saying why not.

    Accepted: `maria@example.org` or `María <maria@example.org>`; nothing else (empty,
    several addresses, line breaks, spaces inside the address).
    """
    raw = str(recipient or "")
    if not raw.strip():
        raise PermanentError("the customer has no email address to answer to")
    if any(unicodedata.category(ch) == "Cc" or ch in "\u2028\u2029" for ch in raw):
        raise PermanentError(f"invalid recipient address {raw!r}: it contains line breaks "
                             "or control characters")
    pairs = getaddresses([raw])
    name, address = parseaddr(raw)
    if len(pairs) != 1 or not address:
        raise PermanentError(f"invalid recipient address {raw!r}: expected exactly one "
                             "email address")
    written = raw.strip()
    if "<" in written:
        inside = written[written.find("<") + 1:written.rfind(">")]
        if not written.endswith(">") or inside.strip() != address:
            raise PermanentError(f"invalid recipient address {raw!r}")
    elif written != address:
        raise PermanentError(f"invalid recipient address {raw!r}: expected one address "
                             "without spaces")
    if not ADDRESS.fullmatch(address):
        raise PermanentError(f"invalid recipient address {raw!r}: not an email address")
    return clean_header(name), address


class _IdListHeader(str):
    """In-Reply-To / References as we fold them: one id per line, never RFC 2047 encoded.

    The stdlib treats these headers as unstructured text and encodes a long Message-ID
    (Gmail's often exceed 78 characters) into `=?utf-8?q?…?=`, which breaks threading in
    the customer's mail client. The email policies fold any header object that has a
    `name` and a `fold(policy=)` by calling it, with whatever policy flattens the message
    (aiosmtplib flattens again with its own).
    """

    name: str

    def __new__(cls, name: str, ids: list[str]) -> _IdListHeader:
        self = super().__new__(cls, " ".join(f"<{i}>" for i in ids))
        self.name = name
        return self

    def __reduce__(self) -> tuple[type[_IdListHeader], tuple[str, list[str]]]:
        return type(self), (self.name, [part[1:-1] for part in self.split()])  # copy, pickle

    def fold(self, *, policy: Policy) -> str:
        linesep = policy.linesep
        return f"{self.name}: " + f"{linesep} ".join(self.split()) + linesep


def _subject(out: Outbound, settings: EmailSettings) -> str:
    """"Re: <the customer's subject> [#1042]" for anything answering the customer's mail
    (Gmail and others put a message in the conversation only when the subject matches);
    the template's subject for mail that starts a conversation."""
    base = clean_header(out.ticket_subject)
    subject = clean_header(out.subject)
    if base and (out.reply_to or not subject):
        subject = base if _RE.match(base) else f"Re: {base}"
    if out.ticket_number is not None:
        tag = settings.subject_tag.format(number=out.ticket_number)
        if tag not in subject:
            subject = f"{subject} {tag}".strip()
    return subject


def _linkify(line: str) -> str:
    parts: list[str] = []
    pos = 0
    for match in _URL.finditer(line):
        url = match.group(0)
        while url and (url[-1] in _TRAILING or (url[-1] == ")" and
                                                 url.count(")") > url.count("("))):
            url = url[:-1]
        if len(url) <= len("https://"):
            continue
        parts.append(html.escape(line[pos:match.start()]))
        safe = html.escape(url, quote=True)
        parts.append(f'<a href="{safe}">{safe}</a>')
        pos = match.start() + len(url)
    parts.append(html.escape(line[pos:]))
    return "".join(parts)


def render_html(text: str, *, lang: str | None = None) -> str:
    """A simple, safe HTML rendering of a plain text: escaped, paragraphs on blank lines,
    <br> on single newlines, http(s) links clickable.

    >>> print(render_html("Hola <b>\\nVer https://example.com/?a=1&b=2.\\n\\nChau"))
    <!DOCTYPE html>
    <html><head><meta charset="utf-8"></head>
    <body>
    <p>Hola &lt;b&gt;<br>
    Ver <a href="https://example.com/?a=1&amp;b=2">https://example.com/?a=1&amp;b=2</a>.</p>
    <p>Chau</p>
    </body></html>
    <BLANKLINE>
    """
    paragraphs = [p for p in _PARAGRAPHS.split(text.strip("\n")) if p.strip()]
    body = "\n".join(
        "<p>" + "<br>\n".join(_linkify(line) for line in p.split("\n")) + "</p>"
        for p in paragraphs
    )
    lang_attr = f' lang="{html.escape(lang, quote=True)}"' if lang else ""
    return (f'<!DOCTYPE html>\n<html{lang_attr}><head><meta charset="utf-8"></head>\n'
            f"<body>\n{body}\n</body></html>\n")


SURVEY_LEAD = {"es": "Responde con un número, o elige aquí:",
               "en": "Reply with a number, or choose here:"}


def _survey_links(out: Outbound) -> list[str]:
    """"1: https://…" lines for the survey's links (`gateway.web.survey`); mail has no
    buttons, and the HTML part makes each one clickable."""
    links = dict(out.survey.links) if out.survey is not None else {}
    return [f"{score_label(score)}: {url}"
            for score, url in sorted(links.items())
            if score in SURVEY_SCORES and isinstance(url, str) and url.startswith(("https://",
                                                                            "http://"))
            and not any(c.isspace() for c in url)]


def _filename(attachment: Attachment) -> str:
    name = clean_header(attachment.filename).replace("/", "_").replace("\\", "_")
    return name.strip(". ") or "attachment"


def _mime_type(content_type: str) -> tuple[str, str]:
    maintype, _, subtype = clean_header(content_type).lower().partition("/")
    subtype = subtype.split(";", 1)[0].strip()
    token = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
    # multipart/* and message/* cannot be base64-encoded leaves (RFC 2046): plain bytes.
    if (not (token.fullmatch(maintype) and token.fullmatch(subtype))
            or maintype in ("multipart", "message")):
        return "application", "octet-stream"
    return maintype, subtype


def compose(out: Outbound, *, mailbox: MailboxSettings, settings: EmailSettings,
            tokens: ReplyTokens, now: datetime, company: str = "") -> tuple[EmailMessage, str]:
    """The MIME message for `out`, and its Message-ID in stored form (no brackets).

    Raises PermanentError when the recipient is not exactly one valid address.
    """
    to_name, to_address = recipient_address(out.recipient)
    message_id = make_message_id(mailbox.domain)
    locale = out.locale or None
    language = clean_header(locale).replace("_", "-") if locale else ""
    if not _LANGUAGE.fullmatch(language):
        language = ""

    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"] = formataddr((clean_header(mailbox.display_name or company), mailbox.address))
    msg["To"] = formataddr((to_name, to_address))
    if tokens.enabled and out.ticket_number is not None:
        msg["Reply-To"] = tokens.address(mailbox.address, out.ticket_number)
    msg["Subject"] = _subject(out, settings)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{message_id}>"
    ids = [i for i in (normalize_id(r) for r in out.reply_to) if _MSG_ID.fullmatch(i)]
    if ids:
        msg["In-Reply-To"] = _IdListHeader("In-Reply-To", ids[-1:])
        msg["References"] = _IdListHeader("References", ids)
    if out.automatic:
        msg["Auto-Submitted"] = "auto-replied" if out.reply_to else "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"

    text = str(out.text or "").replace("\r\n", "\n").replace("\r", "\n")
    sent = [a for a in out.attachments if a.data is not None]
    missing = [a for a in out.attachments if a.data is None]
    if missing:
        notes = "\n".join(f"(attachment not sent: {_filename(a)})" for a in missing)
        text = f"{text.rstrip()}\n\n{notes}" if text.strip() else notes
    if links := _survey_links(out):
        lead = SURVEY_LEAD.get(language[:2], SURVEY_LEAD["es"])
        text = f"{text.rstrip()}\n\n{lead}\n" + "\n".join(links)
    if not text.endswith("\n"):
        text += "\n"

    msg.set_content(text)
    msg.add_alternative(render_html(text, lang=language or None), subtype="html")
    for attachment in sent:
        maintype, subtype = _mime_type(attachment.content_type)
        msg.add_attachment(attachment.data, maintype=maintype, subtype=subtype,
                           filename=_filename(attachment),
                           disposition="inline" if attachment.inline else "attachment")
    if language:  # after the body: set_content and add_* move Content-* headers inside
        msg["Content-Language"] = language
    return msg, message_id
