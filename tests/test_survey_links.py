"""The survey by email: one signed link per score, confirmed on a page of ours.

Ana wrote by email; mail has no buttons, so her survey carries five links. Her mail
provider's scanner opens them all (that must record nothing); she presses the button on
the page and her score is kept, once. Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import re

import httpx

from adapters.email.compose import compose
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from gateway.core.commands import Resolve
from gateway.store.models import AuditEvent, Ticket
from gateway.web.http import http_app
from tests.conftest import World, build_world, santiago

ANA = "ana@example.test"


async def _world(tmp_path) -> World:  # type: ignore[no-untyped-def]
    return await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                             http={"public_url": "https://soporte.example.test/"})


def _client(world: World) -> httpx.AsyncClient:
    app = http_app(world.app.adapters, world.app.services, world.app.gateway.receive)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                             base_url="https://soporte.example.test")


async def _survey_to_ana(world: World) -> dict[str, str]:
    first = await world.write("email", ANA, "Hola, no puedo entrar a mi cuenta", name="Ana")
    await world.agent_does(Resolve, first.ticket_number)
    await world.app.scheduler.run_due()  # the resolution message
    world.clock.advance(hours=1)
    await world.app.scheduler.run_due()  # the survey
    await world.deliver()
    survey = next(m for m in world.sent_to("email") if m.kind == "survey")
    assert survey.survey is not None and survey.survey.ticket_number == 1001
    return dict(survey.survey.links)


async def test_anas_survey_mail_carries_a_link_per_score(db: str, tmp_path) -> None:
    world = await _world(tmp_path)
    links = await _survey_to_ana(world)
    assert sorted(links) == ["1", "2", "3", "4", "5"]
    assert all(u.startswith("https://soporte.example.test/survey/1001/") for u in links.values())
    survey = next(m for m in world.sent_to("email") if m.kind == "survey")
    box = MailboxSettings(name="soporte", address="soporte@tienda.example",
                          imap_host="imap.tienda.example", imap_user="soporte",
                          smtp_host="127.0.0.1")
    mail, _ = compose(survey, mailbox=box, settings=EmailSettings(), tokens=ReplyTokens(""),
                      now=world.clock.now())
    text = mail.get_body(("plain",)).get_content()
    assert "Responde con un número, o elige aquí:" in text and f"4: {links['4']}" in text
    page = mail.get_body(("html",)).get_content()
    assert f'<a href="{links["5"].replace("&", "&amp;")}">' in page


async def test_opening_a_link_asks_and_only_the_button_records_the_score(
        db: str, tmp_path) -> None:
    world = await _world(tmp_path)
    links = await _survey_to_ana(world)
    async with _client(world) as client:
        opened = await client.get(links["4"])  # also what a mail scanner does
        assert opened.status_code == 200 and "4/5" in opened.text
        assert (await Ticket.get(number=1001)).satisfaction is None
        token = re.search(r'name="t" value="([0-9a-f]+)"', opened.text).group(1)
        pressed = await client.post("/survey/1001/4", data={"t": token})
        assert pressed.status_code == 200 and "Gracias" in pressed.text
        assert (await Ticket.get(number=1001)).satisfaction == 4
        # Pressing again, or another score's link, keeps her first answer.
        await client.post("/survey/1001/4", data={"t": token})
        other = re.search(r"t=([0-9a-f]+)", links["1"]).group(1)
        await client.post("/survey/1001/1", data={"t": other})
    assert (await Ticket.get(number=1001)).satisfaction == 4
    await world.deliver()
    assert [m.kind for m in world.sent_to("email")].count("survey_thanks") == 1
    assert await AuditEvent.filter(action="survey.repeat").exists()


async def test_a_forged_or_borrowed_link_is_refused(db: str, tmp_path) -> None:
    world = await _world(tmp_path)
    links = await _survey_to_ana(world)
    token = re.search(r"t=([0-9a-f]+)", links["5"]).group(1)
    async with _client(world) as client:
        assert (await client.get("/survey/1001/5?t=" + "0" * 32)).status_code == 403
        assert (await client.post("/survey/1001/1", data={"t": token})).status_code == 403
        assert (await client.post("/survey/1002/5", data={"t": token})).status_code == 403
        assert (await client.get("/survey/1001/9?t=" + token)).status_code == 403
    assert (await Ticket.get(number=1001)).satisfaction is None


async def test_without_a_public_url_the_survey_has_no_links(world: World) -> None:
    first = await world.write("email", ANA, "Hola", name="Ana")
    await world.agent_does(Resolve, first.ticket_number)
    await world.app.scheduler.run_due()
    world.clock.advance(hours=1)
    await world.app.scheduler.run_due()
    await world.deliver()
    survey = next(m for m in world.sent_to("email") if m.kind == "survey")
    assert survey.survey is not None and not survey.survey.links
