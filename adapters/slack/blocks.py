"""Slack text and Block Kit for the console: escaping, agent text → plain, and the core's
views (a ticket's card, a prompt, a form, the survey) drawn as blocks. Not a word here is
the adapter's own: labels and texts come in the views.

Text shown on the console reads as it was written (`escape`): `&`, `<` and `>` become
entities, so `<!channel>`, `<@U…>` or a crafted `<https://evil|bank>` link in a customer
message can neither ping nor mislead agents; and mrkdwn's markers cannot format it. Slack
has no escape for `*`, `_`, `~` and backticks (a zero-width space next to a marker does not
stop it: that is how formatting is *forced* inside a word), so where a marker could open or
close formatting it is drawn with a look-alike (`LOOK_ALIKES`: ∗ ˍ ∼ ˋ); a marker between
two letters or digits cannot format and stays (`juan_perez`, `a*b`). A `>` that starts a
line gets an invisible soft hyphen before it, so it is not a quote. Emoji codes such as
`:tada:` are left alone: Slack itself writes a customer's emoji that way. Where a block
takes plain text (the card's header) the text goes as it is, with no entities. Messages
for a customer (a Slack DM) are only entity-escaped (`entities`): the formatting there is
the agent's or the admin's own. Agents' Slack markup is turned back into plain text for
the customer (`plain`).

Example:
    >>> escape("<!channel> pay at <https://evil.example|your bank>")
    '&lt;!channel&gt; pay at &lt;https://evil.example|your bank&gt;'
    >>> escape("*URGENTE* _ya_ juan_perez")
    '∗URGENTE∗ ˍyaˍ juan_perez'
    >>> plain("Mira &lt;esto&gt; en <https://ex.com/p|la página> <@U1>")
    'Mira <esto> en la página (https://ex.com/p) @U1'
"""

from __future__ import annotations

import re
from typing import Any

from gateway.core.messages import SURVEY_SCORES, score_label
from gateway.core.views import Button, Card, Form, Prompt

_LINK = re.compile(r"<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>")
_MENTION = re.compile(r"<([@#!])([^|>]+)(?:\|([^>]+))?>")
SECTION_TEXT = 3000  # Slack's limit for a section's text
EXCERPT = 2500


# mrkdwn's markers (and the full-width ones Slack also reads) → characters that look alike
LOOK_ALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb",
               "\uff0a": "\ufe61", "\uff3f": "\u2e0f", "\uff40": "\u02f4"}
_MARKER = re.compile("[" + re.escape("".join(LOOK_ALIKES)) + "]")
_LINE_QUOTE = re.compile(r"^([ \t]*)(&gt;|\uff1e)", re.M)
SOFT_HYPHEN = "\u00ad"


def entities(text: str) -> str:
    """`&`, `<` and `>` as entities: no mentions, no links (Slack's own escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape(text: str) -> str:
    """Text for a mrkdwn field of the console, shown as written: no mentions, no links, no
    formatting (see the module's docstring)."""
    return _LINE_QUOTE.sub(rf"\1{SOFT_HYPHEN}\2", _MARKER.sub(_look_alike, entities(text)))


def _look_alike(match: re.Match[str]) -> str:
    """The marker's look-alike, unless it sits inside a word (and so cannot format)."""
    marker, text, at = match.group(0), match.string, match.start()
    inside = 0 < at < len(text) - 1 and text[at - 1].isalnum() and text[at + 1].isalnum()
    return marker if inside and marker not in "`\uff40" else LOOK_ALIKES[marker]


def plain(text: str) -> str:
    """An agent's Slack message as plain text for the customer."""
    text = _LINK.sub(lambda m: f"{m.group(2)} ({m.group(1)})" if m.group(2) else m.group(1),
                     text)
    text = _MENTION.sub(lambda m: m.group(3) or (m.group(1) if m.group(1) != "!" else "")
                        + m.group(2), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _button(button: Button) -> dict[str, Any]:
    drawn: dict[str, Any] = {"type": "button", "action_id": button.action,
                             "value": button.value,
                             "text": {"type": "plain_text", "text": button.label[:75]}}
    if button.primary:
        drawn["style"] = "primary"
    return drawn


def card(view: Card) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of a ticket's card."""
    excerpt = escape(view.excerpt[:EXCERPT] + ("…" if len(view.excerpt) > EXCERPT else ""))
    actions: list[dict[str, Any]] = [_button(b) for b in view.buttons]
    if view.choice is not None:
        actions.append({
            "type": "static_select", "action_id": view.choice.action,
            "placeholder": {"type": "plain_text", "text": view.choice.placeholder[:150]},
            "options": [{"text": {"type": "plain_text", "text": label[:75]}, "value": value}
                        for value, label in view.choice.options]})
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": view.title[:150],
                                    "emoji": False}},   # as it is: no entities, no :codes:
        {"type": "section", "fields": [
            {"type": "mrkdwn", "text": f"*{escape(label)}:* {escape(value)}"}
            for label, value in view.fields[:10]]},
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": ">" + (excerpt or "—").replace("\n", "\n>")}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(view.footer)}]},
        {"type": "actions", "block_id": f"ticket-{view.number}", "elements": actions},
    ]
    if not view.fields:
        blocks.pop(1)
    if not view.footer:
        blocks = [b for b in blocks if b["type"] != "context"]
    return escape(view.summary), blocks


def prompt(view: Prompt) -> list[dict[str, Any]]:
    """A private prompt (e.g. "sending in 10 s") with its buttons."""
    return [
        {"type": "section", "text": {"type": "mrkdwn",
                                     "text": escape(view.detail or view.text)[:SECTION_TEXT]}},
        {"type": "actions", "elements": [_button(b) for b in view.buttons]},
    ]


def modal(view: Form) -> dict[str, Any]:
    """A form as a modal view; its `ref` comes back in `private_metadata`."""
    return {
        "type": "modal", "callback_id": view.form, "private_metadata": view.ref,
        "title": {"type": "plain_text", "text": view.title[:24]},
        "submit": {"type": "plain_text", "text": view.submit[:24]},
        "blocks": [
            {"type": "input", "block_id": field.name, "optional": field.optional,
             "label": {"type": "plain_text", "text": field.label[:2000]},
             "element": {"type": "plain_text_input", "action_id": "value",
                         "multiline": field.multiline, "initial_value": field.value[:3000]}}
            for field in view.fields]}


def survey(text: str, number: int) -> list[dict[str, Any]]:
    """The satisfaction survey in a customer's DM: its text, then a button per score.

    Example: `survey("¿Cómo calificarías…?", 1001)[1]["elements"][4]["value"]` → "1001:5"
    """
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_TEXT]}},
        {"type": "actions", "block_id": f"survey_{number}", "elements": [
            {"type": "button", "action_id": f"survey_score_{n}", "value": f"{number}:{n}",
             "text": {"type": "plain_text", "text": score_label(n)}}
            for n in SURVEY_SCORES]},
    ]
