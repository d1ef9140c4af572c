"""What the core asks a console to show, in words already written (rendered from the
texts admins edit, in the console's language): a ticket's card, a private prompt with
buttons, a form. A console adapter only turns these into its platform's widgets (Slack:
Block Kit); it never writes a word of its own.

Example:
    >>> card = Card(number=1042, title="#1042 · Telegram · María", summary="#1042 — open",
    ...             fields=(("Estado", "🟢 abierto"),), excerpt="Hola, mi pedido no llegó",
    ...             footer="primer ticket de este cliente",
    ...             buttons=(Button("claim", "Tomar", "1042"),))
    >>> card.buttons[0].action
    'claim'
"""

from __future__ import annotations

from dataclasses import dataclass

# What a button or a menu does when pressed: the console hands it back as a command.
CLAIM, RESOLVE, PRIORITY, UNDO, MAKE_NOTE = "claim", "resolve", "priority", "undo", "make_note"


@dataclass(frozen=True)
class Button:
    """A button: `action` names what pressing it does, `value` what it acts on."""

    action: str
    label: str
    value: str
    primary: bool = False


@dataclass(frozen=True)
class Choice:
    """A menu of options (value, label), e.g. the ticket's priority."""

    action: str
    placeholder: str
    options: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Card:
    """A ticket's card on the console: it is drawn once and redrawn when the ticket changes.

    `fields` are (label, value) pairs; `excerpt` is the customer's first message (her own
    words, to be shown escaped); `footer` a line under it (her history); `summary` a
    one-line text for notifications and screen readers.
    """

    number: int
    title: str
    summary: str
    fields: tuple[tuple[str, str], ...] = ()
    excerpt: str = ""
    footer: str = ""
    buttons: tuple[Button, ...] = ()
    choice: Choice | None = None


@dataclass(frozen=True)
class Prompt:
    """A private message to one agent, with buttons (e.g. "sending in 10 s: Undo")."""

    text: str
    detail: str = ""
    buttons: tuple[Button, ...] = ()


@dataclass(frozen=True)
class FormField:
    """One field of a form: its name, label, current value."""

    name: str
    label: str
    value: str = ""
    multiline: bool = False
    optional: bool = False


@dataclass(frozen=True)
class Form:
    """A form to open for one agent (e.g. an automatic text to edit). `ref` comes back
    with the submission, so the core knows what was edited."""

    form: str
    title: str
    ref: str
    submit: str
    fields: tuple[FormField, ...] = ()
