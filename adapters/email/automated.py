"""Mail no human wrote: RFC 3834 and what mail systems actually send (`Auto-Submitted`,
`Precedence`, `List-*`, noreply senders, Microsoft's `X-Auto-Response-Suppress`…) make a
message `automated`; delivery reports are bounces (threaded to the mail that failed, with
a one-line summary) and out-of-office replies and read receipts are auto-replies.

Example:
    >>> from email.parser import BytesParser
    >>> from adapters.email.headers import POLICY, Headers, sender_of
    >>> msg = BytesParser(policy=POLICY).parsebytes(
    ...     b"From: Ana <ana@correo.example>\\r\\nAuto-Submitted: auto-replied\\r\\n"
    ...     b"Subject: Fuera de la oficina: Consulta\\r\\n\\r\\nVuelvo el lunes.")
    >>> headers, body = Headers(msg), Walker(max_attachment=1024)
    >>> body.visit(msg, 0)
    >>> sender = sender_of(headers)
    >>> kind_of(headers, sender, "Fuera de la oficina: Consulta", body)
    'auto_reply'
    >>> is_automated(headers, sender)
    True
"""

from __future__ import annotations

import re

from adapters.email.headers import Headers, addresses, cap_ids, local_part, reply_ids
from adapters.email.ids import normalize_id
from adapters.email.parts import Walker
from gateway.core.messages import Party

__all__ = ["bounce_text", "is_automated", "kind_of", "original_ids"]

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


def is_automated(headers: Headers, sender: Party) -> bool:
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
        candidates += [address for address, _ in addresses(headers, "sender", value)]
    return any(_AUTOMATED_LOCAL.fullmatch(local_part(a)) for a in candidates if "@" in a)


def kind_of(headers: Headers, sender: Party, subject: str, body: Walker) -> str:
    """What kind of mail: "bounce" (a delivery report), "auto_reply" (out of office, read
    receipt) or "message"."""
    if body.report_type == "delivery-status":
        return "bounce"
    if _BOUNCE_LOCAL.fullmatch(local_part(sender.address)) and _FAILURE_SUBJECT.search(subject):
        return "bounce"
    if body.report_type == "disposition-notification":  # a read receipt
        return "auto_reply"
    auto = headers.raw("auto-submitted").split(";")[0].strip().lower()
    if auto == "auto-replied" or headers.has("x-autoreply") or headers.has("x-autorespond"):
        return "auto_reply"
    if _AUTO_REPLY_SUBJECT.match(subject):
        return "auto_reply"
    return "message"


def original_ids(body: Walker) -> tuple[str, ...]:
    """The thread ids of the message a bounce reports: its References, In-Reply-To and
    Message-ID (newest last), from the embedded original or, failing that, from a copy of
    its headers in the report's text."""
    for original in body.embedded + body.forwarded:
        headers = Headers(original)
        mid = normalize_id(headers.raw("message-id"))
        if mid:
            return cap_ids([*reply_ids(headers), mid])
    text = "\n".join(body.plain)
    found = re.findall(r"^\s*Message-ID:\s*(<[^<>\s]+>)", text, re.I | re.M)
    return cap_ids([normalize_id(value) for value in found])


def bounce_text(body: Walker) -> str:
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

