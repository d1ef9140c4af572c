"""The responder interface: small bots that read a message in context and return actions.

A responder never sends anything itself: it calls `ctx.reply(...)` or
`ctx.notify_agents(...)`, and the pipeline turns those actions into outbox rows in the
same transaction as the message. Responders run in the order `[responders] order` gives;
one can end the run with `ctx.stop()`.

Example:
    >>> class Hello:
    ...     name = "hello"
    ...     def matches(self, ctx: "Context") -> bool:
    ...         return ctx.new_ticket and ctx.inbound.sender.is_customer
    ...     async def handle(self, ctx: "Context") -> None:
    ...         ctx.reply("ack")

When the gateway stores many messages at once it first calls a responder's optional
`async prepare(contexts)`, so that one query can serve them all (see `prepare_all`).

Responders are found by name through the `centralita.responders` entry points.
"""

from __future__ import annotations

from collections.abc import Callable
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
    """Send the customer a template (or a literal text) on the ticket's own channel."""

    template: str | None
    text: str | None = None
    automatic: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    hold_seconds: float = 0  # queued this long before it may leave (an agent's undo window)


@dataclass(frozen=True)
class NotifyAgents:
    """Tell the agents' console something about the ticket (rendered from a template)."""

    template: str
    extra: dict[str, Any] = field(default_factory=dict)


Action = Reply | NotifyAgents


@dataclass
class Context:
    """One message in context, with `reply` and `notify_agents` bound to its ticket."""

    inbound: Inbound
    ticket: Ticket
    contact: Contact
    message: Message
    new_ticket: bool
    reopened: bool
    now: datetime
    services: Services
    actions: list[Action] = field(default_factory=list)
    stopped: bool = False
    # What a responder's `prepare` looked up for this message ahead of `handle`.
    facts: dict[str, Any] = field(default_factory=dict)
    # The sender was first heard of with this very message (nothing to look up about her).
    new_contact: bool = False

    def reply(self, template: str, *, automatic: bool = True, hold_seconds: float = 0,
              **extra: Any) -> None:
        """Answer the customer with the template `template` (held `hold_seconds` first)."""
        self.actions.append(Reply(template=template, automatic=automatic, extra=extra,
                                  hold_seconds=hold_seconds))

    def reply_text(self, text: str, *, automatic: bool = False) -> None:
        """Answer the customer with literal text (an agent's words)."""
        self.actions.append(Reply(template=None, text=text, automatic=automatic))

    def notify_agents(self, template: str, **extra: Any) -> None:
        """Tell the agents' console, e.g. `notify_agents("new_ticket")`."""
        self.actions.append(NotifyAgents(template=template, extra=extra))

    def stop(self) -> None:
        """No responder after this one runs."""
        self.stopped = True


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
