"""Message-IDs as the gateway stores them: without angle brackets, whitespace removed.

Every Message-ID we receive or send is stored in this form (`Message.external_id`), so an
In-Reply-To or References header finds the message it answers.

Example:
    >>> normalize_id(" <CAF=abc@mail.gmail.com> ")
    'CAF=abc@mail.gmail.com'
    >>> split_ids("<a@x> <b@y>\\n <c@z>")
    ['a@x', 'b@y', 'c@z']
    >>> make_message_id("example.com").endswith("@example.com")
    True
"""

from __future__ import annotations

import re
import secrets
import time

_ID = re.compile(r"<([^<>\s]+)>")


def normalize_id(value: str) -> str:
    """One Message-ID header value in stored form ('' when there is none)."""
    value = "".join(str(value).split())
    if match := _ID.search(value):
        return match.group(1)
    return value.strip("<>")


def split_ids(value: str) -> list[str]:
    """All ids in a References / In-Reply-To header, in order (bare ids accepted)."""
    text = str(value or "")
    found = _ID.findall(text)
    if found:
        return found
    return [part.strip("<>") for part in text.split() if "@" in part]


def make_message_id(domain: str) -> str:
    """A new, unique Message-ID for mail we send (stored form, no brackets)."""
    return f"centralita.{int(time.time() * 1000):x}.{secrets.token_hex(8)}@{domain}"
