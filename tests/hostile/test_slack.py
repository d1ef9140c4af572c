"""Hostile input at the Slack door: forged, stale and malformed deliveries to
`/slack/events`, and customers' text that tries to format, ping or mislead the agents'
console. Everything goes through the Slack sandbox and the real adapter behind the
gateway's HTTP app (the `console` of tests/test_slack_console.py).
"""

from __future__ import annotations

import json
import logging
import re

import pytest

from adapters.slack.blocks import LOOK_ALIKES
from gateway.store.models import Message, Ticket
from tests import test_slack_console
from tests.test_slack_console import AGENTS, Console

# the console's fixtures: slack-bolt in the gateway's HTTP app, the sandbox, SQLite
console, db_url = test_slack_console.console, test_slack_console.db_url

ROSA = "U0CLIENTE"


async def rosa_still_gets_through(console: Console, text: str = "Hola, necesito ayuda") -> None:
    """Right after the hostile delivery, a genuine signed DM from Rosa is stored."""
    before = await Message.filter(direction="in").count()
    response = await console.sandbox.message("D0ROSA", ROSA, text, channel_type="im")
    assert response.status_code == 200
    assert await Message.filter(direction="in").count() == before + 1
    assert await Message.filter(direction="in", text=text).exists()


# -- who may knock: signatures checked before anything is parsed ------------------------------


async def test_an_unsigned_brace_is_refused_with_401_and_nothing_is_stored(
        console: Console, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="centralita.slack"):
        response = await console.sandbox.post(b"{", signed=False)
    assert response.status_code == 401
    assert "signature" in caplog.text
    assert await Message.all().count() == 0 and await Ticket.all().count() == 0
    await rosa_still_gets_through(console)


@pytest.mark.parametrize("body", [b"{", b"\xff\xfe{", b"[]", json.dumps({
    "type": "event_callback", "event_id": "Ev1", "event": {
        "type": "message", "channel": "D0ROSA", "user": ROSA, "text": "hola",
        "ts": "1.000001", "channel_type": "im"}}).encode()])
async def test_a_signature_with_the_wrong_secret_is_refused_with_401(
        console: Console, body: bytes) -> None:
    forged = "v0=" + "0" * 64
    response = await console.sandbox.post(body, signature=forged)
    assert response.status_code == 401
    assert await Message.all().count() == 0
    await rosa_still_gets_through(console)


@pytest.mark.parametrize("body", [b"{", b"not json at all"])
async def test_a_stale_signature_is_refused_with_401_whatever_the_body(
        console: Console, body: bytes) -> None:
    # Correctly signed, but ten minutes ago: a replayed capture.
    response = await console.sandbox.post(body, age_seconds=600)
    assert response.status_code == 401
    stale = await console.sandbox.message("D0ROSA", ROSA, "repetido", channel_type="im",
                                          age_seconds=600)
    assert stale.status_code == 401
    assert await Message.all().count() == 0
    await rosa_still_gets_through(console)


async def test_a_body_that_is_not_utf8_cannot_be_slacks_even_with_its_bytes_signed(
        console: Console) -> None:
    response = await console.sandbox.post(b'{"type": "\xff\xfe"}')
    assert response.status_code == 401
    await rosa_still_gets_through(console)


async def test_a_timestamp_that_is_not_a_number_is_refused_with_401(console: Console) -> None:
    response = await console.sandbox.post(b"{", signature="v0=abc")
    assert response.status_code == 401
    url = console.sandbox.events_url
    assert url
    answer = await console.sandbox._client.post(url, content=b"{}", headers={  # type: ignore[union-attr]
        "X-Slack-Request-Timestamp": "ayer", "X-Slack-Signature": "v0=abc"})
    assert answer.status_code == 401
    await rosa_still_gets_through(console)


# -- signed, but not what Slack sends: refused or ignored, never a 500 --------------------------


def _event(event: object, **outer: object) -> bytes:
    return json.dumps({"type": "event_callback", "event_id": "EvJUNK", "team_id": "T0TEST",
                       "event": event, **outer}).encode()


JUNK = {
    "half a json object": (b"{", "application/json"),
    "not json at all": (b"hola", "application/json"),
    "a json list": (b"[1, 2, 3]", "application/json"),
    "json nested past the parser's depth": (b'{"type": "event_callback", "event": '
                                            + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                            "application/json"),
    "a json string": (b"\"event_callback\"", "application/json"),
    "json null": (b"null", "application/json"),
    "a handshake without a challenge": (b'{"type": "url_verification"}', "application/json"),
    "a handshake with an object as challenge": (
        b'{"type": "url_verification", "challenge": {"a": 1}}', "application/json"),
    "an event callback without an event": (b'{"type": "event_callback"}', "application/json"),
    "an event that is a string": (_event("message"), "application/json"),
    "an event that is a list": (_event(["message"]), "application/json"),
    "a message without channel or ts": (_event({"type": "message", "user": ROSA,
                                                "channel_type": "im", "text": "hola"}),
                                        "application/json"),
    "a thread reply without ts": (_event({"type": "message", "user": "U0PEDRO",
                                          "channel": AGENTS, "thread_ts": "1.0",
                                          "text": "hola"}), "application/json"),
    "an edit without the message": (_event({"type": "message", "subtype": "message_changed",
                                            "channel": AGENTS}), "application/json"),
    "an edit whose message is a string": (_event({
        "type": "message", "subtype": "message_changed", "channel": AGENTS,
        "message": "hola"}), "application/json"),
    "a deletion without anything": (_event({"type": "message",
                                            "subtype": "message_deleted"}), "application/json"),
    "a message whose text is an object": (_event({
        "type": "message", "user": ROSA, "channel": "D0ROSA", "channel_type": "im",
        "ts": "1.000002", "text": {"a": 1}}), "application/json"),
    "a form with a broken payload": (b"payload=%7B", "application/x-www-form-urlencoded"),
    "a form whose payload is a list": (b"payload=%5B%5D", "application/x-www-form-urlencoded"),
    "a button press without actions": (
        b"payload=" + json.dumps({"type": "block_actions", "user": {"id": "U0PEDRO"}}).encode(),
        "application/x-www-form-urlencoded"),
    "an empty body": (b"", "application/json"),
}


@pytest.mark.parametrize("name", sorted(JUNK))
async def test_a_signed_malformed_body_is_refused_or_ignored_but_never_a_500(
        console: Console, caplog: pytest.LogCaptureFixture, name: str) -> None:
    body, content_type = JUNK[name]
    with caplog.at_level(logging.INFO, logger="centralita.slack"):
        response = await console.sandbox.post(body, content_type=content_type)
    assert response.status_code in (200, 400), (response.status_code, response.text)
    if response.status_code == 400:
        assert [r for r in caplog.records if r.name == "centralita.slack"], "refusal not logged"
    assert await Message.all().count() == 0
    # The next genuine event is handled as if nothing had happened.
    await rosa_still_gets_through(console)
    assert (await Ticket.get(number=1001)).channel == "slack"


async def test_the_url_handshake_still_echoes_its_challenge(console: Console) -> None:
    response = await console.sandbox.url_verification()
    assert response.status_code == 200
    assert response.json()["challenge"] == response.challenge


# -- what a customer writes shows as she wrote it ------------------------------------------------

NAME = "Ana & Co <x>"
TEXT = "*URGENTE* _ya_ ~no~ `rm -rf` <!channel> <@U0PEDRO>\n> cita falsa\n```bloque```"
# What makes Slack's mrkdwn format: a marker opening at a word's start and closing at its end,
# a quote at a line's start, a mention or a link.
FORMATTING = [re.compile(r"(?:^|[\s(])([*_~`]).*?\S\1(?:$|[\s).,!?])", re.M),
              re.compile(r"^(?:>|&gt;)", re.M), re.compile(r"<[!@#]")]


def read_as_agents_do(mrkdwn: str) -> str:
    """What an agent reads in a mrkdwn text: entities decoded, the invisible characters
    gone, the look-alikes read as the characters they stand for."""
    for original, look_alike in LOOK_ALIKES.items():
        mrkdwn = mrkdwn.replace(look_alike, original)
    mrkdwn = mrkdwn.replace("\u00ad", "").replace("\u200b", "")
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def formatted(mrkdwn: str) -> list[str]:
    return [m.group(0) for pattern in FORMATTING for m in pattern.finditer(mrkdwn)]


async def test_a_customers_formatting_and_pings_show_literally_in_the_card_and_its_thread(
        console: Console) -> None:
    await console.customer_writes(TEXT, name=NAME)
    await console.sandbox.wait_for(lambda: console.cards())
    card = console.cards()[0]
    # The header is plain text: her name exactly as she wrote it, no entities.
    [header] = [b for b in card["blocks"] if b["type"] == "header"]
    assert header["text"]["type"] == "plain_text"
    assert header["text"]["text"].endswith(f"· {NAME}")
    # Her words (the excerpt, quoted) and her subject (a field) read as she wrote them, and
    # none of it formats or pings; neither does the notification's text (the summary).
    [excerpt] = [b["text"]["text"] for b in card["blocks"] if b["type"] == "section"
                 and "text" in b]
    excerpt = excerpt.replace("\n>", "\n")[1:]  # the quote the card draws it in
    assert read_as_agents_do(excerpt) == TEXT
    assert not formatted(excerpt), formatted(excerpt)
    [fields] = [b["fields"] for b in card["blocks"] if b["type"] == "section" and "fields" in b]
    [subject] = [f["text"].partition(":* ")[2] for f in fields if "URGENTE" in f["text"]]
    assert read_as_agents_do(subject) == TEXT.splitlines()[0]
    assert not formatted(subject), subject
    assert NAME in read_as_agents_do(card["text"]) and not formatted(card["text"])
    shown = str(card["blocks"]) + card["text"]
    assert "<!channel>" not in shown and "<@U0PEDRO>" not in shown

    # She writes again: the copy in the card's thread reads the same, and formats nothing.
    ts = await console.card_of(1001)
    await console.customer_writes(TEXT, name=NAME)
    await console.sandbox.wait_for(lambda: any("URGENTE" in t for t in console.thread(ts)))
    copy = next(t for t in console.thread(ts) if "URGENTE" in t)
    heading, _, quoted = copy.partition("\n")
    assert NAME in read_as_agents_do(heading)
    body = quoted.replace("\n>", "\n")[1:]
    assert read_as_agents_do(body) == TEXT
    assert not formatted(body), formatted(body)
    assert not re.search(r"<[!@#]", copy)
