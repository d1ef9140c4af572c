"""Sending one composed message over SMTP, with failures the outbox understands.

4xx replies, timeouts, lost connections and an untrusted certificate are `TransientError`
(the outbox retries, and tells agents when it gives up); 5xx replies are `PermanentError`
(agents are told at once). Reasons are written for an agent to read, e.g.
"SMTP 550 5.1.1 mailbox unavailable (from smtp.example.com)". Passwords never appear in
them, nor in logs.

Example:
    >>> await send_smtp(message, mailbox)    # doctest: +SKIP
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from typing import TypeVar

import aiosmtplib
from aiosmtplib import (
    SMTPException,
    SMTPNotSupported,
    SMTPRecipientsRefused,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
    SMTPTimeoutError,
)

from adapters.email.settings import MailboxSettings
from gateway.core.messages import DeliveryError, PermanentError, TransientError

_E = TypeVar("_E", bound=BaseException)


async def send_smtp(message: EmailMessage, mailbox: MailboxSettings) -> None:
    """Hand `message` to the mailbox's SMTP server (envelope from its From and To).

    Raises TransientError (try again later) or PermanentError (never going to work).
    """
    security = mailbox.smtp_security
    credentials: dict[str, str] = {}
    if mailbox.smtp_user:
        credentials = {"username": mailbox.smtp_user, "password": mailbox.smtp_password}
    try:
        refused, _ = await aiosmtplib.send(
            message,
            hostname=mailbox.smtp_host,
            port=mailbox.smtp_port,
            use_tls=security == "tls",
            start_tls=security == "starttls",
            timeout=mailbox.timeout.total_seconds(),
            **credentials,
        )
    except Exception as exc:  # every failure becomes Transient or Permanent
        raise _delivery_error(exc, mailbox) from exc
    if refused:  # some recipients refused without an exception: we send to one
        address, response = next(iter(refused.items()))
        raise _by_code(response.code, f"recipient {address} refused: {_text(response)}",
                       mailbox)


def _delivery_error(exc: BaseException, mailbox: MailboxSettings) -> DeliveryError:
    where = f"{mailbox.smtp_host}:{mailbox.smtp_port}"
    if cert := _find(exc, ssl.SSLCertVerificationError):
        detail = getattr(cert, "verify_message", "") or str(cert)
        return TransientError(f"SMTP server {where}: its TLS certificate was refused "
                              f"({_clean(detail)}); an administrator must install a "
                              "trusted certificate or correct smtp_host")
    if tls := _find(exc, ssl.SSLError):
        return TransientError(f"SMTP server {where}: TLS failed ({_clean(tls)}); check "
                              "smtp_security and smtp_port, or the server's certificate")
    if isinstance(exc, SMTPRecipientsRefused):
        codes = [r.code for r in exc.recipients]
        text = "; ".join(f"{r.recipient}: {r.code} {_clean(r.message)}" for r in exc.recipients)
        reason = f"SMTP recipient refused: {text} (from {mailbox.smtp_host})"
        if codes and all(code >= 500 for code in codes):
            return PermanentError(reason)
        return TransientError(reason)
    if isinstance(exc, SMTPResponseException):
        return _by_code(exc.code, _clean(exc.message), mailbox)
    if isinstance(exc, SMTPNotSupported):  # e.g. a non-ASCII address without SMTPUTF8
        return PermanentError(f"SMTP server {where} cannot take this message: "
                              f"{_clean(exc.message)}")
    if isinstance(exc, SMTPTimeoutError | TimeoutError):
        return TransientError(f"SMTP server {where} did not answer in time "
                              f"({mailbox.timeout.total_seconds():g} s)")
    if isinstance(exc, SMTPServerDisconnected | OSError):  # refused, reset, DNS, SMTPConnect
        cause = next((e for e in _chain(exc) if isinstance(e, OSError) and e.errno), None)
        detail = _clean(exc)
        if cause is not None:  # "Connection refused", "Name or service not known"
            detail = os.strerror(cause.errno) if cause.errno > 0 else cause.strerror or detail
        return TransientError(f"SMTP server {where} unreachable: {detail}")
    if isinstance(exc, SMTPException):  # no STARTTLS/AUTH offered: the admin must look
        return TransientError(f"SMTP server {where}: {_clean(exc.message)}")
    if isinstance(exc, ValueError):  # an address aiosmtplib will not put on the wire
        return PermanentError(f"message not sent: {_clean(exc)}")
    return TransientError(f"SMTP server {where}: {type(exc).__name__}: {_clean(exc)}")


def _by_code(code: int, text: str, mailbox: MailboxSettings) -> DeliveryError:
    reason = f"SMTP {code} {text} (from {mailbox.smtp_host})"
    return PermanentError(reason) if code >= 500 else TransientError(reason)


def _text(response: SMTPResponse) -> str:
    return f"{response.code} {_clean(response.message)}"


def _clean(value: object) -> str:
    """One readable line from a server reply or exception (multi-line replies joined)."""
    return " ".join(str(value).split())[:500]


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _find(exc: BaseException, kind: type[_E]) -> _E | None:
    """The first exception of `kind` in the chain (aiosmtplib wraps an SSL failure while
    connecting in SMTPConnectError)."""
    for item in _chain(exc):
        if isinstance(item, kind):
            return item
    return None
