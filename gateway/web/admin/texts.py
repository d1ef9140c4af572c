"""What the template editor and the JSON API share: which texts exist, their stored
versions, saving a new version and previewing a draft."""

from __future__ import annotations

from fastapi import HTTPException

from gateway.services import Services
from gateway.store.models import Contact, Ticket
from gateway.store.models import Template as StoredTemplate
from gateway.texts import versions as template_versions
from gateway.texts.engine import TemplateError, TemplateSource

LOCALES = ("es", "en")
CHANNELS = ("", "email", "telegram", "slack")  # "" is the text for every channel


def check_key(services: Services, key: str, locale: str, channel: str) -> None:
    """404 unless `key` is a known text and `locale`, `channel` are supported."""
    known = services.templates.keys()
    if key not in known or locale not in LOCALES or channel not in CHANNELS:
        raise HTTPException(404, "no such template")


async def stored(key: str, locale: str, channel: str) -> list[StoredTemplate]:
    """The admins' versions of a text, newest first."""
    return await StoredTemplate.filter(key=key, locale=locale, channel=channel
                                       ).order_by("-version")


async def save_version(services: Services, key: str, locale: str, channel: str,
                       subject: str, body: str, user: str) -> int:
    """Validate and store a new version; its number. Raises TemplateError."""
    return await template_versions.save_version(
        services.templates, key, locale, channel, subject, body, author=user,
        now=services.clock.now())


async def preview_text(services: Services, key: str, locale: str, channel: str,
                       subject: str, body: str, ticket_number: str = "") -> dict[str, str]:
    """A draft rendered with sample values (or those of ticket `ticket_number`):
    {"subject", "body"}, or {"error"} when it does not validate. The draft is checked and
    rendered in a worker thread, within the studio's budget: never on the event loop."""
    engine = services.templates
    source = TemplateSource(key=key, locale=locale, channel=channel, subject=subject,
                            body=body, version=-1)
    context = engine.sample_context(key, locale=locale, channel=channel)
    if ticket_number.strip().isdigit():
        ticket = await Ticket.get_or_none(number=int(ticket_number))
        if ticket is not None:
            contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
            context = {**context, **services.template_context(
                ticket, customer_name=contact.name, now=services.clock.now(),
                channel=channel or ticket.channel)}
    try:
        subject_out, body_out = await engine.preview(source, context, now=services.clock.now())
    except TemplateError as exc:
        return {"error": str(exc)}
    return {"subject": subject_out, "body": body_out}
