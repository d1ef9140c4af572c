"""Survey links, for channels without buttons (email): with `[http] public_url` set, the
survey carries one signed link per score. The key that signs them is made once and kept in
the database, shared by every gateway process; the pages the links open are
`gateway.web.survey`.

Example:
    >>> links = await survey_links(services, 1042)           # doctest: +SKIP
    >>> links["5"]                                            # doctest: +SKIP
    'https://soporte.example.com/survey/1042/5?t=3f9c…'
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.core.messages import SURVEY_SCORES
from gateway.store.models import ChannelState
from gateway.store.state import load_state

_KEY = ("survey", "secret")


async def signing_key() -> bytes:
    """The signing key, made once and shared by every gateway process (the database)."""
    state = await load_state(*_KEY)
    if not state:
        try:
            async with in_transaction():
                await ChannelState.create(channel=_KEY[0], key=_KEY[1],
                                          value={"key": secrets.token_hex(32)},
                                          updated_at=datetime.now(UTC))
        except IntegrityError:
            pass  # another process made it first: use theirs
        state = await load_state(*_KEY)
    return bytes.fromhex(state["key"])


def token(secret: bytes, number: int, score: int) -> str:
    return hmac.new(secret, f"survey:{number}:{score}".encode(), hashlib.sha256).hexdigest()[:32]


async def survey_links(services: Any, number: int) -> dict[str, str]:
    """One link per score for ticket `number`; {} without `[http] public_url`."""
    base = services.settings.http.public_url.rstrip("/")
    if not base:
        return {}
    secret = await signing_key()
    return {score: f"{base}/survey/{number}/{score}?t={token(secret, number, int(score))}"
            for score in SURVEY_SCORES}
