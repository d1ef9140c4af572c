"""Reply addresses that name their ticket: `soporte+t1042.k3j9x2qa@example.com`.

The token is an HMAC of the mailbox and the ticket number, so a reply to that address
proves the sender received our mail about ticket 1042 (it is honoured even from another
address of the customer), and nobody can guess the address of someone else's ticket.

Example:
    >>> tokens = ReplyTokens("s3cret")
    >>> address = tokens.address("soporte@example.com", 1042)
    >>> address.startswith("soporte+t1042.")
    True
    >>> tokens.ticket_number(address, "soporte@example.com")
    1042
    >>> tokens.ticket_number("soporte+t1043." + address.split(".", 1)[1], "soporte@example.com")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_TOKEN = re.compile(r"t(\d{1,9})\.([a-z2-7]{8})")


class ReplyTokens:
    """Signs and reads ticket reply addresses; with no secret it does nothing."""

    def __init__(self, secret: str) -> None:
        self._key = secret.encode()

    @property
    def enabled(self) -> bool:
        return bool(self._key)

    def _token(self, mailbox: str, number: int) -> str:
        digest = hmac.new(self._key, f"{mailbox.lower()}:{number}".encode(),
                          hashlib.sha256).digest()
        return base64.b32encode(digest[:5]).decode().lower()

    def address(self, mailbox: str, number: int) -> str:
        """The reply address for ticket `number` at `mailbox` (the mailbox itself when
        tokens are off)."""
        if not self.enabled:
            return mailbox
        local, domain = mailbox.split("@", 1)
        return f"{local}+t{number}.{self._token(mailbox, number)}@{domain}"

    def ticket_number(self, address: str, mailbox: str) -> int | None:
        """The ticket an address names, if its token is genuine for `mailbox`."""
        if not self.enabled or "@" not in address:
            return None
        local, domain = address.lower().rsplit("@", 1)
        base, _, detail = local.partition("+")
        if f"{base}@{domain}" != mailbox.lower() or not (match := _TOKEN.fullmatch(detail)):
            return None
        number = int(match.group(1))
        if hmac.compare_digest(match.group(2), self._token(mailbox, number)):
            return number
        return None
