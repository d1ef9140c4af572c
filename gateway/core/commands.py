"""Agents' commands: typed, and handed to one door, `Gateway.command(command)`.

A console adapter turns a button press, a slash command, a reply in a ticket's thread or
an edit inside the undo window into one of these, with the `Actor` who did it; the core
checks who may do it, does it, records it, and answers with a `CommandResult` for the
console to show. The words of the answer are the core's (texts admins edit), never the
adapter's.

Example:
    >>> pedro = Actor(console="slack", address="U0PEDRO", name="Pedro Soto",
    ...               rooms=frozenset({"C0AGENTS"}))
    >>> Resolve(pedro, 1042).number
    1042
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.core.messages import Attachment
from gateway.core.views import Card, Form, Prompt


@dataclass(frozen=True)
class Actor:
    """Who gives a command: her address and name on the console, and the console's rooms
    she is a member of (the facts the core decides her role from: see `gateway.desk.access`).
    """

    console: str
    address: str
    name: str = ""
    rooms: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        """How the audit and the texts name her."""
        return self.name or self.address


@dataclass(frozen=True)
class Claim:
    """She takes the ticket."""

    actor: Actor
    number: int


@dataclass(frozen=True)
class Resolve:
    actor: Actor
    number: int


@dataclass(frozen=True)
class Reopen:
    actor: Actor
    number: int


@dataclass(frozen=True)
class Pending:
    """The ticket waits on the customer (a reminder, then resolution, if she is silent)."""

    actor: Actor
    number: int


@dataclass(frozen=True)
class Assign:
    """Give the ticket to someone: her name, and her console address when known."""

    actor: Actor
    number: int
    name: str
    address: str | None = None


@dataclass(frozen=True)
class SetPriority:
    """`priority` as the agent wrote it: a code ("high") or a word ("alta", "urgent")."""

    actor: Actor
    number: int
    priority: str


@dataclass(frozen=True)
class Remind:
    """Promise the customer an update at `at` ("15:00": today, or tomorrow if past)."""

    actor: Actor
    number: int
    at: str


@dataclass(frozen=True)
class Note:
    """An internal note on the ticket, from a command (`ref`: the platform's id of it)."""

    actor: Actor
    number: int
    text: str
    ref: str


@dataclass(frozen=True)
class Reply:
    """What an agent wrote in a ticket's console thread (`thread`, as `Ticket.console_thread`
    names it): an answer for the customer, or an internal note when it starts with the
    note prefix. `ref` is the platform's id of her message (edits and deletions name it)."""

    actor: Actor
    thread: str
    text: str
    ref: str
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True)
class CannedReply:
    """`/ticket reply N name`: a saved answer ([replies] in settings.toml) as hers."""

    actor: Actor
    number: int
    name: str
    ref: str


@dataclass(frozen=True)
class Withdraw:
    """Take back a reply still in its undo window (by its outbox row), as a note or not."""

    actor: Actor
    outbox_id: int
    as_note: bool = False


@dataclass(frozen=True)
class Revise:
    """She edited her reply (`ref`) on the console: send the new words if it is not too late."""

    actor: Actor
    ref: str
    text: str


@dataclass(frozen=True)
class Retract:
    """She deleted her reply (`ref`) on the console: do not send it if it is not too late."""

    actor: Actor
    ref: str


@dataclass(frozen=True)
class ShowTicket:
    actor: Actor
    number: int


@dataclass(frozen=True)
class Find:
    actor: Actor
    text: str


@dataclass(frozen=True)
class OpenTemplate:
    """Open an automatic text for editing (admins): its key, language and channel."""

    actor: Actor
    key: str
    locale: str
    channel: str = ""


@dataclass(frozen=True)
class EditTemplate:
    """Save a new version of an automatic text (admins); `ref` is the form's `ref`."""

    actor: Actor
    ref: str
    subject: str
    body: str


@dataclass(frozen=True)
class Typed:
    """A command line as the agent typed it after the console's command (e.g. `/ticket`):
    "resolve 1042". `people` maps console addresses she mentioned to their names, so that
    "assign 1042 @U0LAURA" names Laura. `ref` is the platform's id of the command."""

    actor: Actor
    text: str
    ref: str
    command: str = "/ticket"
    people: Mapping[str, str] = field(default_factory=dict)


Command = (Claim | Resolve | Reopen | Pending | Assign | SetPriority | Remind | Note | Reply
           | CannedReply | Withdraw | Revise | Retract | ShowTicket | Find | OpenTemplate
           | EditTemplate | Typed)


@dataclass(frozen=True)
class CommandResult:
    """What the console shows after a command.

    - `ok`: it was done (False: refused, or it did not apply; `text` says why);
    - `text`: the answer for the agent who gave it ("" = say nothing);
    - `card`: the ticket's card as it is now (redraw it);
    - `prompt`: a private prompt with buttons (the undo window);
    - `form`: a form to open; `errors`: fields of a submitted form that were refused;
    - `noted`: an internal note was stored (confirm it quietly).
    """

    ok: bool
    text: str = ""
    card: Card | None = None
    prompt: Prompt | None = None
    form: Form | None = None
    errors: Mapping[str, str] = field(default_factory=dict)
    noted: bool = False
