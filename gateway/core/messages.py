"""Normalised messages: what every adapter produces (`Inbound`) and consumes (`Outbound`).

Adapters turn a platform's payload into an `Inbound` and hand it to `Gateway.receive`;
the outbox hands each adapter an `Outbound` to deliver. Nothing platform-specific leaks
past these types except what a thread needs (`ThreadHint`) and the raw payload kept for
audit.

Example:
    >>> msg = Inbound(
    ...     channel="telegram", external_id="update-1",
    ...     sender=Party(kind="customer", address="12345", name="María"),
    ...     text="Hola, mi pedido no llegó",
    ...     thread=ThreadHint(conversation="12345"),
    ... )
    >>> msg.sender.is_customer
    True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from gateway.core.views import Card

PartyKind = Literal["customer", "agent", "bot"]

# The satisfaction survey's scale, worst to best. A customer answers with one of these (a
# bare number on any channel; a button or a link where the channel has them), as the text
# of an Inbound of kind "score".
SURVEY_SCORES: tuple[str, ...] = ("1", "2", "3", "4", "5")


def score_label(score: str | int) -> str:
    """How a score reads on a button or a link: the best one gets a star.

    Example: `score_label(5)` → "5 ⭐"; `score_label("3")` → "3"
    """
    return f"{score} ⭐" if str(score) == SURVEY_SCORES[-1] else str(score)


@dataclass(frozen=True)
class Party:
    """Who wrote a message: a customer, an agent or a bot, at an address on a channel.

    `address` is the channel's own identity: an email address, a Telegram chat id,
    a Slack user id.
    """

    kind: PartyKind
    address: str
    name: str = ""

    @property
    def is_customer(self) -> bool:
        return self.kind == "customer"


@dataclass(frozen=True)
class Attachment:
    """A file that came with a message or goes out with one.

    `data` is None when the adapter recorded a file it did not download (too big).
    """

    filename: str
    content_type: str = "application/octet-stream"
    data: bytes | None = None
    size: int | None = None
    inline: bool = False

    @property
    def byte_size(self) -> int:
        return self.size if self.size is not None else len(self.data or b"")


@dataclass(frozen=True)
class ThreadHint:
    """What an adapter knows about which conversation a message belongs to.

    - `reply_to`: platform message ids this message answers (email In-Reply-To and
      References, a Telegram reply, a Slack thread_ts), newest last.
    - `conversation`: a stable conversation key on chat channels (Telegram chat id,
      Slack DM channel). Email has none: a new email without reply headers is a new ticket.
    - `ticket_number`: a number the sender named (subject tag `[#1042]`); honoured only
      when the sender takes part in that ticket, or is an agent.
    - `new_ticket`: the sender asked for a new ticket explicitly (Telegram `/nuevo`).
    - `verified`: `ticket_number` comes from proof the sender got our mail about that
      ticket (an email reply address with a valid token): honoured without the
      participant check.
    """

    reply_to: tuple[str, ...] = ()
    conversation: str | None = None
    ticket_number: int | None = None
    new_ticket: bool = False
    verified: bool = False


@dataclass(frozen=True)
class Inbound:
    """One message arriving from a channel, customer or agent.

    `external_id` is the platform's id (Telegram update id, Slack event id, email
    Message-ID): the pipeline's dedup key together with `channel`, so a re-delivery is a
    no-op. `automated` marks mail or messages sent by machines (auto-replies, bounces,
    lists): they are stored but never answered automatically. `kind` is "message", or
    "bounce" for a delivery failure report (agents are told) or "auto_reply".
    """

    channel: str
    sender: Party
    text: str = ""
    external_id: str | None = None
    subject: str = ""
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    thread: ThreadHint = field(default_factory=ThreadHint)
    automated: bool = False
    internal: bool = False
    locale: str | None = None
    received_at: datetime | None = None
    mailbox: str = ""
    raw: bytes | None = None
    kind: str = "message"


Audience = Literal["customer", "agents"]


@dataclass(frozen=True)
class Survey:
    """The satisfaction survey offered with a message: a button per score where the channel
    has buttons, else a link per score (`links`: (score, URL), when the gateway has a
    public address), else the customer answers with a bare number."""

    ticket_number: int
    links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Mention:
    """Someone a console message should notify: her address there when known (she
    claimed the ticket there, or was assigned with a mention), and her name."""

    address: str | None
    name: str


@dataclass(frozen=True)
class ForAgents:
    """How a message for the agents' console is shown, as the core decided it.

    - `thread`: the ticket's conversation on the console ("C0AGENTS:1700000000.1"), once its
      card is posted; None before (a new ticket's card opens it).
    - `card`: the ticket's card, to post (no thread yet) or to redraw in place.
    - `heading`, `quote`: a line above the text (who wrote it), and the text shown as a
      quote (a customer's own words).
    - `mention`: whom to notify (the ticket's assignee on SLA warnings).
    - `broadcast`: also show it in the room, not only in the thread.
    """

    thread: str | None = None
    card: Card | None = None
    heading: str = ""
    quote: bool = False
    mention: Mention | None = None
    broadcast: bool = False


@dataclass(frozen=True)
class Outbound:
    """One message for an adapter to deliver: typed, so no adapter guesses at keys.

    `audience` is "customer" (to `recipient` on `channel`) or "agents" (the agents'
    console; `recipient` is the agents' room the core routed it to, and `agents` says how
    to show it). `reply_to` carries the platform ids of the conversation so the adapter
    can thread the message (email In-Reply-To/References, Telegram reply). `automatic`
    marks messages no human wrote (acknowledgements, progress, surveys): email adds
    `Auto-Submitted`. `kind` names the text it was written from ("ack", "agent_reply"…),
    for the record; adapters decide nothing on it.

    For customers: `locale` is the text's language, `mailbox` the support address the
    customer wrote to (email answers from it), `ticket_subject` the ticket's subject
    (email: "Re: … [#1042]"), `survey` the scores to offer.
    """

    channel: str
    recipient: str
    text: str
    subject: str = ""
    audience: Audience = "customer"
    ticket_number: int | None = None
    kind: str = "reply"
    automatic: bool = False
    reply_to: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    outbox_id: int | None = None
    locale: str = ""
    mailbox: str = ""
    ticket_subject: str = ""
    survey: Survey | None = None
    agents: ForAgents | None = None

    def queued_as(self, outbox_id: int) -> Outbound:
        """This message as stored in the outbox row `outbox_id`.

        A field-for-field copy: `dataclasses.replace` would run `__init__` again for
        sixteen fields, on the path every acknowledgement takes.

        Example:
            >>> Outbound("telegram", "42", "Hola").queued_as(7).outbox_id
            7
        """
        copy = object.__new__(Outbound)
        copy.__dict__.update(self.__dict__, outbox_id=outbox_id)
        return copy


@dataclass(frozen=True)
class Accepted:
    """What `Gateway.receive` did with one message."""

    ticket_number: int | None
    ticket_id: int | None = None
    message_id: int | None = None
    duplicate: bool = False
    new_ticket: bool = False
    reopened: bool = False
    outbound: tuple[Outbound, ...] = ()
    # Outbox rows written for this message that may leave now, (id, row), handed to the
    # dispatcher after the commit so it need not read them back (the outbox's business).
    queued: tuple[tuple[int, dict[str, Any]], ...] = field(default=(), repr=False,
                                                           compare=False)


@dataclass(frozen=True)
class Receipt:
    """What a platform answered for a delivered message: its id, kept for threading."""

    platform_id: str | None = None


class DeliveryError(Exception):
    """Base of delivery failures raised by `Adapter.send`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TransientError(DeliveryError):
    """Try again later: network trouble, 5xx, 4xx SMTP, rate limits.

    `retry_after` (seconds) is the platform's own word on when to retry (Telegram's
    `retry_after`, Slack's `Retry-After`); the outbox never retries sooner.
    """

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    """Never going to work: blocked bot, unknown address, 5xx SMTP. Agents are told."""


class InboundRejected(ValueError):
    """`receive` refused a message: it cannot be threaded (an unknown channel, an agent's
    message that names no ticket, a survey answer for someone else's ticket). Anything
    odd about it is in the audit log."""
