"""Saved replies agents send with `/ticket reply N name` (`[replies]` in settings.toml):
written for the ticket in its language, in the template sandbox, with the texts' variables.

Example:
    >>> await canned_reply(services, 1042, "envio", "Pedro")        # doctest: +SKIP
    'Hola María, tu pedido ya salió: llega en 2 a 3 días hábiles.'
"""

from __future__ import annotations

from gateway.desk.tickets import TicketActionError
from gateway.services import Services
from gateway.store.models import Contact, Ticket
from gateway.texts.engine import TemplateSource


def names(services: Services) -> list[str]:
    """The saved replies' names, sorted."""
    return sorted(services.settings.replies)


async def canned_reply(services: Services, number: int, name: str, agent: str) -> str:
    """The saved reply `name` written for ticket `number`, signed by nobody yet (it goes
    out as `agent`'s answer, through the `agent_reply` text)."""
    replies = services.settings.replies
    if name not in replies:
        raise TicketActionError("unknown_reply", value=name)
    ticket = await Ticket.get_or_none(number=number)
    if ticket is None:
        raise TicketActionError("no_ticket", number=number)
    texts = replies[name]
    locale = ticket.locale if ticket.locale in texts else next(iter(texts))
    contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
    context = services.template_context(ticket, customer_name=contact.name,
                                        now=services.clock.now(), agent={"name": agent})
    source = TemplateSource(f"reply:{name}", locale, "", "", texts[locale])
    return services.templates.render_source(source, context)[1]
