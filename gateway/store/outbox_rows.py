"""An `Outbound` as an outbox row, and back: the one place that knows how a typed
message is kept in the database (`OutboxItem.payload` is its JSON part).

Example:
    >>> row = outbox_row(Outbound(channel="telegram", recipient="555", text="Hola",
    ...                           kind="ack", locale="es"), now, ticket_number=1042)
    >>> row["payload"]
    {'reply_to': [], 'ticket': 1042, 'locale': 'es'}
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from gateway.core.messages import Attachment, ForAgents, Mention, Outbound, Survey
from gateway.core.views import Card

# What the agents' console should draw with a row, decided when it is queued; the card
# itself is built when the row is sent, from the ticket as it is then.
OPEN_CARD, REDRAW_CARD = "open", "redraw"
# Rows the pipeline hands straight to the dispatcher are written already leased for this
# long: sent from memory within HAND_OVER_SEND of it, or else (a backlog, a crash) claimed
# from the database once the lease runs out.
HAND_OVER_LEASE = timedelta(seconds=15)
HAND_OVER_SEND = timedelta(seconds=10)


def leased_for_hand_over(row: dict[str, Any], now: datetime) -> dict[str, Any]:
    """An outbox row (see `outbox_row`) written as claimed, for `Outbox.hand_over`."""
    row.update(status="sending", lease_until=now + HAND_OVER_LEASE, attempts=1)
    return row


def outbox_row(out: Outbound, now: datetime, *, ticket_id: int | None = None,
               ticket_number: int | None = None, contact_id: int | None = None,
               message_id: int | None = None, due: datetime | None = None,
               card: str = "", attachments: list[int] | None = None) -> dict[str, Any]:
    """The row that delivers `out`, for `bulk.insert_ids(OutboxItem, rows)`: it may leave
    at `due` (default: now). `card` is OPEN_CARD or REDRAW_CARD for console rows that
    draw the ticket's card; `attachments` are stored attachment ids sent with it."""
    payload: dict[str, Any] = {"reply_to": list(out.reply_to), "ticket": ticket_number}
    if out.locale:
        payload["locale"] = out.locale
    if out.mailbox:
        payload["mailbox"] = out.mailbox
    if out.ticket_subject:
        payload["ticket_subject"] = out.ticket_subject
    if out.survey is not None:
        payload["survey"] = {"ticket": out.survey.ticket_number,
                             "links": [list(pair) for pair in out.survey.links]}
    if (agents := out.agents) is not None or card:
        agents = agents or ForAgents()
        payload["agents"] = {
            "heading": agents.heading, "quote": agents.quote, "broadcast": agents.broadcast,
            "card": card, "mention": None if agents.mention is None else
            {"address": agents.mention.address, "name": agents.mention.name}}
    if attachments:
        payload["attachments"] = attachments
    return {"ticket_id": ticket_id, "message_id": message_id, "contact_id": contact_id,
            "channel": out.channel, "audience": out.audience, "recipient": out.recipient,
            "kind": out.kind, "subject": out.subject, "text": out.text,
            "automatic": out.automatic, "payload": payload,
            "next_attempt_at": due or now, "created_at": now}


def card_wanted(kind: str, payload: dict[str, Any]) -> str:
    """OPEN_CARD, REDRAW_CARD or "" for a console row (rows queued by older versions name
    it by their kind)."""
    agents = payload.get("agents")
    if agents is not None:
        return str(agents.get("card") or "")
    return {"new_ticket": OPEN_CARD, "card_update": REDRAW_CARD}.get(kind, "")


def attachment_ids(payload: dict[str, Any]) -> list[int]:
    return [int(i) for i in payload.get("attachments") or ()]


def outbound_of(row: dict[str, Any], *, outbox_id: int,
                attachments: tuple[Attachment, ...] = (), thread: str | None = None,
                card: Card | None = None) -> Outbound:
    """The typed message a row delivers; for the console, with where the ticket's thread
    is now and its card as it is now (both looked up when the row is sent)."""
    payload = row.get("payload") or {}
    survey = payload.get("survey")
    agents = None
    if row["audience"] == "agents":
        given = payload.get("agents") or {}
        mention = given.get("mention")
        agents = ForAgents(thread=thread, card=card, heading=given.get("heading", ""),
                           quote=bool(given.get("quote")), broadcast=bool(given.get("broadcast")),
                           mention=Mention(mention.get("address"), mention.get("name", ""))
                           if mention else None)
    return Outbound(
        channel=row["channel"], recipient=row["recipient"], text=row["text"],
        subject=row["subject"], audience=row["audience"], ticket_number=payload.get("ticket"),
        kind=row["kind"], automatic=row["automatic"],
        reply_to=tuple(payload.get("reply_to") or ()), attachments=attachments,
        outbox_id=outbox_id, locale=payload.get("locale", ""),
        mailbox=payload.get("mailbox", ""), ticket_subject=payload.get("ticket_subject", ""),
        survey=Survey(survey["ticket"], tuple(tuple(p) for p in survey.get("links") or ()))
        if survey else None, agents=agents)
