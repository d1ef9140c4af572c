"""The agents' console's words and views: its answers to commands, a ticket's card, the
undo prompt, the text-editing form — every word from a text admins can edit (keys
`console_*`, `card`, `card_actions`, `reply_held`, `undo_actions`, `template_form`), in
the console's language (`[agents] locale`).

Example:
    >>> await say(services, "console_done", event="resolved", number=1042)  # doctest: +SKIP
    '#1042 resuelto.'
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from gateway.core import views
from gateway.core.views import Button, Card, Choice, Form, FormField, Prompt
from gateway.desk.notices import render
from gateway.services import Services
from gateway.settings import PRIORITIES
from gateway.store.models import Contact, Ticket
from gateway.texts.filters import PRIORITY_LABELS
from gateway.texts.variables import with_neutral


async def _text(services: Services, key: str, ticket: Ticket | None, now: datetime,
                customer_name: str = "", **variables: Any) -> str:
    console = services.settings.agents.console or "agents"
    _, body = await render(services, ticket, key, console, now, customer_name, subject=False,
                           locale=services.console_locale, **with_neutral(key, variables))
    return body


async def say(services: Services, key: str, **variables: Any) -> str:
    """A console text about no ticket in particular, e.g. `console_done`."""
    return await _text(services, key, None, services.clock.now(), **variables)


async def _lines(services: Services, key: str, count: int, ticket: Ticket | None = None,
                 now: datetime | None = None, **variables: Any) -> list[str]:
    """A text whose lines are separate pieces (button labels…), padded to `count`."""
    text = await _text(services, key, ticket, now or services.clock.now(), **variables)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines + [""] * count)[:count]


async def card(services: Services, number: int) -> Card:
    """The ticket's card as it is now: its words from the `card` and `card_actions` texts."""
    ticket = await Ticket.get(number=number)
    contact = await Contact.get(id=ticket.contact_id)  # type: ignore[attr-defined]
    history = await Ticket.filter(contact_id=contact.id).exclude(id=ticket.id).order_by(
        "-id").limit(5).values("number", "channel", "status")
    first = await ticket.messages.filter(direction="in").order_by("id").first()
    now = services.clock.now()
    text = await _text(services, "card", ticket, now, contact.name, history=history)
    head, _, footer = text.partition("\n\n")
    title, *rows = head.splitlines() or [f"#{number}"]
    fields = tuple((label.strip(), value.strip()) for label, _, value in
                   (row.partition(":") for row in rows if row.strip()))
    claim, resolve, priority = await _lines(services, "card_actions", 3, ticket, now)
    labels = PRIORITY_LABELS.get(services.console_locale, PRIORITY_LABELS["en"])
    value = str(number)
    return Card(
        number=number, title=title.strip(), footer=footer.strip(), fields=fields,
        summary=f"{title.strip()} — {fields[0][1]}" if fields else title.strip(),
        excerpt=first.text if first else "",
        buttons=(Button(views.CLAIM, claim, value),
                 Button(views.RESOLVE, resolve, value, primary=True)),
        choice=Choice(views.PRIORITY, priority, tuple(
            (f"{number}:{code}", labels[code]) for code in PRIORITIES)))


async def undo_prompt(services: Services, outbox_id: int, *, name: str = "") -> Prompt:
    """The private "sending in 10 s" prompt, with Undo and Keep-as-a-note buttons."""
    seconds = services.settings.agents.undo_seconds
    text = await say(services, "reply_held", seconds=seconds, name=name)
    notice, _, detail = text.partition("\n")
    undo, note = await _lines(services, "undo_actions", 2)
    value = str(outbox_id)
    return Prompt(text=notice.strip(), detail=detail.strip(),
                  buttons=(Button(views.UNDO, undo, value),
                           Button(views.MAKE_NOTE, note, value)))


async def template_form(services: Services, key: str, locale: str, channel: str,
                        subject: str, body: str) -> Form:
    """The form to edit an automatic text from the console."""
    subject_label, body_label, save = await _lines(services, "template_form", 3,
                                                   text_key=key, language=locale)
    return Form(form="template_edit", title=f"{key} · {locale}", ref=f"{key}|{locale}|{channel}",
                submit=save, fields=(
                    FormField("subject", subject_label, subject[:3000], optional=True),
                    FormField("body", body_label, body[:3000], multiline=True)))
