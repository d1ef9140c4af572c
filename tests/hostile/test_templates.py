"""A text that does too much work never stops the gateway.

Carla, the admin, types hostile Jinja into the studio: loops of ten billion turns, powers of
powers, a text that doubles itself, an answer of megabytes. Each preview (and each save) is
refused quickly with a message that names the limit, and while it is being handled María,
a customer, is acknowledged within a second and /healthz answers. A slow text stored
behind the studio's back only costs its customers the shipped acknowledgement.

The studio tests run through the admin HTTP app on SQLite and on PostgreSQL; the engine
tests at the end ask the engine directly, as the studio, the JSON API and Slack do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import httpx
import pytest

from gateway.store.models import AuditEvent
from gateway.store.models import Template as StoredTemplate
from gateway.texts.engine import RenderLimits, TemplateEngine, TemplateError, TemplateSource
from tests.conftest import World
from tests.test_admin import CSRF, PASSWORD, browser, sign_in  # noqa: F401 (fixture)

T = TypeVar("T")

# Hostile texts, each with the words its refusal must show (Spanish: the Spanish ack).
TEN_BILLION_TURNS = ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}"
                     "{% endfor %}")
POWER_TOWER = "{{ 99 ** 64 ** 64 ** 64 ** 64 }}"  # left-associative: (((99**64)**64)**64)**64
POWER_LOOP = ("{% set ns = namespace(x=9) %}{% for i in range(16) %}{% set ns.x = ns.x ** 3 %}"
              "{% endfor %}{{ ns.x }}")
DOUBLING = ("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
            "{% endfor %}{{ ns.s | length }}")
HUGE_ANSWER = "{% for i in range(100000) %}Hola {{ customer.first_name }}, {% endfor %}"
HOSTILE = [
    pytest.param(TEN_BILLION_TURNS, "pasos", id="nested-loops"),
    pytest.param(POWER_TOWER, "número", id="power-tower"),
    pytest.param(POWER_LOOP, "número", id="power-loop"),
    pytest.param(DOUBLING, "texto o una lista", id="doubling"),
    pytest.param(HUGE_ANSWER, "20000 caracteres", id="huge-answer"),
]
TOO_MUCH = "este texto hace demasiado trabajo"


@pytest.fixture
async def carla(browser: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    """Carla, signed in to the studio of this world's gateway."""
    assert (await sign_in(browser)).status_code == 303
    yield browser


async def editor_token(client: httpx.AsyncClient) -> str:
    return CSRF.search((await client.get("/admin/templates/ack/es?channel=")).text).group(1)


async def preview(client: httpx.AsyncClient, token: str, body: str) -> dict[str, str]:
    response = await client.post("/admin/templates/ack/es/preview",
                                 data={"subject": "", "body": body, "channel": ""},
                                 headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    return response.json()


async def within(seconds: float, started: float, work: Awaitable[T]) -> T:
    """`work`'s result, failing unless it is done `seconds` after `started` (a monotonic
    instant): a stalled event loop cannot time itself out, so the time is read after."""
    result = await asyncio.wait_for(work, timeout=30)
    took = time.monotonic() - started
    assert took < seconds, f"took {took:.2f} s"
    return result


async def maria_is_acknowledged(world: World, address: str = "777") -> Any:
    accepted = await world.write("telegram", address, "Hola, ¿llegó mi pedido?", name="María")
    await world.deliver()
    [ack] = world.sent_to("telegram", address)
    assert f"#{accepted.ticket_number}" in ack.text
    return ack


@pytest.mark.parametrize(("body", "limit"), HOSTILE)
async def test_while_carla_previews_a_hostile_text_maria_is_acknowledged_and_healthz_answers(
        carla: httpx.AsyncClient, world: World, body: str, limit: str) -> None:
    token = await editor_token(carla)
    started = time.monotonic()
    shown = asyncio.create_task(within(2, started, preview(carla, token, body)))
    health = asyncio.create_task(within(1, started, carla.get("/healthz")))
    await within(1, started, maria_is_acknowledged(world))
    assert (await health).json()["ok"] is True
    error = (await shown)["error"]
    assert TOO_MUCH in error and limit in error, error


@pytest.mark.parametrize(("body", "limit"), HOSTILE)
async def test_saving_a_hostile_text_is_refused_with_the_limit_and_stores_nothing(
        carla: httpx.AsyncClient, world: World, body: str, limit: str) -> None:
    token = await editor_token(carla)
    started = time.monotonic()
    saved = await within(2, started, carla.post("/admin/templates/ack/es", data={
        "subject": "", "body": body, "channel": "", "csrf": token}))
    assert saved.status_code == 400 and TOO_MUCH in saved.text and limit in saved.text
    assert await StoredTemplate.all().count() == 0


async def test_a_hostile_text_through_the_json_api_is_refused_as_422(
        carla: httpx.AsyncClient, world: World) -> None:
    refused = await carla.put("/api/templates/ack/en", auth=("carla", PASSWORD), json={
        "subject": "", "body": TEN_BILLION_TURNS, "channel": ""})
    assert refused.status_code == 422
    detail = refused.json()["detail"]
    assert detail["kind"] == "budget" and "this text does too much work" in detail["error"]
    assert await StoredTemplate.all().count() == 0


async def test_a_slow_text_stored_behind_the_studios_back_costs_customers_only_the_shipped_ack(
        world: World) -> None:
    # Somebody wrote a slow acknowledgement straight into the database (thirty million
    # turns: seconds of work). Nobody waits for it: María and then Pedro get the shipped
    # text at once, and the failure is on record for the admins.
    await StoredTemplate.create(
        key="ack", locale="es", channel="", version=1, subject="", created_by="db",
        body="{% for i in range(100000) %}{% for j in range(300) %}{% endfor %}{% endfor %}Hola")
    started = time.monotonic()
    await within(1, started, maria_is_acknowledged(world, "777"))
    started = time.monotonic()
    await within(1, started, maria_is_acknowledged(world, "778"))
    failed = await AuditEvent.filter(action="template.failed").order_by("id")
    assert len(failed) == 2 and all(TOO_MUCH in e.detail["error"] for e in failed)


async def test_a_text_longer_than_any_message_is_refused_before_it_is_compiled(
        carla: httpx.AsyncClient, world: World) -> None:
    token = await editor_token(carla)
    error = (await preview(carla, token, "{{ customer.name }} " * 5000))["error"]
    assert "es demasiado largo" in error and "20000" in error


async def test_a_text_nested_a_thousand_times_deep_is_refused_not_a_server_error(
        carla: httpx.AsyncClient, world: World) -> None:
    token = await editor_token(carla)
    for body in ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "{{ " + "-" * 9000 + "1 }}"):
        error = (await preview(carla, token, body))["error"]
        assert "nests too deeply" in error


# --- the engine, as every studio (web, JSON API, Slack) asks it ----------------------------


@pytest.fixture
def engine() -> TemplateEngine:
    return TemplateEngine(default_locale="es", timezone="America/Santiago")


@pytest.mark.parametrize(("body", "limit"), [
    # widths and paddings that ask for a gigabyte in one step
    ("{{ 'x' | center(1000000000) }}", "texto o una lista"),
    ("{{ 'x'.ljust(1000000000) }}", "texto o una lista"),
    ("{{ 'x'.zfill(1000000000) }}", "texto o una lista"),
    ("{{ '\t'.expandtabs(1000000000) }}", "texto o una lista"),
    ("{{ '{:>1000000000}'.format(1) }}", "texto o una lista"),
    ("{{ '{:>{w}}'.format(1, w=1000000000) }}", "texto o una lista"),
    ("{{ '%1000000000d' % 1 }}", "texto o una lista"),
    ("{{ '%*d' | format(1000000000, 1) }}", "texto o una lista"),
    ("{{ 'x' | indent(1000000000, true) }}", "texto o una lista"),
    # one short string repeated at every position of another
    ("{% set s = 'x' * 20000 %}{{ s | replace('x', s) | length }}", "texto o una lista"),
    ("{% set s = 'x' * 20000 %}{{ s.replace('x', s) | length }}", "texto o una lista"),
    ("{% set s = 'x' * 20000 %}{{ s.translate({120: s}) | length }}", "texto o una lista"),
    ("{% set s = 'x' * 20000 %}{{ range(100000) | join(s) | length }}", "texto o una lista"),
    ("{% set s = 'x' * 20000 %}{{ s.join(range(1000) | map('string')) | length }}",
     "texto o una lista"),
    ("{% set s = 'x' * 20000 %}{{ ('{0}' * 20000).format(s) | length }}", "texto o una lista"),
    ("{% set s = 'x' * 20000 %}{{ s | wordwrap(1, wrapstring=s) | length }}",
     "texto o una lista"),
    # a list filled, sliced or summed into a giant
    ("{{ [1] | batch(1000000000, 0) | list | length }}", "texto o una lista"),
    ("{{ [1] | slice(1000000000) | list | length }}", "texto o una lista"),
    ("{% set l = [1] * 1000 %}{{ ([l] * 10) | sum(start=[]) | length }}", "texto o una lista"),
    # output gathered off the page: a block, a macro, a filter block
    ("{% set s = 'x' * 20000 %}{% filter length %}{% for i in range(10) %}{{ s }}"
     "{% endfor %}{% endfilter %}", "texto o una lista"),
    ("{% set s = 'y' * 20000 %}{% macro m() %}{% for i in range(10) %}{{ s }}{% endfor %}"
     "{% endmacro %}{{ m() | length }}", "texto o una lista"),
    ("{% set s = 'z' * 20000 %}{% set t %}{% for i in range(10) %}{{ s }}{% endfor %}"
     "{% endset %}{{ t | length }}", "texto o una lista"),
    # new big values kept in memory: each costs steps by its size
    ("{% macro m() %}{% for i in range(50000) %}{{ 'y' * 20000 }}{% endfor %}{% endmacro %}"
     "{{ m() | length }}", "pasos"),
    # lists of lists printed: a thousand billion items
    ("{% set a = [0] * 1000 %}{% set b = [a] * 1000 %}{{ [b] * 1000 }}", "pasos"),
    # recursion that doubles
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
     "{{ f(60) }}", "pasos"),
    ("{% for x in [1, 2] recursive %}{% if loop.depth < 60 %}{{ loop([1, 2]) }}{% endif %}"
     "{% endfor %}", "pasos"),
    ("{% for x in [1] recursive %}{% if loop.depth == 1 %}{{ loop(range(100000)) }}{% endif %}"
     "{% endfor %}", "pasos"),
    # long pipelines of cheap filters over many items
    ("{{ range(100000) | map('string') | map('upper') | map('lower') | list | length }}",
     "pasos"),
    ("{% for i in range(100000) %}{{ range(100000) | sum }}{% endfor %}", "pasos"),
    # numbers too big to write
    ("{% set n = 10 ** 300 %}{{ n * n * n * n * n }}", "número"),
    ("{{ ('9' * 4000) | int * 10 }}", "número"),
])
def test_validate_refuses_every_way_of_doing_too_much_work_naming_the_limit(
        engine: TemplateEngine, body: str, limit: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError) as err:
        engine.validate("", body, "ack", locale="es")
    assert time.monotonic() - started < 1
    assert err.value.kind == "budget"
    assert TOO_MUCH in str(err.value) and limit in str(err.value), str(err.value)


def test_an_english_text_is_refused_in_english_naming_the_line(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError) as err:
        engine.validate("", "Hi\n\n" + TEN_BILLION_TURNS, "ack", locale="en")
    assert str(err.value).startswith("this text does too much work: more than 20000 steps")
    assert "line 3 of the body" in str(err.value) and err.value.line == 3


def test_a_text_that_runs_past_its_time_is_stopped_whatever_it_does() -> None:
    # A clock that jumps a second each time it is read: the first check is past the deadline.
    ticks = iter(range(10**6))
    slow = TemplateEngine(default_locale="es", timezone="America/Santiago",
                          limits=RenderLimits(clock=lambda: float(next(ticks))))
    with pytest.raises(TemplateError) as err:
        slow.validate("", "{% for i in range(5000) %}{% endfor %}", "ack", locale="es")
    assert err.value.kind == "budget" and "tarda más de 200 ms" in str(err.value)


def test_modest_loops_numbers_and_texts_still_render(engine: TemplateEngine) -> None:
    # What an admin may really write stays well inside every limit.
    body = ("{% for t in range(3) %}{{ loop.index }}{% if not loop.last %}, {% endif %}"
            "{% endfor %} · {{ 2 ** 100 }} · {{ '%05d' | format(ticket.number) }} · "
            "{{ '{:>6}'.format(ticket.number) }} · {{ (customer.name ~ ' ') * 2 }}"
            "{{ range(1000) | sum }}")
    source = TemplateSource("ack", "es", "", "", body)
    _, out = engine.render_source(source, engine.sample_context("ack"))
    assert out == ("1, 2, 3 · 1267650600228229401496703205376 · 01042 ·   1042 · "
                   "María González María González 499500")


def test_a_long_customer_message_still_goes_through_the_filters(engine: TemplateEngine) -> None:
    # Texts cost steps by their size (one per 256 characters), so a 50 000-character email
    # can still be cut short for the agents' card.
    text = "mi pedido no llegó " * 2700
    source = TemplateSource("new_ticket", "es", "", "", "{{ text | upper | truncate(27) }}")
    context = {**engine.sample_context("new_ticket"), "text": text}
    assert engine.render_source(source, context)[1] == "MI PEDIDO NO LLEGÓ MI..."
