"""Slack text and Block Kit for the console: escaping, the ticket card, agent text → plain.

Customer text shown in Slack is escaped (`&`, `<`, `>`), so `<!channel>`, `<@U…>` or a
crafted `<https://evil|bank>` link in a customer message can neither ping nor mislead
agents. Agents' Slack markup is turned back into plain text for the customer.

Example:
    >>> escape("<!channel> pay at <https://evil.example|your bank>")
    '&lt;!channel&gt; pay at &lt;https://evil.example|your bank&gt;'
    >>> plain("Mira &lt;esto&gt; en <https://ex.com/p|la página> <@U1>")
    'Mira <esto> en la página (https://ex.com/p) @U1'
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from gateway.core.messages import SURVEY_SCORES, score_label

_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_MENTION = re.compile(r"<([@#!])([^|>]+)(?:\|([^>]+))?>")
CHANNEL_NAMES = {"email": "Email", "telegram": "Telegram", "slack": "Slack"}
STATUS = {"open": "🟢 abierto", "pending": "🟡 esperando al cliente",
          "resolved": "✅ resuelto", "closed": "⚫ cerrado"}
PRIORITY = {"low": "baja", "normal": "normal", "high": "alta", "urgent": "urgente"}


def escape(text: str) -> str:
    """Text safe to show in Slack: no mentions, no links, no formatting tricks."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain(text: str) -> str:
    """An agent's Slack message as plain text for the customer."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1),
                     text)
    text = _MENTION.sub(lambda m: m.group(3) or (m.group(1) if m.group(1) != "!" else "")
                        + m.group(2), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _when(moment: datetime | None, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d/%m %H:%M") if moment else "—"


def card(info: dict[str, Any], tz: ZoneInfo) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of a ticket's card, from `gateway.tickets.card`."""
    ticket = info["ticket"]
    channel = CHANNEL_NAMES.get(ticket.channel, ticket.channel)
    customer = escape(info["customer"] or "cliente")
    title = f"#{ticket.number} · {channel} · {customer}"
    status = STATUS.get(ticket.status, ticket.status)
    if ticket.assignee:
        status += f" · tomado por {escape(ticket.assignee)}"
    fields = [f"*Estado:* {status}",
              f"*Prioridad:* {PRIORITY.get(ticket.priority, ticket.priority)}",
              f"*Responder antes de:* {_when(ticket.first_response_due, tz)}",
              f"*Asunto:* {escape(ticket.subject or '—')}"]
    first = escape(info["first_text"] or "")
    if len(first) > 2500:
        first = first[:2500] + "…"
    history = " · ".join(f"#{h['number']} {CHANNEL_NAMES.get(h['channel'], h['channel'])} "
                         f"({STATUS.get(h['status'], h['status'])})"
                         for h in info["history"]) or "primer ticket de este cliente"
    number = str(ticket.number)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
        {"type": "section", "text": {"type": "mrkdwn", "text": f">{first or '(sin texto)'}"}},
        {"type": "context", "elements": [{"type": "mrkdwn",
                                          "text": f"Historial: {history}"}]},
        {"type": "actions", "block_id": f"ticket-{number}", "elements": [
            {"type": "button", "action_id": "claim", "value": number,
             "text": {"type": "plain_text", "text": "Tomar"}},
            {"type": "button", "action_id": "resolve", "value": number, "style": "primary",
             "text": {"type": "plain_text", "text": "Resolver"}},
            {"type": "static_select", "action_id": "priority",
             "placeholder": {"type": "plain_text", "text": "Prioridad"},
             "options": [{"text": {"type": "plain_text", "text": label},
                          "value": f"{number}:{code}"} for code, label in PRIORITY.items()]},
        ]},
    ]
    return f"{title} — {status}", blocks


def undo_prompt(outbox_id: int, seconds: int) -> list[dict[str, Any]]:
    """The ephemeral "sending to the customer" prompt with Undo / Make it a note."""
    value = str(outbox_id)
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text":
            f"Se enviará al cliente en {seconds} s. Puedes editar tu mensaje para cambiarlo "
            "o borrarlo para cancelarlo."}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": "undo", "value": value,
             "text": {"type": "plain_text", "text": "Deshacer"}},
            {"type": "button", "action_id": "make_note", "value": value,
             "text": {"type": "plain_text", "text": "Dejar como nota"}}]},
    ]


def survey(text: str, number: int | None) -> list[dict[str, Any]]:
    """The satisfaction survey in a customer's DM: its text, then a button per score.

    Example: `survey("¿Cómo calificarías…?", 1001)[1]["elements"][4]["value"]` → "1001:5"
    """
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        {"type": "actions", "block_id": f"survey_{number}", "elements": [
            {"type": "button", "action_id": f"survey_score_{n}", "value": f"{number}:{n}",
             "text": {"type": "plain_text", "text": score_label(n)}}
            for n in SURVEY_SCORES]},
    ]
