"""The responder interface: small bots that read a message (or a ticket's event) in
context and return actions.

A responder never sends or stores anything itself: it calls `ctx.reply(...)`,
`ctx.notify_agents(...)`, `ctx.schedule(...)`, `ctx.cancel(...)`… and the pipeline turns
those actions into messages, outbox rows and scheduled rows in the same transaction.
Responders run in the order `[responders] order` gives; one can end the run with
`ctx.stop()`.

Example:
    >>> class Hello:
    ...     name = "hello"
    ...     def matches(self, ctx: "Context") -> bool:
    ...         return ctx.new_ticket and ctx.inbound.sender.is_customer
    ...     async def handle(self, ctx: "Context") -> None:
    ...         ctx.reply("ack")

Optional parts of a responder:
- `async prepare(contexts)`: when the gateway stores many messages at once, look up in
  one query what `handle` will need (see `prepare_all`);
- `async on_event(ctx: EventContext)`: time and changes that are not messages — a
  scheduled action coming due ("due:progress"), an agent resolving the ticket
  ("resolved")… (see `Event`); it sees every event and acts on the ones it knows;
- `commands` (names): the channel commands it answers (`Inbound.kind == "command"`);
- `async recognise(arrival) -> Inbound | None`: before a customer's message is threaded,
  read it differently (a bare "5" answering a survey is a score, not a new question).

Responders are found by name through the `centralita.responders` entry points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gateway.core.messages import Inbound

if TYPE_CHECKING:
    from gateway.services import Services
    from gateway.store.models import Contact, Message, Ticket


@dataclass(frozen=True)
class Reply:
    """Send the customer the text `template` on the ticket's own channel (no ticket: to
    the sender). `variables` go to the template."""

    template: str
    automatic: bool = True
    variables: Mapping[str, Any] = field(default_factory=dict)
    hold_seconds: float = 0  # queued this long before it may leave (an agent's undo window)
    survey: bool = False  # offer the satisfaction survey with it (buttons or links)


@dataclass(frozen=True)
class NotifyAgents:
    """Tell the agents' console something about the ticket (rendered from a template).

    `card`: post the ticket's card if it has none yet (the notice then is the card);
    `broadcast`: show it in the room too, not only in the thread; `mention`: notify the assignee.
    """

    template: str
    variables: Mapping[str, Any] = field(default_factory=dict)
    card: bool = False
    broadcast: bool = False
    mention: bool = False


@dataclass(frozen=True)
class CopyToConsole:
    """Copy into the ticket's console thread the customer's message (`inbound`) or every
    automatic answer this context sends (`answers`): the thread is the conversation."""

    inbound: bool = False
    answers: bool = False


@dataclass(frozen=True)
class Schedule:
    """Due work for the ticket: `kind` at `due` (see `gateway.desk.followups`)."""

    kind: str
    due: datetime
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancel:
    """What is still to come of these kinds for the ticket is cancelled."""

    kinds: tuple[str, ...]


@dataclass(frozen=True)
class SetStatus:
    """Change the ticket's status (audited with `reason`; the card follows)."""

    status: str
    reason: str = ""


Action = Reply | NotifyAgents | CopyToConsole | Schedule | Cancel | SetStatus


@dataclass(frozen=True)
class Event:
    """Something that happened to a ticket and is not a message.

    `name` is "due:<kind>" when a scheduled action came due (`payload` is its payload,
    `due_at` when it was due), or what changed: "resolved", "reopened", "pending",
    "remind" (payload "at"), said by `by` (an agent's name, "scheduler"…).
    """

    name: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    by: str = ""
    due_at: datetime | None = None


@dataclass
class TicketContext:
    """A ticket in context, with the actions bound to it (`ticket` is None only for a
    channel command answered without a ticket, such as /estado)."""

    ticket: Ticket | None
    contact: Contact
    now: datetime
    services: Services
    actions: list[Action] = field(default_factory=list)
    stopped: bool = False
    # What a responder's `prepare` looked up for this message ahead of `handle`.
    facts: dict[str, Any] = field(default_factory=dict)

    def reply(self, template: str, *, automatic: bool = True, hold_seconds: float = 0,
              survey: bool = False, **variables: Any) -> None:
        """Answer the customer with the template `template` (held `hold_seconds` first;
        `survey`: with the satisfaction survey's buttons or links)."""
        self.actions.append(Reply(template=template, automatic=automatic,
                                  variables=variables, hold_seconds=hold_seconds,
                                  survey=survey))

    def notify_agents(self, template: str, *, card: bool = False, broadcast: bool = False,
                      mention: bool = False, **variables: Any) -> None:
        """Tell the agents' console, e.g. `notify_agents("new_ticket", card=True)`."""
        self.actions.append(NotifyAgents(template=template, variables=variables, card=card,
                                         broadcast=broadcast, mention=mention))

    def copy_to_console(self, *, inbound: bool = False, answers: bool = False) -> None:
        """Copy the customer's message and/or the automatic answers into the ticket's
        console thread."""
        self.actions.append(CopyToConsole(inbound=inbound, answers=answers))

    def schedule(self, kind: str, due: datetime, **payload: Any) -> None:
        """Plan `kind` for this ticket at `due`, e.g. `schedule("survey", now + 1h)`."""
        self.actions.append(Schedule(kind=kind, due=due, payload=payload))

    def cancel(self, *kinds: str) -> None:
        """Cancel what is still to come of `kinds` for this ticket."""
        self.actions.append(Cancel(kinds=kinds))

    def set_status(self, status: str, reason: str = "") -> None:
        """Change the ticket's status, e.g. `set_status("closed", "after 7 days")`."""
        self.actions.append(SetStatus(status=status, reason=reason))

    def stop(self) -> None:
        """No responder after this one runs."""
        self.stopped = True


@dataclass(kw_only=True)
class Context(TicketContext):
    """One message in context. `previous_status` is what the ticket was before this
    message put it back on us ("resolved": it reopened; "pending": the customer answered)."""

    inbound: Inbound
    message: Message | None = None
    new_ticket: bool = False
    reopened: bool = False
    new_contact: bool = False
    previous_status: str | None = None


@dataclass(kw_only=True)
class EventContext(TicketContext):
    """A ticket's event (time, or a change that is not a message) in context."""

    event: Event


@dataclass
class Arrival:
    """A customer's message before it is threaded: the ticket it would join (unchanged
    yet; None for a new one) and its sender's contact."""

    inbound: Inbound
    contact: Contact
    ticket: Ticket | None
    services: Services
    now: datetime


@runtime_checkable
class Responder(Protocol):
    """A bot: `matches` decides cheaply, `handle` adds actions to the context."""

    name: str

    def matches(self, ctx: Context) -> bool: ...

    async def handle(self, ctx: Context) -> None: ...


async def prepare_all(responders: list[Responder], contexts: list[Context]) -> None:
    """Let responders look up, in one query for many messages, what `handle` will need.

    A responder may define `async prepare(contexts)` and leave its findings in
    `ctx.facts`; `handle` must still work without them (a message handled alone).
    """
    for responder in responders:
        prepare = getattr(responder, "prepare", None)
        if prepare is not None and contexts:
            await prepare(contexts)


def responder_factories() -> dict[str, Callable[..., Responder]]:
    """Installed responders by name, from the `centralita.responders` entry points."""
    return {ep.name: ep.load() for ep in entry_points(group="centralita.responders")}
