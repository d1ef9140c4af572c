"""Admin-edited template versions: read the current text, save a new version (validated),
shared by the admin pages, the JSON API and the Slack modal.

Example:
    >>> version = await save_version(engine, "ack", "es", "", "", "Hola {{ customer.name }}",
    ...                              author="carla", now=now)          # doctest: +SKIP
"""

from __future__ import annotations

from datetime import datetime

from tortoise.functions import Max

from gateway.store.models import Template
from gateway.texts.engine import TemplateEngine


async def current_text(engine: TemplateEngine, key: str, locale: str,
                       channel: str) -> tuple[str, str]:
    """(subject, body) in force: the newest stored version, else the shipped text."""
    newest = await Template.filter(key=key, locale=locale, channel=channel).order_by(
        "-version").first()
    if newest is not None:
        return newest.subject, newest.body
    shipped = engine.default(key, locale, channel)
    return shipped.subject, shipped.body


async def save_version(engine: TemplateEngine, key: str, locale: str, channel: str,
                       subject: str, body: str, *, author: str, now: datetime) -> int:
    """Validate (in a worker thread, within the studio's budget) and store a new version;
    returns its number. Raises TemplateError (with the admin-facing reason) and stores
    nothing when the text does not validate."""
    await engine.check(subject, body, key, locale=locale, channel=channel)
    top = (await Template.filter(key=key, locale=locale, channel=channel).annotate(
        m=Max("version")).first().values("m") or {}).get("m") or 0
    await Template.create(key=key, locale=locale, channel=channel, version=top + 1,
                          subject=subject, body=body, created_by=author, created_at=now)
    return top + 1
