"""The admin pages in a real browser: headless Chromium from Debian (`chromium`), driven by
Playwright with its executable path (no browser download). Carla signs in, edits the
acknowledgement, sees the live preview, saves, sees the next customer get it, reverts,
and is refused on a sandbox escape and on a form without its CSRF token. Screenshots of
the editor and the dashboard are kept in test-artifacts/.

Skipped with the reason when Chromium or Playwright is missing — unless
CENTRALITA_REQUIRE_BROWSER=1 (set by .ci/run), which makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.store.models import AdminUser
from gateway.store.models import Template as StoredTemplate
from gateway.web.auth import hash_password
from gateway.web.http import http_app, start_server
from tests.conftest import ROOT, World

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
PASSWORD = "una-clave-larga-1"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path}/centralita.sqlite3"


@pytest.fixture
async def site(world: World) -> AsyncIterator[str]:
    await AdminUser.create(username="carla", password_hash=hash_password(PASSWORD),
                           created_at=world.clock.now())
    # start_server returns once uvicorn listens (on a port of its choosing): the browser
    # never knocks before the door is there.
    server, task, port = await start_server(
        http_app(world.app.adapters, world.app.services), "127.0.0.1")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


@pytest.fixture
async def page(site: str) -> AsyncIterator[object]:
    missing = None
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing = "Playwright is not installed (pip install playwright)"
    if missing is None and not Path(CHROMIUM).exists():
        missing = "Chromium is not installed (apt-get install chromium)"
    if missing:
        if os.environ.get("CENTRALITA_REQUIRE_BROWSER") == "1":
            pytest.fail(missing + " and CENTRALITA_REQUIRE_BROWSER=1")
        pytest.skip(missing)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=["--no-sandbox"])
        tab = await browser.new_page(viewport={"width": 1200, "height": 900})
        tab.set_default_timeout(10_000)
        await tab.goto(site + "/admin/login")
        await tab.fill("input[name=username]", "carla")
        await tab.fill("input[name=password]", PASSWORD)
        await tab.click("button:has-text('Entrar')")
        await tab.wait_for_url("**/admin/")
        yield tab
        await browser.close()


async def test_carla_edits_previews_saves_and_reverts_in_the_browser(
        page, world: World, site: str) -> None:  # type: ignore[no-untyped-def]
    ARTIFACTS.mkdir(exist_ok=True)
    assert await page.locator("svg").count() == 4
    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    await page.goto(site + "/admin/templates/ack/es")
    new_body = "¡Hola {{ customer.first_name }}! Tu número es el #{{ ticket.number }}."
    await page.fill("#body", new_body)
    await page.click("#preview-button")
    # A selector, not wait_for_function: the pages' CSP forbids the eval that one needs.
    await page.wait_for_selector("#preview:has-text('Tu número es el #1042')")
    await page.screenshot(path=str(ARTIFACTS / "template-editor.png"), full_page=True)
    await page.click("#save")
    await page.wait_for_selector("#saved")
    accepted = await world.write("telegram", "555", "Hola", name="Lucía")
    ack = next(o for o in accepted.outbound if o.kind == "ack")
    assert ack.text == "¡Hola Lucía! Tu número es el #1001."

    # A sandbox escape is refused with a clear message and nothing is stored.
    await page.fill("#body", "{{ ''.__class__.__mro__ }}")
    await page.click("#save")
    await page.wait_for_selector("#error")
    assert "not allowed" in await page.inner_text("#error")
    assert await StoredTemplate.all().count() == 1

    # A form whose CSRF token was removed is refused.
    await page.fill("#body", "Hola")
    await page.evaluate("document.querySelector('#editor input[name=csrf]').remove()")
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.click("#save")
    assert (await posted.value).status == 403
    assert await StoredTemplate.all().count() == 1

    # Back to the shipped text's successor: revert to version 1 again after an edit.
    await page.goto(site + "/admin/templates/ack/es")
    await page.fill("#body", "Versión dos {{ ticket.number }}")
    await page.click("#save")
    await page.wait_for_selector("#saved")
    await page.click("tr:has(td:text-is('1')) button:has-text('Volver a esta versión')")
    await page.wait_for_selector("#saved")
    versions = await StoredTemplate.filter(key="ack", locale="es").order_by("version")
    assert [v.body for v in versions] == [new_body, "Versión dos {{ ticket.number }}",
                                          new_body]
