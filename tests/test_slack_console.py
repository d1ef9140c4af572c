"""The agents' console in Slack, end to end: slack-bolt in the gateway's HTTP app, the
Slack sandbox delivering signed events and answering the Web API, customers on the
memory channel standing in for Telegram.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.memory import MemoryAdapter
from adapters.slack.adapter import SlackAdapter
from gateway.app import App, assemble, running
from gateway.sandbox.slack import SlackSandbox
from gateway.store.models import AuditEvent, Message, OutboxItem, ScheduledAction, Ticket
from tests.conftest import make_settings
from tests.mailservers import eventually, free_port

AGENTS = "C0AGENTS"
PEDRO = "U0PEDRO"
MARIA = "555"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/centralita.sqlite3"


@dataclass
class Console:
    app: App
    slack: SlackAdapter
    telegram: MemoryAdapter
    sandbox: SlackSandbox

    def cards(self) -> list[dict]:
        return [p for p in self.sandbox.posted if p["channel"] == AGENTS and
                not p.get("thread_ts")]

    def thread(self, ts: str) -> list[str]:
        return [p["text"] for p in self.sandbox.posted if p.get("thread_ts") == ts]

    async def customer_writes(self, text: str, address: str = MARIA, name: str = "María"):
        from gateway.core.messages import Inbound, Party, ThreadHint

        self.telegram_counter = getattr(self, "telegram_counter", 0) + 1
        return await self.telegram.inject(Inbound(
            channel="telegram", sender=Party("customer", address, name), text=text,
            external_id=f"tg-{self.telegram_counter}", thread=ThreadHint(conversation=address)))

    async def card_of(self, number: int) -> str:
        ticket = await eventually(lambda: _threaded(number))
        return ticket.console_thread.split(":", 1)[1]


async def _threaded(number: int) -> Ticket | None:
    return await Ticket.filter(number=number, console_thread__isnull=False).first()


async def _all_sent() -> bool:
    """The outbox holds nothing waiting or in flight: everything queued so far has left
    (a reply held for its undo window is waiting too, so this outlasts the window)."""
    return not await OutboxItem.filter(status__in=["pending", "sending"]).exists()


@pytest.fixture
async def console(db: str, tmp_path: Path) -> AsyncIterator[Console]:
    sandbox = SlackSandbox()
    await sandbox.start()
    sandbox.add_user(PEDRO, "Pedro Soto")
    sandbox.add_user("U0CLIENTE", "Rosa Cliente")
    sandbox.add_channel(AGENTS, [PEDRO])
    port = free_port()
    sandbox.set_gateway(f"http://127.0.0.1:{port}/slack/events")
    settings = make_settings(
        tmp_path, agents={"console": "slack", "channel": AGENTS, "undo_seconds": 1,
                          "admins": [PEDRO]},
        replies={"envio": {"es": "Hola {{ customer.first_name }}, tu pedido de la solicitud "
                                 "#{{ ticket.number }} salió hoy."}},
        outbox={"poll_interval": "0.1s", "backoff_base": "0.2s"},
        channels={"slack": {"bot_token": sandbox.bot_token,
                            "signing_secret": sandbox.signing_secret,
                            "base_url": sandbox.api_url}})
    slack = SlackAdapter.from_settings(settings)
    telegram = MemoryAdapter("telegram")
    app = assemble(settings, adapters={"slack": slack, "telegram": telegram})
    async with running(app, listen=f"127.0.0.1:{port}"):
        yield Console(app, slack, telegram, sandbox)
    await sandbox.stop()


async def test_a_customer_message_makes_a_card_and_the_agents_reply_reaches_her(
        console: Console) -> None:
    await console.customer_writes("Hola, mi pedido no llegó")
    await console.sandbox.wait_for(lambda: console.cards())
    card = console.cards()[0]
    assert "#1001" in card["text"] and "María" in card["text"]
    assert any(b.get("type") == "actions" for b in card["blocks"])
    ts = await console.card_of(1001)
    # The acknowledgement she received is copied into the card's thread.
    await console.sandbox.wait_for(lambda: console.thread(ts))
    assert "#1001" in console.thread(ts)[0]
    # Pedro answers in the thread; after the undo window it reaches María on Telegram.
    await console.sandbox.message(AGENTS, PEDRO, "Hola María, sale hoy.", thread_ts=ts)
    await console.sandbox.wait_for(lambda: console.sandbox.ephemerals)  # Undo / Make a note
    await eventually(lambda: [m for m in console.telegram.sent if m.kind == "agent_reply"])
    reply = next(m for m in console.telegram.sent if m.kind == "agent_reply")
    assert reply.recipient == MARIA and reply.text.startswith("Hola María, sale hoy.")
    assert "Pedro Soto" in reply.text
    # Her answer on Telegram appears in the thread.
    await console.customer_writes("¡Gracias!")
    await console.sandbox.wait_for(lambda: any("Gracias" in t for t in console.thread(ts)))


async def test_pedro_is_an_agent_even_when_the_server_booted_a_minute_ago(
        console: Console, monkeypatch: pytest.MonkeyPatch) -> None:
    # systemd starts the gateway at boot: monotonic time counts from boot, so it is small.
    monkeypatch.setattr(console.slack.clock, "monotonic", lambda: 60.0)
    await console.customer_writes("Hola, mi pedido no llegó")
    ts = await console.card_of(1001)
    await console.sandbox.message(AGENTS, PEDRO, "Hola María, sale hoy.", thread_ts=ts)
    reply = await eventually(lambda: [m for m in console.telegram.sent
                                      if m.kind == "agent_reply"])
    assert reply[0].text.startswith("Hola María, sale hoy.")


async def test_a_note_stays_on_the_ticket_and_is_confirmed_with_a_reaction(
        console: Console) -> None:
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    note = await console.sandbox.message(AGENTS, PEDRO, "// cliente VIP, ojo", thread_ts=ts)
    await console.sandbox.wait_for(lambda: console.sandbox.reactions)
    assert console.sandbox.reactions[0]["name"] == "memo"
    assert console.sandbox.reactions[0]["timestamp"] == note.ts
    stored = await Message.get(text="cliente VIP, ojo")
    assert stored.visibility == "internal"
    # Bolt handled the note before answering: whatever it queued is in the outbox now.
    # It queued nothing for María, and once everything queued has left, she has no reply.
    assert not await OutboxItem.filter(audience="customer", kind="agent_reply").exists()
    await eventually(_all_sent)
    assert not [m for m in console.telegram.sent if m.kind == "agent_reply"]


async def test_a_retried_event_does_not_send_the_reply_twice(console: Console) -> None:
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    first = await console.sandbox.message(AGENTS, PEDRO, "Ya lo reviso", thread_ts=ts)
    assert first.status_code == 200
    again = await console.sandbox.resend(first.event_id, retry_num=1)
    assert again.status_code == 200
    await eventually(lambda: [m for m in console.telegram.sent if m.kind == "agent_reply"])
    # The retry was handled before Slack got its 200: had it queued a second reply, the
    # row would be there, and would have left by the time the outbox is empty.
    assert await OutboxItem.filter(kind="agent_reply").count() == 1
    await eventually(_all_sent)
    assert len([m for m in console.telegram.sent if m.kind == "agent_reply"]) == 1
    assert await Message.filter(author_kind="agent", direction="in").count() == 1


async def test_claim_and_resolve_change_the_ticket_and_the_card(console: Console) -> None:
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    await console.sandbox.block_action(PEDRO, AGENTS, ts, "claim", "1001")
    assert (await Ticket.get(number=1001)).assignee == "Pedro Soto"
    await console.sandbox.wait_for(lambda: console.sandbox.updated)
    assert "Pedro Soto" in console.sandbox.updated[-1]["text"]
    await console.sandbox.block_action(PEDRO, AGENTS, ts, "resolve", "1001")
    ticket = await Ticket.get(number=1001)
    assert ticket.status == "resolved" and ticket.resolved_at is not None
    await console.sandbox.wait_for(lambda: "resuelto" in console.sandbox.updated[-1]["text"])
    assert await AuditEvent.filter(action__in=["claimed", "resolved"]).count() == 2


async def test_someone_outside_the_agents_channel_cannot_press_the_buttons(
        console: Console) -> None:
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    await console.sandbox.block_action("U0CLIENTE", AGENTS, ts, "resolve", "1001")
    assert (await Ticket.get(number=1001)).status == "open"


async def test_a_forged_or_stale_request_is_refused_and_nothing_is_stored(
        console: Console) -> None:
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    forged = await console.sandbox.forged(AGENTS, PEDRO, "Envíame tu clave", thread_ts=ts)
    stale = await console.sandbox.message(AGENTS, PEDRO, "Viejo", thread_ts=ts,
                                          age_seconds=400)
    assert forged.status_code == 401 and stale.status_code == 401
    # Bolt handles an event before it answers (process_before_response): had either been
    # let in, it would be stored by now.
    assert await Message.filter(author_kind="agent").count() == 0
    # Pedro's genuine reply, sent after them, is stored by the time his 200 comes back
    # (so the count above was not read too early), and it is the only agent's message.
    genuine = await console.sandbox.message(AGENTS, PEDRO, "Ya lo reviso", thread_ts=ts)
    assert genuine.status_code == 200
    assert await Message.filter(author_kind="agent", direction="in").values_list(
        "text", flat=True) == ["Ya lo reviso"]


async def test_channel_pings_and_links_from_a_customer_arrive_escaped(console: Console) -> None:
    await console.customer_writes("<!channel> urgente, pagar en <https://evil.example|su banco>")
    await console.sandbox.wait_for(lambda: console.cards())
    shown = str(console.cards()[0]["blocks"])
    assert "<!channel>" not in shown and "&lt;!channel&gt;" in shown
    assert "<https://evil.example|su banco>" not in shown


async def test_a_slack_dm_customer_gets_the_acknowledgement_in_the_dm(console: Console) -> None:
    response = await console.sandbox.message("D0ROSA", "U0CLIENTE", "Hola, necesito ayuda",
                                             channel_type="im")
    assert response.status_code == 200
    await console.sandbox.wait_for(
        lambda: [p for p in console.sandbox.posted if p["channel"].startswith("D")])
    ack = next(p for p in console.sandbox.posted if p["channel"].startswith("D"))
    assert "#1001" in ack["text"]
    assert (await Ticket.get(number=1001)).channel == "slack"


async def test_a_slack_dm_customer_answers_the_survey_with_a_button(console: Console) -> None:
    await console.sandbox.message("D0ROSA", "U0CLIENTE", "Hola, necesito ayuda",
                                  channel_type="im")
    await eventually(lambda: Ticket.get_or_none(number=1001))
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "resolve 1001")
    # The scheduler's survey, as it sends it: in her DM, with a button per score.
    await _comes_due(console, 1001, "survey")
    await console.sandbox.wait_for(lambda: [p for p in console.sandbox.posted
                                            if p["channel"] == "D0ROSA" and p.get("blocks")])
    survey = next(p for p in console.sandbox.posted
                  if p["channel"] == "D0ROSA" and p.get("blocks"))
    buttons = survey["blocks"][-1]["elements"]
    assert [b["value"] for b in buttons] == [f"1001:{n}" for n in range(1, 6)]
    # Someone else's press on her ticket is refused; hers is kept, once, and thanked.
    await console.sandbox.block_action(PEDRO, "D0PEDRO", survey["ts"], "survey_score_1",
                                       "1001:1")
    await console.sandbox.block_action("U0CLIENTE", "D0ROSA", survey["ts"],
                                       "survey_score_4", "1001:4")
    await eventually(lambda: Ticket.get_or_none(number=1001, satisfaction=4))
    await console.sandbox.wait_for(lambda: any(
        p["channel"] == "D0ROSA" and "gracias" in p["text"].lower() and p is not survey
        for p in console.sandbox.posted[console.sandbox.posted.index(survey) + 1:]))
    await console.sandbox.block_action("U0CLIENTE", "D0ROSA", survey["ts"],
                                       "survey_score_2", "1001:2")
    # The second press was handled before Slack got its answer; once everything it could
    # have queued has left, the score is still her first and she was thanked once.
    await eventually(_all_sent)
    assert (await Ticket.get(number=1001)).satisfaction == 4
    assert len([p for p in console.sandbox.posted[console.sandbox.posted.index(survey) + 1:]
                if p["channel"] == "D0ROSA" and "gracias" in p["text"].lower()]) == 1


async def test_undo_inside_the_window_keeps_the_reply_from_the_customer(
        console: Console) -> None:
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    await console.sandbox.message(AGENTS, PEDRO, "Te devuelvo el dinero hoy", thread_ts=ts)
    await console.sandbox.wait_for(lambda: console.sandbox.ephemerals)
    outbox_id = int(console.sandbox.ephemerals[-1]["blocks"][1]["elements"][1]["value"])
    await console.sandbox.block_action(PEDRO, AGENTS, ts, "make_note", str(outbox_id))
    # The press was handled before Slack got its answer. Had the reply not been taken
    # back, it would still be waiting out its window, and the outbox would not be empty
    # until it had reached María.
    await eventually(_all_sent)
    assert not [m for m in console.telegram.sent if m.kind == "agent_reply"]
    assert (await OutboxItem.get(id=outbox_id)).status == "cancelled"
    assert (await Message.get(kind="note")).visibility == "internal"


@pytest.mark.parametrize("restarted", [False, True], ids=["running", "after-a-restart"])
async def test_editing_the_reply_inside_the_window_changes_what_is_sent(
        console: Console, restarted: bool) -> None:
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    sent = await console.sandbox.message(AGENTS, PEDRO, "Llega el martes", thread_ts=ts)
    await console.sandbox.wait_for(lambda: console.sandbox.ephemerals)
    if restarted:  # the gateway restarted inside the undo window: it still knows
        console.slack._names.clear()
        console.slack._members = (float("-inf"), {})
    await console.sandbox.message_changed(AGENTS, sent.ts, "Llega el miércoles",
                                          thread_ts=ts)
    reply = await eventually(lambda: [m for m in console.telegram.sent
                                      if m.kind == "agent_reply"])
    assert reply[0].text.startswith("Llega el miércoles")


async def test_the_card_follows_a_slash_command_and_the_customer_reopening(
        console: Console) -> None:
    await console.customer_writes("Hola, mi pedido no llegó")
    ts = await console.card_of(1001)
    # Pedro resolves it from /ticket, not from the card's button: the card shows it.
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "resolve 1001")
    await console.sandbox.wait_for(lambda: any(
        u["ts"] == ts and "resuelto" in u["text"] for u in console.sandbox.updated))
    # María answers that it still has not arrived: the ticket reopens, and so does the card.
    await console.customer_writes("Sigue sin llegar")
    await console.sandbox.wait_for(lambda: console.sandbox.updated[-1]["ts"] == ts and
                                   "abierto" in console.sandbox.updated[-1]["text"])
    assert (await Ticket.get(number=1001)).status == "open"


async def _comes_due(console: Console, number: int, kind: str, **payload: str) -> None:
    """The scheduler finds `kind` due for ticket `number` now, and fires it."""
    ticket = await Ticket.get(number=number)
    now = console.app.services.clock.now()
    await ScheduledAction.create(ticket=ticket, kind=kind, due_at=now, payload=payload,
                                 created_at=now)
    assert await console.app.scheduler.run_due() >= 1


async def _sla_warning(console: Console, ts: str) -> str:
    """The scheduler's first-response breach for #1001, as posted in its card's thread."""
    ticket = await Ticket.get(number=1001)
    await _comes_due(console, 1001, "sla_breach:first_response",
                     target_due=ticket.first_response_due.isoformat())
    await console.sandbox.wait_for(lambda: any("vencido" in t for t in console.thread(ts)))
    return next(t for t in console.thread(ts) if "vencido" in t)


async def test_an_sla_warning_mentions_the_agent_who_claimed_the_ticket(
        console: Console) -> None:
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    await console.sandbox.block_action(PEDRO, AGENTS, ts, "claim", "1001")
    assert (await Ticket.get(number=1001)).assignee == "Pedro Soto"
    # Slack must notify Pedro, not just name him.
    assert (await _sla_warning(console, ts)).startswith(f"<@{PEDRO}> ")


async def test_an_sla_warning_tells_apart_two_agents_with_the_same_name(
        console: Console) -> None:
    # The team has two Pedro Soto; the second one claims María's ticket.
    console.sandbox.add_user("U0PEDRO2", "Pedro Soto")
    console.sandbox.add_channel(AGENTS, [PEDRO, "U0PEDRO2"])
    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    await console.sandbox.block_action("U0PEDRO2", AGENTS, ts, "claim", "1001")
    assert (await Ticket.get(number=1001)).assignee == "Pedro Soto"
    assert (await _sla_warning(console, ts)).startswith("<@U0PEDRO2> ")


async def test_who_had_a_ticket_is_forgotten_once_it_is_closed(console: Console) -> None:
    from gateway.store.models import ChannelState

    await console.customer_writes("Hola")
    ts = await console.card_of(1001)
    await console.sandbox.block_action(PEDRO, AGENTS, ts, "claim", "1001")
    assert await ChannelState.filter(channel="slack", key="assignee:1001").exists()
    # The scheduler closes the resolved ticket (as it does after the check-in); the card
    # shows it…
    await console.sandbox.block_action(PEDRO, AGENTS, ts, "resolve", "1001")
    await _comes_due(console, 1001, "close")
    await console.sandbox.wait_for(lambda: any(
        u["ts"] == ts and "cerrado" in u["text"] for u in console.sandbox.updated))
    # …and the console no longer keeps who had it: no warning will name her again.
    await eventually(lambda: _gone(1001))


async def _gone(number: int) -> bool:
    from gateway.store.models import ChannelState

    return not await ChannelState.filter(channel="slack", key=f"assignee:{number}").exists()


async def test_assigning_with_an_escaped_mention_keeps_the_name_and_notifies_her(
        console: Console) -> None:
    # With "escape users" on, Slack sends `/ticket assign 1001 @laura` as the markup.
    console.sandbox.add_user("U0LAURA", "Laura Díaz")
    await console.customer_writes("La impresora no imprime")
    ts = await console.card_of(1001)
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket",
                                        "assign 1001 <@U0LAURA|laura>")
    # Pages, texts to customers and the card show her name, never Slack's markup…
    assert (await Ticket.get(number=1001)).assignee == "Laura Díaz"
    await console.sandbox.wait_for(lambda: any(
        u["ts"] == ts and "Laura Díaz" in u["text"] for u in console.sandbox.updated))
    # …and the SLA warning still notifies her.
    assert (await _sla_warning(console, ts)).startswith("<@U0LAURA> ")


async def test_a_canned_reply_from_slash_ticket_reaches_the_customer_signed(
        console: Console) -> None:
    await console.customer_writes("Hola, ¿cuándo sale mi pedido?")
    ts = await console.card_of(1001)
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "reply 1001 nada")
    assert "envio" in console.sandbox.responses[-1]["text"]  # the replies there are
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "reply 1001 envio")
    reply = await eventually(lambda: [m for m in console.telegram.sent
                                      if m.kind == "agent_reply"])
    assert reply[0].text.startswith("Hola María, tu pedido de la solicitud #1001 salió hoy.")
    assert "Pedro Soto" in reply[0].text  # signed like any answer of hers
    # Its copy in the card's thread travels in the console's own lane: it may come later.
    await console.sandbox.wait_for(
        lambda: any("envio" in t and "salió hoy" in t for t in console.thread(ts)))
    assert (await Ticket.get(number=1001)).first_response_at is not None


async def test_assign_and_priority_from_slash_ticket_are_audited_and_shown(
        console: Console) -> None:
    await console.customer_writes("La impresora no imprime")
    ts = await console.card_of(1001)
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "assign 1001 @Laura")
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "priority 1001 alta")
    ticket = await Ticket.get(number=1001)
    assert ticket.assignee == "Laura" and ticket.priority == "high"
    assigned = await AuditEvent.get(action="assigned")
    assert assigned.actor == "Pedro Soto" and assigned.detail == {"from": None, "to": "Laura"}
    changed = await AuditEvent.get(action="priority")
    assert changed.detail == {"from": "normal", "to": "high"}
    await console.sandbox.wait_for(lambda: any(
        u["ts"] == ts and "Laura" in u["text"] for u in console.sandbox.updated))
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "priority 1001 altísima")
    assert "La prioridad debe ser una de" in console.sandbox.responses[-1]["text"]


async def test_ticket_commands_remind_pending_and_find(console: Console) -> None:
    await console.customer_writes("La impresora no imprime")
    await console.card_of(1001)
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "remind 1001 15:00")
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "pending 1001")
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", "find impresora")
    await console.sandbox.slash_command("U0CLIENTE", AGENTS, "/ticket", "resolve 1001")
    answers = [r.get("text", "") for r in console.sandbox.responses]
    assert any("actualización" in a for a in answers)
    assert any("#1001" in a and "impresora" in a for a in answers)
    assert any("Solo los agentes" in a for a in answers)
    ticket = await Ticket.get(number=1001)
    assert ticket.status == "pending"
    # The promised update was planned (and, once the ticket waits on the customer, dropped).
    promised = [p for p in await ScheduledAction.filter(kind="progress").values_list(
        "payload", flat=True) if p.get("by") == "Pedro Soto"]
    assert len(promised) == 1 and await AuditEvent.filter(action="remind").exists()


async def test_an_admin_edits_a_text_in_a_slack_modal(console: Console) -> None:
    from gateway.store.models import Template

    # (real time here: the acknowledgement is "ack" or, out of hours, "ack_closed")
    key = "ack" if console.app.services.opening(console.app.services.clock.now())[0] \
        else "ack_closed"
    await console.sandbox.slash_command(PEDRO, AGENTS, "/ticket", f"template {key} es")
    await console.sandbox.wait_for(lambda: console.sandbox.views)
    view_id = console.sandbox.views[-1]["id"]
    refused = await console.sandbox.view_submission(PEDRO, view_id, {
        "subject": {"value": ""}, "body": {"value": "{{ ''.__class__ }}"}})
    assert refused.status_code == 200 and "not allowed" in refused.text
    assert await Template.all().count() == 0
    saved = await console.sandbox.view_submission(PEDRO, view_id, {
        "subject": {"value": ""}, "body": {"value": "Hola {{ customer.first_name }}, "
                                           "anotamos tu solicitud #{{ ticket.number }}."}})
    assert saved.status_code == 200
    stored = await Template.get(key=key, locale="es")
    assert stored.version == 1 and "Pedro Soto" in stored.created_by
    accepted = await console.customer_writes("Hola", address="556", name="Lucía")
    assert next(o for o in accepted.outbound if o.kind == key).text.startswith(
        "Hola Lucía, anotamos tu solicitud #1001.")
    # Someone who is not an admin cannot open it.
    await console.sandbox.slash_command("U0CLIENTE", AGENTS, "/ticket", "template ack es")
    assert len(console.sandbox.views) == 1
