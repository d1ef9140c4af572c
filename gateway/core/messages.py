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


@dataclass(frozen=True)
class Outbound:
    """One message for an adapter to deliver.

    `audience` is "customer" (to `recipient` on `channel`) or "agents" (to the agents'
    console). `reply_to` carries the platform ids of the conversation so the adapter can
    thread the message (email In-Reply-To/References, Telegram reply, Slack thread_ts).
    `automatic` marks messages no human wrote (acknowledgements, progress, surveys): email
    adds `Auto-Submitted`.
    """

    channel: str
    recipient: str
    text: str
    subject: str = ""
    audience: Literal["customer", "agents"] = "customer"
    ticket_number: int | None = None
    kind: str = "reply"
    automatic: bool = False
    reply_to: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)
    outbox_id: int | None = None


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
