"""The variables each automatic text may use, documented for the admins, the neutral
values the gateway gives those a message does not use, and the sample values the studio
previews them with.

Example:
    >>> "score" in variables_of("survey")
    True
    >>> "ticket" in variables_of("console_done")      # console answers name no ticket
    False
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

FIELDS: dict[str, tuple[str, ...]] = {
    "customer": ("name", "first_name"),
    "ticket": ("number", "subject", "channel", "status", "priority", "assignee", "url"),
    "agent": ("name",),
}
COMMON = {
    "company": "Company name shown to customers.",
    "customer": "The customer: customer.name (full name), customer.first_name (may be empty).",
    "channel": "Channel of this conversation: email, telegram or slack.",
    "open_now": "True while we are inside opening hours.",
    "hours": "Readable opening hours, e.g. 'lunes a viernes, de 9:00 a 19:00 hrs'.",
    "next_opening": "When we open next (date and time), or none. Write {{ next_opening | when }}.",
    "status_command": "How to ask for the status on this channel ('/estado' on Telegram); "
    "empty when the channel has no commands.",
}
TICKET = {
    "ticket": "The ticket: ticket.number, ticket.subject, ticket.channel, ticket.status "
    "(use {{ ticket.status | status_label }}), ticket.priority, ticket.assignee (who has it, "
    "may be empty), ticket.url.",
    "due_at": "When the customer can expect a first answer. Write {{ due_at | when }}.",
    "sla_minutes": "Promised first-answer time in minutes. Write {{ sla_minutes | duration }}.",
}
_CONSOLE_EVENTS = ("resolved, reopened, pending, remind, assigned, priority, noted, "
                   "reply_sent, reply_held, reply_not_sent, withdrawn, kept_as_note, too_late, "
                   "editing")
_PROBLEMS = ("agents_only, admins_only, no_ticket, bad_priority, bad_time, not_open, "
             "unknown_reply, unknown_template")
EXTRA: dict[str, dict[str, str]] = {
    "agent_reply": {"agent": "The answering agent: agent.name.", "text": "The agent's message."},
    "new_ticket": {"text": "The customer's message."},
    "delivery_failed": {"text": "The message that could not be delivered.",
                        "reason": "Why it could not be delivered."},
    "survey": {"score": "The rating, 1 to 5, or none (not answered yet)."},
    "survey_thanks": {"score": "The customer's rating, 1 to 5."},
    "status": {"tickets": "The customer's open tickets: a list of number, status, subject "
               "(may be empty)."},
    "sla_warning": {"target": "What is due: 'first_response' or 'resolution'.",
                    "stage": "'warn' (a share of the time is used) or 'breach' (it is due).",
                    "share": "The share of the time used when agents are warned, in %, e.g. 80.",
                    "agent": "Who has the ticket: agent.name (may be empty)."},
    "digest": {"tickets": "Tickets that arrived while closed, oldest first: number, subject, "
               "status."},
    "card": {"history": "The customer's other recent tickets, newest first: number, "
             "channel, status (may be empty)."},
    "reply_held": {"seconds": "How many seconds the agent has to undo or edit her reply.",
                   "name": "The saved reply's name, or empty for a reply she wrote."},
    "mirror": {"author": "Who wrote it: 'customer', 'bot' (an automatic answer) or 'agent' "
               "(a saved reply).", "name": "The customer's or the agent's name.",
               "kind": "For an automatic answer, the text it was written from: ack, "
               "progress, survey…", "reply": "For a saved reply, its name."},
    "console_done": {"event": f"What was done: {_CONSOLE_EVENTS}.",
                     "number": "The ticket's number.", "name": "Who it was assigned to, or "
                     "the saved reply's name.", "priority": "The new priority (a code: write "
                     "{{ priority | priority_label }}).", "at": "When the promised update "
                     "leaves (write {{ at | short }}).", "seconds": "Seconds left to undo.",
                     "text_key": "The text being edited.", "language": "Its language."},
    "console_refused": {"problem": f"Why it was not done: {_PROBLEMS}.",
                        "number": "The ticket's number.", "value": "What the agent wrote "
                        "that was not understood.", "status": "The ticket's status.",
                        "choices": "What would have been understood (a list)."},
    "console_help": {"topic": "What is shown: 'commands' (how to use the command), 'replies' "
                     "(the saved replies), 'templates' (the texts), 'found' (a search).",
                     "command": "The console's command, e.g. /ticket.",
                     "choices": "The saved replies' or the texts' names (a list).",
                     "query": "What was searched for.", "found": "The tickets found: number, "
                     "channel, status, subject (a list)."},
    "template_form": {"text_key": "The text being edited.", "language": "Its language."},
    "button_thanks": {"score": "The score she pressed."},
}
# Texts sent without a ticket: greetings and status lists, and the console's answers.
NO_TICKET = frozenset({"start", "status", "digest", "console_done", "console_refused",
                       "console_help", "template_form", "button_thanks"})
# What a text gets for a variable of its key that the moment does not use.
NEUTRAL: dict[str, Any] = {
    "event": "", "problem": "", "topic": "", "number": 0, "name": "", "priority": "",
    "at": None, "seconds": 0, "text_key": "", "language": "", "value": "", "status": "",
    "choices": [], "query": "", "found": [], "command": "", "history": [], "author": "",
    "kind": "", "reply": "", "target": "", "stage": "", "share": 0, "score": None,
}

SAMPLE_TEXT = {
    "es": {"hours": "lunes a viernes, de 9:00 a 19:00 hrs", "status_command": "/estado",
           "subject": "No me llegó el pedido", "reason": "el cliente bloqueó al bot",
           "text": "Hola María, ya ubicamos tu pedido: sale hoy y te llega mañana.",
           "customer_text": "Hola, hice un pedido hace una semana y todavía no me llega."},
    "en": {"hours": "Monday to Friday, 9:00 AM to 7:00 PM", "status_command": "/status",
           "subject": "My order has not arrived", "reason": "the customer blocked the bot",
           "text": "Hi María, we found your order: it ships today and arrives tomorrow.",
           "customer_text": "Hi, I ordered a week ago and it still has not arrived."},
}


def variables_of(key: str) -> dict[str, str]:
    """Variable name -> description for the text `key`, sorted by name."""
    ticket = {} if key in NO_TICKET else TICKET
    return dict(sorted({**COMMON, **ticket, **EXTRA.get(key, {})}.items()))


def with_neutral(key: str, given: dict[str, Any]) -> dict[str, Any]:
    """`given`, plus a neutral value for every variable of `key` it lacks."""
    return {**{name: NEUTRAL[name] for name in EXTRA.get(key, {})
               if name in NEUTRAL and name not in given}, **given}


def sample_values(key: str | None, lang: str, *, channel: str, now: datetime,
                  opening: datetime, status_command: str) -> dict[str, Any]:
    """Every variable with a realistic value, for previews and for checking a text."""
    txt = SAMPLE_TEXT.get(lang, SAMPLE_TEXT["en"])
    open_now = key != "ack_closed"
    subject = txt["subject"]
    return {
        "company": "Tienda Aurora", "channel": channel, "open_now": open_now,
        "customer": {"name": "María González", "first_name": "María"},
        "ticket": {"number": 1042, "subject": subject, "channel": channel, "status": "open",
                   "priority": "normal", "assignee": "Ana",
                   "url": "https://soporte.example.com/t/1042"},
        "hours": txt["hours"], "next_opening": opening, "sla_minutes": 120,
        "due_at": (now if open_now else opening) + timedelta(minutes=120),
        "status_command": status_command,
        "agent": {"name": "Ana"}, "score": None if key == "survey" else 5,
        "text": txt["customer_text" if key == "new_ticket" else "text"],
        "reason": txt["reason"],
        "tickets": [{"number": 1042, "status": "open", "subject": subject},
                    {"number": 987, "status": "pending", "subject": ""}],
        "target": "first_response", "stage": "warn", "share": 80,
        "history": [{"number": 987, "channel": "email", "status": "closed"}],
        "seconds": 10, "name": "Ana", "author": "customer", "kind": "ack", "reply": "envio",
        "event": "resolved", "number": 1042, "priority": "high", "at": now + timedelta(hours=2),
        "text_key": "ack", "language": lang, "problem": "no_ticket", "value": "altísima",
        "status": "resolved", "choices": ["envio", "devolucion"], "topic": "commands",
        "command": "/ticket", "query": "impresora",
        "found": [{"number": 1042, "channel": "telegram", "status": "open", "subject": subject}],
    }
