"""The HTTP app's doors under attack: guessing passwords, oversized bodies on every inbound
route, absurd query values, and the headers every response must carry.

The admin pages, the JSON API and the survey links are driven in-process (httpx over
ASGI, on SQLite and on a real PostgreSQL server); the Telegram webhook and Slack's
events, interactions and commands arrive from the sandboxes over loopback, to the real
uvicorn server the gateway runs.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.slack.adapter import SlackAdapter
from adapters.telegram.adapter import TelegramAdapter
from gateway.app import App, assemble, running
from gateway.sandbox.slack import SlackSandbox
from gateway.sandbox.telegram import TelegramSandbox
from gateway.store.models import AdminUser, Message, Ticket
from gateway.store.models import Template as StoredTemplate
from gateway.web.auth import hash_password
from gateway.web.http import free_port, http_app
from tests.conftest import World, build_world, make_settings, santiago
from tests.mailservers import eventually
from tests.test_survey_links import _survey_to_ana

PASSWORD = "una-clave-larga-1"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
MIB = 1024 * 1024
TOO_BIG = "x" * (2 * MIB)  # twice the default [http] max_body
HERE, ELSEWHERE = ("127.0.0.1", 50000), ("203.0.113.7", 50000)


@dataclass
class Site:
    """The gateway's HTTP app, reached from two addresses (an attacker's and Carla's)."""

    world: World
    app: Any

    def client(self, address: tuple[str, int] = HERE, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app, client=address),
                                 base_url="https://soporte.example.test", **options)


async def open_site(world: World) -> Site:
    await AdminUser.create(username="carla", password_hash=hash_password(PASSWORD),
                           created_at=world.clock.now())
    return Site(world, http_app(world.app.adapters, world.app.services,
                                world.app.gateway.receive))


@pytest.fixture
async def site(db: str, tmp_path: Path) -> Site:
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              http={"public_url": "https://soporte.example.test/"})
    return await open_site(world)


async def sign_in(client: httpx.AsyncClient, password: str = PASSWORD,
                  username: str = "carla") -> httpx.Response:
    form = await client.get("/admin/login")
    return await client.post("/admin/login", data={
        "username": username, "password": password, "csrf": CSRF.search(form.text).group(1)})


# --- guessing passwords -----------------------------------------------------------------


async def test_the_eleventh_wrong_password_in_a_minute_gets_429_and_carla_still_gets_in(
        site: Site) -> None:
    """Someone tries passwords for carla from one address: ten wrong ones are refused
    as wrong, the eleventh with 429 and a Retry-After; even the right password is now
    refused from there. Carla, at her desk, signs in; a minute later the door reopens."""
    async with site.client(HERE) as attacker, site.client(ELSEWHERE) as carla:
        for n in range(10):
            assert (await sign_in(attacker, f"intento-{n}")).status_code == 401
        throttled = await sign_in(attacker, "intento-10")
        assert throttled.status_code == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 60
        assert "Demasiados intentos" in throttled.text
        assert (await sign_in(attacker, PASSWORD)).status_code == 429
        assert (await sign_in(carla)).status_code == 303
        site.world.clock.advance(minutes=1)
        assert (await sign_in(attacker, PASSWORD)).status_code == 303


async def test_the_refusal_is_in_english_for_an_english_browser(site: Site) -> None:
    async with site.client(HERE, headers={"Accept-Language": "en-GB,en;q=0.9"}) as browser:
        for n in range(10):
            await sign_in(browser, f"guess-{n}")
        throttled = await sign_in(browser, "guess-10")
    assert throttled.status_code == 429 and "Too many sign-in attempts" in throttled.text


async def test_the_api_basic_auth_is_throttled_the_same_way(site: Site) -> None:
    async with site.client(HERE) as attacker, site.client(ELSEWHERE) as script:
        for n in range(10):
            wrong = await attacker.get("/api/templates", auth=("carla", f"intento-{n}"))
            assert wrong.status_code == 401
        throttled = await attacker.get("/api/templates", auth=("carla", "intento-10"))
        assert throttled.status_code == 429 and "retry-after" in throttled.headers
        assert (await attacker.get("/api/templates", auth=("carla", PASSWORD))
                ).status_code == 429
        # Carla's script on another machine keeps working, call after call.
        for _ in range(15):
            assert (await script.get("/api/templates", auth=("carla", PASSWORD))
                    ).status_code == 200


async def test_the_form_and_the_api_share_one_count(site: Site) -> None:
    async with site.client(HERE) as attacker:
        for n in range(5):
            await sign_in(attacker, f"intento-{n}")
        for n in range(5):
            await attacker.get("/api/templates", auth=("carla", f"otro-{n}"))
        assert (await sign_in(attacker, "intento-final")).status_code == 429


async def test_guessing_many_user_names_from_one_address_is_throttled(site: Site) -> None:
    async with site.client(HERE) as attacker:
        for n in range(10):
            assert (await sign_in(attacker, PASSWORD, f"usuario{n}")).status_code == 401
        assert (await sign_in(attacker, PASSWORD, "usuario10")).status_code == 429


async def test_one_user_name_guessed_from_many_addresses_is_throttled_at_its_own_limit(
        site: Site) -> None:
    """A botnet spreads its guesses for carla over many addresses, each under its own
    limit: after 30 wrong passwords a minute, carla's name is refused from everywhere."""
    for n in range(30):
        async with site.client((f"198.51.100.{n}", 4000)) as bot:
            assert (await sign_in(bot, f"intento-{n}")).status_code == 401
    async with site.client(("198.51.100.200", 4000)) as bot:
        assert (await sign_in(bot, "intento-30")).status_code == 429


async def test_known_and_unknown_user_names_cost_one_scrypt_each_off_the_event_loop(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the name exists or not, a wrong sign-in runs the same password hash once,
    on a worker thread, and gets the same answer: time tells nothing and the loop that
    serves everyone else never waits for it."""
    calls: list[tuple[int, int, int, int]] = []
    real = hashlib.scrypt

    def spy(password: bytes, **options: Any) -> bytes:
        calls.append((threading.get_ident(), options["n"], options["r"], options["p"]))
        return real(password, **options)

    monkeypatch.setattr(hashlib, "scrypt", spy)
    loop_thread = threading.get_ident()
    async with site.client(HERE) as client:
        known = await sign_in(client, "mala-clave", "carla")
        known_calls, calls[:] = list(calls), []
        unknown = await sign_in(client, "mala-clave", "nadie")
        unknown_calls, calls[:] = list(calls), []
        api_unknown = await client.get("/api/templates", auth=("nadie", "mala-clave"))
        api_calls = list(calls)
    assert known.status_code == unknown.status_code == 401
    assert known.text == unknown.text
    assert api_unknown.status_code == 401
    for seen in (known_calls, unknown_calls, api_calls):
        assert len(seen) == 1
        thread, *parameters = seen[0]
        assert thread != loop_thread
        assert parameters == list(known_calls[0][1:])


async def test_the_health_check_is_answered_while_a_password_is_being_checked(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    """A password hash is held half-way; meanwhile the monitor's /healthz is answered,
    so the event loop that serves everyone is not the one hashing."""
    loop, hashing, release = asyncio.get_running_loop(), asyncio.Event(), threading.Event()
    held_until_released: list[bool] = []
    real = hashlib.scrypt

    def slow(password: bytes, **options: Any) -> bytes:
        loop.call_soon_threadsafe(hashing.set)
        held_until_released.append(release.wait(timeout=5))
        return real(password, **options)

    async with site.client(HERE) as attacker, site.client(ELSEWHERE) as monitor:
        form = await attacker.get("/admin/login")
        monkeypatch.setattr(hashlib, "scrypt", slow)
        attempt = asyncio.create_task(attacker.post("/admin/login", data={
            "username": "carla", "password": "intento",
            "csrf": CSRF.search(form.text).group(1)}))
        await asyncio.wait_for(hashing.wait(), 5)
        health = await asyncio.wait_for(monitor.get("/healthz"), 5)
        release.set()
        assert (await attempt).status_code == 401
    assert health.status_code == 200 and held_until_released == [True]


# --- absurd values ----------------------------------------------------------------------


@pytest.mark.parametrize("at", ["9999-12-31T23:59", "0001-01-01T00:00", "mañana",
                                "2026-13-01T10:00", "2026-11-22T25:00",
                                pytest.param("x" * 5000, id="5000-x")])
async def test_an_hours_moment_out_of_range_or_unreadable_gets_a_clear_400(
        site: Site, at: str) -> None:
    async with site.client() as browser:
        await sign_in(browser)
        page = await browser.get("/admin/hours", params={"at": at})
        assert page.status_code == 400
        assert "La fecha" in page.text and "AAAA-MM-DDTHH:MM" in page.text
        assert "x" * 100 not in page.text  # the wrong value is shown shortened
        good = await browser.get("/admin/hours", params={"at": "2026-11-22T22:30"})
        assert good.status_code == 200 and "cerrado" in good.text


# --- headers ----------------------------------------------------------------------------

PATHS = ("/healthz", "/admin/login", "/admin/", "/admin/templates/ack/es", "/admin/hours",
         "/api/templates", "/api/docs", "/survey/1001/5?t=00", "/no-such-page",
         "/admin/static/editor.js")


async def test_every_response_carries_the_security_headers(site: Site) -> None:
    async with site.client() as browser:
        for signed_in in (False, True):
            if signed_in:
                await sign_in(browser)
            for path in PATHS:
                response = await browser.get(path)
                headers = response.headers
                assert headers["x-content-type-options"] == "nosniff", path
                assert headers["referrer-policy"] in ("same-origin", "no-referrer"), path
                assert headers["strict-transport-security"].startswith("max-age="), path
                policy = headers["content-security-policy"]
                directives = dict(part.strip().partition(" ")[::2]
                                  for part in policy.split(";") if part.strip())
                assert directives["frame-ancestors"] == "'none'", (path, policy)
                scripts = directives.get("script-src", directives["default-src"])
                assert "'unsafe-inline'" not in scripts and "*" not in scripts, (path, policy)


async def test_without_https_there_is_no_strict_transport_security(
        db: str, tmp_path: Path) -> None:
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0))
    plain = await open_site(world)
    async with plain.client() as browser:
        response = await browser.get("/admin/login")
    assert "strict-transport-security" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_the_admin_pages_run_no_inline_script(site: Site) -> None:
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+\s*=|javascript:", re.I)
    async with site.client() as browser:
        pages = [await browser.get("/admin/login")]
        await sign_in(browser)
        for path in ("/admin/", "/admin/templates", "/admin/templates/ack/es",
                     "/admin/hours", "/api/docs"):
            pages.append(await browser.get(path))
        for page in pages:
            assert page.status_code == 200, page.url
            assert not inline.search(page.text), (page.url, inline.search(page.text))
        script = await browser.get("/admin/static/editor.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]


# --- oversized bodies: every inbound route of the in-process app ------------------------


def too_large(response: httpx.Response) -> bool:
    return response.status_code == 413 and "1048576" in response.text


async def chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    """A body sent chunked, without a Content-Length."""
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


async def test_an_oversized_sign_in_form_is_refused_unread(site: Site) -> None:
    async with site.client() as browser:
        form = await browser.get("/admin/login")
        token = CSRF.search(form.text).group(1)
        big = await browser.post("/admin/login", data={
            "username": "carla", "password": PASSWORD, "csrf": token, "relleno": TOO_BIG})
        assert too_large(big) and "set-cookie" not in big.headers
        assert (await sign_in(browser)).status_code == 303


async def test_oversized_editor_posts_store_nothing(site: Site) -> None:
    async with site.client() as browser:
        await sign_in(browser)
        token = CSRF.search((await browser.get("/admin/templates/ack/es")).text).group(1)
        form = {"subject": "", "channel": "", "csrf": token}
        for path in ("/admin/templates/ack/es", "/admin/templates/ack/es/preview",
                     "/admin/templates/ack/es/revert/1"):
            refused = await browser.post(path, data={**form, "body": TOO_BIG},
                                         headers={"X-CSRF-Token": token})
            assert too_large(refused), path
        chunked = await browser.post("/admin/templates/ack/es", content=chunks(2 * MIB),
                                     headers={"Content-Type":
                                              "application/x-www-form-urlencoded"})
        assert too_large(chunked)
        assert await StoredTemplate.all().count() == 0
        saved = await browser.post("/admin/templates/ack/es",
                                   data={**form, "body": "Hola {{ ticket.number }}"})
        assert saved.status_code == 200 and "versión 1" in saved.text
        out = await browser.post("/admin/logout", data={"csrf": token, "x": TOO_BIG})
        assert too_large(out)
        assert (await browser.get("/admin/")).status_code == 200  # still signed in


async def test_an_oversized_api_call_stores_nothing(site: Site) -> None:
    auth = ("carla", PASSWORD)
    async with site.client() as script:
        refused = await script.put("/api/templates/ack/es", auth=auth,
                                   json={"body": TOO_BIG})
        assert too_large(refused)
        chunked = await script.put("/api/templates/ack/es", auth=auth,
                                   content=chunks(3 * MIB),
                                   headers={"Content-Type": "application/json"})
        assert too_large(chunked)
        assert await StoredTemplate.all().count() == 0
        assert (await script.put("/api/templates/ack/es", auth=auth,
                                 json={"body": "Hola"})).json() == {"version": 1}


async def test_an_oversized_survey_answer_records_nothing(site: Site) -> None:
    links = await _survey_to_ana(site.world)
    token = re.search(r"t=([0-9a-f]+)", links["4"]).group(1)
    async with site.client(headers={"Accept-Language": "en"}) as ana:
        refused = await ana.post("/survey/1001/4", data={"t": token, "x": TOO_BIG})
        assert too_large(refused) and "too large" in refused.text
        assert (await Ticket.get(number=1001)).satisfaction is None
        assert (await ana.post("/survey/1001/4", data={"t": token})).status_code == 200
    assert (await Ticket.get(number=1001)).satisfaction == 4


async def test_a_smaller_limit_in_the_settings_is_kept(db: str, tmp_path: Path) -> None:
    world = await build_world(tmp_path, santiago(2026, 11, 23, 10, 0),
                              http={"max_body": 4096})
    small = await open_site(world)
    async with small.client() as script:
        refused = await script.put("/api/templates/ack/es", auth=("carla", PASSWORD),
                                   json={"body": "x" * 5000})
        assert refused.status_code == 413 and "4096" in refused.text
        fits = await script.put("/api/templates/ack/es", auth=("carla", PASSWORD),
                                json={"body": "x" * 3000})
    assert fits.json() == {"version": 1}


# --- oversized bodies from the platforms, to the real server ------------------------------

AGENTS, PEDRO, MARIA, LUCIA = "C0AGENTS", "U0PEDRO", 5551001, 5551002


@dataclass
class Platforms:
    """The gateway on a real port, with Telegram by webhook and Slack's Events API."""

    app: App
    telegram: TelegramSandbox
    slack: SlackSandbox
    url: str


@pytest.fixture
async def platforms(db: str, tmp_path: Path) -> AsyncIterator[Platforms]:
    telegram, slack = TelegramSandbox(webhook_attempts=1), SlackSandbox()
    await telegram.start()
    await slack.start()
    slack.add_user(PEDRO, "Pedro Soto")
    slack.add_user("U0ROSA", "Rosa Cliente")
    slack.add_channel(AGENTS, [PEDRO])
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    slack.set_gateway(url + "/slack/events")
    settings = make_settings(
        tmp_path, http={"public_url": url},
        agents={"console": "slack", "channel": AGENTS, "undo_seconds": 0},
        outbox={"poll_interval": "0.1s", "backoff_base": "0.2s"},
        channels={"slack": {"bot_token": slack.bot_token, "signing_secret": slack.signing_secret,
                            "base_url": slack.api_url},
                  "telegram": {"token": telegram.token, "base_url": telegram.base_url,
                               "base_file_url": telegram.base_file_url, "mode": "webhook",
                               "webhook_secret": "s3cret-hook"}})
    app = assemble(settings, adapters={"slack": SlackAdapter.from_settings(settings),
                                       "telegram": TelegramAdapter.from_settings(settings)})
    async with running(app, listen=f"127.0.0.1:{port}"):
        yield Platforms(app, telegram, slack, url)
    await slack.stop()
    await telegram.stop()


async def stored(channel: str) -> int:
    """Customers' messages stored from `channel`."""
    return await Message.filter(ticket__channel=channel, direction="in").count()


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@SQLITE_ONLY
async def test_a_ten_megabyte_telegram_update_gets_413_and_the_next_one_is_stored(
        platforms: Platforms) -> None:
    telegram = platforms.telegram
    telegram.inject_text(MARIA, "x" * (10 * MIB), first_name="María")
    await eventually(lambda: telegram.webhook_log)
    assert telegram.webhook_log[0]["status"] == 413
    assert await stored("telegram") == 0
    telegram.inject_text(LUCIA, "Hola, mi pedido no llegó", first_name="Lucía")
    ack = (await telegram.wait_sent(1))[0]
    assert "#1001" in ack["text"] and await stored("telegram") == 1


@SQLITE_ONLY
async def test_an_oversized_telegram_update_without_a_length_is_cut_off(
        platforms: Platforms) -> None:
    async with httpx.AsyncClient(base_url=platforms.url) as sender:
        refused = await sender.post("/telegram/webhook", content=chunks(2 * MIB), headers={
            "X-Telegram-Bot-Api-Secret-Token": "s3cret-hook",
            "Content-Type": "application/json"})
        assert too_large(refused)
        assert (await sender.get("/healthz")).status_code == 200
    assert await stored("telegram") == 0


@SQLITE_ONLY
async def test_a_signed_ten_megabyte_slack_event_gets_413_and_the_next_one_is_stored(
        platforms: Platforms) -> None:
    slack = platforms.slack
    refused = await slack.message("D0ROSA", "U0ROSA", "x" * (10 * MIB), channel_type="im")
    assert too_large(refused)
    assert await stored("slack") == 0
    normal = await slack.message("D0ROSA", "U0ROSA", "Hola, necesito ayuda",
                                 channel_type="im")
    assert normal.status_code == 200
    await eventually(lambda: stored("slack"))
    assert (await Ticket.get(number=1001)).channel == "slack"


@SQLITE_ONLY
async def test_oversized_slack_buttons_and_commands_change_nothing(
        platforms: Platforms) -> None:
    slack = platforms.slack
    await slack.message("D0ROSA", "U0ROSA", "Hola, necesito ayuda", channel_type="im")
    await eventually(lambda: Ticket.get_or_none(number=1001))
    pressed = await slack.block_action(PEDRO, AGENTS, "1700000000.000100", "resolve",
                                       "1001" + " " * (2 * MIB))
    assert too_large(pressed)
    command = await slack.slash_command(PEDRO, AGENTS, "/ticket", "resolve 1001 " + TOO_BIG)
    assert too_large(command)
    assert (await Ticket.get(number=1001)).status != "resolved"
    done = await slack.slash_command(PEDRO, AGENTS, "/ticket", "resolve 1001")
    assert done.status_code == 200
    await eventually(_resolved(1001))


def _resolved(number: int) -> Callable[[], Any]:
    async def check() -> bool:
        return (await Ticket.get(number=number)).status == "resolved"
    return check
