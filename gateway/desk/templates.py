"""Admins editing an automatic text from the console: the form with the text in force,
and saving a new version of it (checked in the sandbox first).

Example:
    >>> form = await open_template(services, "ack", "es", "")          # doctest: +SKIP
    >>> await edit_template(services, form.ref, "", "Hola {{ customer.first_name }}",
    ...                     author="Carla (Slack)")                     # doctest: +SKIP
    ''
"""

from __future__ import annotations

from gateway.core.views import Form
from gateway.desk.console import template_form
from gateway.services import Services
from gateway.texts.engine import TemplateError
from gateway.texts.versions import current_text, save_version

LOCALES = ("es", "en")


async def open_template(services: Services, key: str, locale: str, channel: str) -> Form | None:
    """The form for (key, locale, channel), None when there is no such text."""
    engine = services.templates
    known = engine.keys()
    if key not in known or locale not in LOCALES:
        return None
    subject, body = await current_text(engine, key, locale, channel)
    return await template_form(services, key, locale, channel, subject, body)


async def edit_template(services: Services, ref: str, subject: str, body: str, *,
                        author: str) -> str:
    """Save the form `ref` ("key|locale|channel") as a new version: "" when saved, else
    why not (nothing is stored)."""
    key, _, rest = ref.partition("|")
    locale, _, channel = rest.partition("|")
    known = services.templates.keys()
    if key not in known or locale not in LOCALES:
        return f"unknown text {ref!r}"
    try:
        await save_version(services.templates, key, locale, channel, subject, body,
                           author=author, now=services.clock.now())
    except TemplateError as exc:
        return str(exc)[:150]
    await services.store.refresh()
    return ""
