"""The admin pages and API, through the gateway's HTTP app (httpx in-process): Carla, the
team's admin, signs in, edits the acknowledgement, previews it, saves, sees the next
customer get it, reverts; forms without a CSRF token and sandbox escapes are refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.store.models import AdminUser
from gateway.store.models import Template as StoredTemplate
from gateway.web.admin.session import COOKIE
from gateway.web.auth import hash_password, verify_password
from gateway.web.http import http_app
from tests.conftest import World
from tests.test_cli import Run, centralita, write_settings

PASSWORD = "una-clave-larga-1"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
async def browser(world: World) -> AsyncIterator[httpx.AsyncClient]:
    await AdminUser.create(username="carla", password_hash=hash_password(PASSWORD),
                           created_at=world.clock.now())
    app = http_app(world.app.adapters, world.app.services)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://admin.test") as client:
        yield client


async def sign_in(client: httpx.AsyncClient, password: str = PASSWORD) -> httpx.Response:
    form = await client.get("/admin/login")
    token = CSRF.search(form.text).group(1)
    return await client.post("/admin/login", data={
        "username": "carla", "password": password, "csrf": token})


def csrf_of(page: httpx.Response) -> str:
    return CSRF.search(page.text).group(1)


async def test_nothing_is_shown_before_signing_in_and_a_wrong_password_is_refused(
        browser: httpx.AsyncClient) -> None:
    assert (await browser.get("/admin/")).status_code == 303
    assert (await sign_in(browser, "wrong")).status_code == 401
    signed = await sign_in(browser)
    assert signed.status_code == 303 and signed.headers["location"] == "/admin/"
    cookie = signed.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    dashboard = await browser.get("/admin/")
    assert dashboard.status_code == 200 and dashboard.text.count("<svg") == 4


async def test_a_login_form_without_its_csrf_token_is_refused(
        browser: httpx.AsyncClient) -> None:
    await browser.get("/admin/login")
    refused = await browser.post("/admin/login", data={"username": "carla",
                                                       "password": PASSWORD})
    assert refused.status_code == 403


async def test_carla_edits_the_acknowledgement_and_the_next_customer_gets_it(
        browser: httpx.AsyncClient, world: World) -> None:
    await sign_in(browser)
    editor = await browser.get("/admin/templates/ack/es?channel=")
    assert editor.status_code == 200 and "customer" in editor.text  # the variables list
    token = csrf_of(editor)
    body = ("¡Hola {{ customer.first_name }}! Recibimos tu mensaje: solicitud "
            "#{{ ticket.number }}. Te respondemos {{ due_at | when }}.")
    preview = await browser.post("/admin/templates/ack/es/preview",
                                 data={"subject": "", "body": body, "channel": ""},
                                 headers={"X-CSRF-Token": token})
    assert "¡Hola María! Recibimos tu mensaje: solicitud #1042" in preview.json()["body"]
    saved = await browser.post("/admin/templates/ack/es", data={
        "subject": "Recibimos tu solicitud [#{{ ticket.number }}]", "body": body,
        "channel": "", "csrf": token})
    assert saved.status_code == 200 and "versión 1" in saved.text
    # No restart: the next customer gets the new text.
    accepted = await world.write("telegram", "555", "Hola", name="Lucía Soto")
    ack = next(o for o in accepted.outbound if o.kind == "ack")
    assert ack.text.startswith("¡Hola Lucía! Recibimos tu mensaje: solicitud #1001.")
    # Another edit, then back to version 1.
    await browser.post("/admin/templates/ack/es", data={
        "subject": "", "body": "Otra versión {{ ticket.number }}", "channel": "",
        "csrf": token})
    reverted = await browser.post("/admin/templates/ack/es/revert/1",
                                  data={"channel": "", "csrf": token})
    assert "versión 3" in reverted.text
    versions = await StoredTemplate.filter(key="ack", locale="es").order_by("version")
    assert [v.version for v in versions] == [1, 2, 3] and versions[2].body == body
    assert "carla" in versions[2].created_by


async def test_a_sandbox_escape_or_a_missing_csrf_token_changes_nothing(
        browser: httpx.AsyncClient) -> None:
    await sign_in(browser)
    token = csrf_of(await browser.get("/admin/templates/ack/es"))
    escape = await browser.post("/admin/templates/ack/es", data={
        "subject": "", "body": "{{ ''.__class__.__mro__ }}", "channel": "", "csrf": token})
    assert escape.status_code == 400 and "not allowed" in escape.text
    forged = await browser.post("/admin/templates/ack/es", data={
        "subject": "", "body": "Hola", "channel": ""})
    assert forged.status_code == 403
    broken = await browser.post("/admin/templates/ack/es", data={
        "subject": "", "body": "Hola\n{% if %}", "channel": "", "csrf": token})
    assert broken.status_code == 400 and "line 2" in broken.text
    assert await StoredTemplate.all().count() == 0


async def test_the_hours_page_shows_what_a_customer_would_receive(
        browser: httpx.AsyncClient) -> None:
    await sign_in(browser)
    page = await browser.get("/admin/hours", params={"at": "2026-11-22T22:30"})
    assert page.status_code == 200 and "cerrado" in page.text
    assert "lunes a viernes" in page.text and "Retomamos la atención" in page.text
    assert "25/12/2026" in page.text  # Christmas, a public holiday in Chile, is listed


async def test_the_json_api_with_basic_auth(browser: httpx.AsyncClient) -> None:
    assert (await browser.get("/api/templates")).status_code == 401
    auth = ("carla", PASSWORD)
    listed = await browser.get("/api/templates", auth=auth)
    assert listed.status_code == 200
    assert any(t["key"] == "ack" and t["locale"] == "es" and t["version"] == 0
               for t in listed.json())
    bad = await browser.put("/api/templates/ack/es", auth=auth,
                            json={"body": "{{ cliente }}"})
    assert bad.status_code == 422 and "cliente" in bad.text
    good = await browser.put("/api/templates/ack/es", auth=auth,
                             json={"body": "Hola {{ customer.name }}"})
    assert good.json() == {"version": 1}
    schema = await browser.get("/api/openapi.json", auth=auth)
    assert "/api/templates/{key}/{locale}" in schema.json()["paths"]


async def test_the_api_documentation_is_only_for_signed_in_admins(
        browser: httpx.AsyncClient) -> None:
    """A stranger gets the sign-in page for /api/docs and 401 for the schema; Carla,
    signed in, reads both, and the docs page runs no inline script."""
    docs = await browser.get("/api/docs")
    assert docs.status_code == 303 and docs.headers["location"] == "/admin/login"
    assert (await browser.get("/api/openapi.json")).status_code == 401
    assert (await browser.get("/api/redoc")).status_code in (303, 404)
    await sign_in(browser)
    docs = await browser.get("/api/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert not re.search(r"<script>|<script[^>]*>[^<]", docs.text)  # only src= scripts
    assert "'unsafe-inline'" not in docs.headers["content-security-policy"].split(
        "script-src", 1)[1].split(";", 1)[0]
    schema = await browser.get("/api/openapi.json")
    assert "/api/templates" in schema.json()["paths"]


# --- sessions end when they should -----------------------------------------------------


def cookie_of(signed: httpx.Response) -> str:
    return signed.cookies[COOKIE]


async def stranger_with(browser: httpx.AsyncClient, cookie: str) -> httpx.Response:
    """Someone who kept a copy of the cookie opens the dashboard in another browser."""
    async with httpx.AsyncClient(transport=browser._transport, base_url="http://admin.test",
                                 cookies={COOKIE: cookie}) as other:
        return await other.get("/admin/")


async def test_after_carla_signs_out_her_old_cookie_opens_nothing(
        browser: httpx.AsyncClient) -> None:
    kept = cookie_of(await sign_in(browser))
    assert (await stranger_with(browser, kept)).status_code == 200
    page = await browser.get("/admin/")
    out = await browser.post("/admin/logout", data={"csrf": csrf_of(page)})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    refused = await stranger_with(browser, kept)
    assert refused.status_code == 303 and refused.headers["location"] == "/admin/login"
    # A form posted with the old cookie and its token changes nothing either.
    async with httpx.AsyncClient(transport=browser._transport, base_url="http://admin.test",
                                 cookies={COOKIE: kept}) as other:
        forged = await other.post("/admin/templates/ack/es", data={
            "subject": "", "body": "Hola", "channel": "", "csrf": csrf_of(page)})
    assert forged.status_code == 303 and await StoredTemplate.all().count() == 0
    # Signing in again works, with a new cookie.
    again = await sign_in(browser)
    assert again.status_code == 303 and cookie_of(again) != kept


async def test_signing_out_ends_carlas_sessions_in_every_browser(
        browser: httpx.AsyncClient) -> None:
    elsewhere = cookie_of(await sign_in(browser))  # her laptop
    await sign_in(browser)                         # her phone, signed in later
    page = await browser.get("/admin/")
    await browser.post("/admin/logout", data={"csrf": csrf_of(page)})
    assert (await stranger_with(browser, elsewhere)).status_code == 303


def admin_cli(db: str, tmp_path: Path, *args: str, password: str = "") -> Run:
    """`centralita admin …` run as a separate process against the test's database `db`."""
    settings = write_settings(tmp_path)
    return centralita(tmp_path, "admin", *args, settings=settings,
                      env={"CENTRALITA_DATABASE__URL": db, "NEW_PW": password})


async def test_a_new_password_set_from_the_cli_ends_the_old_sessions(
        browser: httpx.AsyncClient, db: str, tmp_path: Path) -> None:
    kept = cookie_of(await sign_in(browser))
    run = admin_cli(db, tmp_path, "create", "carla", "--password-env", "NEW_PW",
                    password="otra-clave-mas-larga")
    assert run.code == 0 and "new password set for carla" in run.out, run
    assert (await stranger_with(browser, kept)).status_code == 303
    assert (await browser.get("/admin/")).status_code == 303
    assert (await sign_in(browser)).status_code == 401           # the old password
    assert (await sign_in(browser, "otra-clave-mas-larga")).status_code == 303


async def test_removing_carla_from_the_cli_ends_her_sessions_and_her_api_access(
        browser: httpx.AsyncClient, db: str, tmp_path: Path) -> None:
    kept = cookie_of(await sign_in(browser))
    run = admin_cli(db, tmp_path, "remove", "carla")
    assert run.code == 0 and "carla removed" in run.out, run
    assert await AdminUser.filter(username="carla").count() == 0
    assert (await stranger_with(browser, kept)).status_code == 303
    assert (await browser.get("/api/templates", auth=("carla", PASSWORD))).status_code == 401
    assert (await sign_in(browser)).status_code == 401
    # Removing someone who is not an admin says so, and changes nothing.
    missing = admin_cli(db, tmp_path, "remove", "pedro")
    assert missing.code == 2 and "no admin named 'pedro'" in missing.err, missing


async def test_an_admin_made_before_session_versions_keeps_her_password(
        tmp_path: Path) -> None:
    """Upgrading a database whose admin_user table has rows: migration 0005 gives each
    admin session version 1, and her password still signs her in."""
    from tortoise import Tortoise, connections
    from tortoise.migrations.api import migrate as migrate_to

    from gateway.store.db import init_db, migrate, tortoise_config

    url = f"sqlite://{tmp_path}/old.sqlite3"
    await migrate_to(config=tortoise_config(url), target="models.0004_ticket_lookups")
    await connections.get("default").execute_query(
        "INSERT INTO admin_user (username, password_hash, created_at) VALUES (?, ?, ?)",
        ["carla", hash_password(PASSWORD), "2026-11-23 10:00:00+00:00"])
    await Tortoise.close_connections()
    await migrate(url)
    await Tortoise.close_connections()
    await init_db(url)
    try:
        carla = await AdminUser.get(username="carla")
        assert carla.session_version == 1
        assert verify_password(PASSWORD, carla.password_hash)
    finally:
        await Tortoise.close_connections()
