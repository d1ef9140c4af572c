"""Templates: shipped defaults, admin overrides, the sandbox and the locale-aware filters.

Written as short transcripts: who writes, on which channel, when, and what they get back.
All times are in Santiago (the engine's timezone); Monday 23 November 2026 is a Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.texts.engine import (
    Rendered,
    RenderLimits,
    TemplateEngine,
    TemplateError,
    TemplateSource,
)

SCL = ZoneInfo("America/Santiago")
SAT_2230 = datetime(2026, 11, 21, 22, 30, tzinfo=SCL)
SUN_2230 = datetime(2026, 11, 22, 22, 30, tzinfo=SCL)
MON_0900 = datetime(2026, 11, 23, 9, 0, tzinfo=SCL)
TUE_1000 = datetime(2026, 11, 24, 10, 0, tzinfo=SCL)


class MemoryStore:
    """The admin's edited templates, kept in a dict; records every lookup."""

    def __init__(self, *sources: TemplateSource, broken: bool = False) -> None:
        self.sources = {(s.key, s.locale, s.channel): s for s in sources}
        self.lookups: list[tuple[str, str, str]] = []
        self.broken = broken

    async def current(self, key: str, locale: str, channel: str) -> TemplateSource | None:
        self.lookups.append((key, locale, channel))
        if self.broken:
            raise ConnectionError("database is down")
        return self.sources.get((key, locale, channel))


class StoppedClock:
    """A clock that stands still and counts how often it is read."""

    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return 0.0


def stored(key: str, body: str, *, locale: str = "es", channel: str = "",
           subject: str = "Editado [#{{ ticket.number }}]") -> TemplateSource:
    return TemplateSource(key, locale, channel, subject, body, version=3)


@pytest.fixture
def engine() -> TemplateEngine:
    return TemplateEngine(default_locale="es", timezone="America/Santiago")


def context(engine: TemplateEngine, key: str, *, locale: str = "es", channel: str = "telegram",
            now: datetime = MON_0900, **overrides: object) -> dict:
    ctx = engine.sample_context(key, locale=locale, channel=channel, now=now)
    ctx.update(overrides)
    return ctx


# --- every shipped default --------------------------------------------------------------------


def test_spanish_and_english_ship_the_same_keys_including_every_message_the_gateway_sends():
    engine = TemplateEngine()
    expected = {"ack", "ack_closed", "progress", "resolved", "survey", "survey_thanks",
                "follow_up", "pending_reminder", "closed", "status", "start", "agent_reply",
                "new_ticket", "delivery_failed", "sla_warning", "digest",
                # the agents' console: its card, prompts, answers and labels
                "card", "card_actions", "reply_held", "undo_actions", "mirror",
                "console_done", "console_refused", "console_help", "template_form",
                "button_thanks"}
    assert set(engine.keys()) == expected
    for locale in ("es", "en"):
        assert {s.key for s in engine.defaults() if s.locale == locale} == expected


@pytest.mark.parametrize("source", TemplateEngine().defaults(),
                         ids=lambda s: f"{s.key}-{s.locale}-{s.channel or 'any'}")
def test_every_shipped_default_validates_and_renders_with_its_sample(source: TemplateSource):
    engine = TemplateEngine(timezone="America/Santiago")
    engine.validate(source.subject, source.body, source.key, locale=source.locale,
                    channel=source.channel)
    for now in (SAT_2230, MON_0900):
        ctx = engine.sample_context(source.key, locale=source.locale,
                                    channel=source.channel or "slack", now=now)
        subject, body = engine.render_source(source, ctx, now=now)
        assert body.strip() and "{{" not in body and "{%" not in body
        assert "\n" not in subject and "\r" not in subject
        if source.key not in ("start", "status", "survey_thanks", *LABELS):
            assert "1042" in body or "1042" in subject


# Texts that name no ticket: the console's buttons, labels and headings, a button's thanks.
LABELS = ("card_actions", "reply_held", "undo_actions", "mirror", "console_help",
          "template_form", "button_thanks")


def test_variables_are_documented_per_key(engine: TemplateEngine):
    assert "text" in engine.variables("agent_reply") and "agent" in engine.variables("agent_reply")
    assert "reason" in engine.variables("delivery_failed")
    assert "score" in engine.variables("survey_thanks")
    assert "tickets" in engine.variables("status") and "ticket" not in engine.variables("status")
    assert "agent" not in engine.variables("ack") and "due_at" in engine.variables("ack")
    shipped_keys = engine.keys()
    assert all(desc for key in shipped_keys for desc in engine.variables(key).values())


# --- acknowledgements -------------------------------------------------------------------------


async def test_maria_writes_on_telegram_saturday_night_and_hears_when_we_open_on_monday(engine):
    # María writes on Telegram at 22:30 on Saturday; the out-of-hours acknowledgement names her
    # ticket number, our opening hours and "el lunes 23 de noviembre a las 9:00".
    ctx = context(engine, "ack_closed", now=SAT_2230, open_now=False, next_opening=MON_0900,
                  due_at=MON_0900 + timedelta(hours=2))
    out = await engine.render("ack_closed", locale="es", channel="telegram", context=ctx,
                              now=SAT_2230)
    assert isinstance(out, Rendered) and not out.fell_back
    assert "#1042" in out.body
    assert "Nuestro horario de atención: lunes a viernes, de 9:00 a 19:00 hrs." in out.body
    assert "el lunes 23 de noviembre a las 9:00" in out.body
    assert "antes de las 11:00" in out.body
    assert "/estado" in out.body


async def test_maria_writes_sunday_at_2230_and_we_say_we_are_back_tomorrow_at_9(engine):
    ctx = context(engine, "ack_closed", now=SUN_2230, open_now=False, next_opening=MON_0900,
                  due_at=MON_0900 + timedelta(hours=2))
    out = await engine.render("ack_closed", locale="es", channel="telegram", context=ctx,
                              now=SUN_2230)
    assert "Retomamos la atención mañana a las 9:00" in out.body


async def test_telegram_gets_its_own_ack_naming_the_status_command(engine):
    ctx = context(engine, "ack", channel="telegram", status_command="/estado",
                  due_at=MON_0900 + timedelta(minutes=75))
    out = await engine.render("ack", locale="es", channel="telegram", context=ctx, now=MON_0900)
    assert out.source == engine.default("ack", "es", "telegram")
    assert "Tu número de solicitud es el #1042" in out.body
    assert "Puedes esperar nuestra respuesta hoy a las 10:15." in out.body
    assert "escribe /estado" in out.body


async def test_john_emails_in_english_and_is_told_to_reply_keeping_the_number_in_the_subject(
        engine):
    ctx = context(engine, "ack", locale="en", channel="email",
                  due_at=MON_0900 + timedelta(days=1))
    out = await engine.render("ack", locale="en", channel="email", context=ctx, now=MON_0900)
    assert out.source.channel == "email" and out.source.locale == "en"
    assert out.subject == "We received your request [#1042]"
    assert "You can expect an answer tomorrow at 9:00 AM." in out.body
    assert "reply to this email keeping\n[#1042] in the subject" in out.body


async def test_slack_has_no_ack_override_so_the_generic_text_is_used(engine):
    ctx = context(engine, "ack", channel="slack", status_command="")
    out = await engine.render("ack", locale="es", channel="slack", context=ctx, now=MON_0900)
    assert out.source == engine.default("ack", "es", "")
    assert out.source.channel == ""
    assert "responde a este mensaje" in out.body


def test_default_prefers_the_channel_override_and_inherits_its_subject(engine):
    assert engine.default("ack", "es", "telegram").channel == "telegram"
    assert engine.default("ack", "es", "telegram").subject == engine.default("ack", "es").subject
    assert engine.default("progress", "es", "telegram").channel == ""


@pytest.mark.parametrize(("asked", "used"), [
    ("fr", "es"), (None, "es"), ("", "es"), ("es-CL", "es"), ("es_AR", "es"), ("EN_us", "en"),
])
async def test_unknown_or_regional_locales_fall_back_sensibly(engine, asked, used):
    out = await engine.render("closed", locale=asked, channel="email",
                              context=context(engine, "closed"), now=MON_0900)
    assert out.source.locale == used


def test_unknown_key_is_refused(engine):
    with pytest.raises(TemplateError) as err:
        engine.default("akc", "es")
    assert err.value.kind == "unknown_key" and "akc" in str(err.value)


# --- the admin's stored templates -------------------------------------------------------------


async def test_store_lookup_order_channel_then_generic_then_shipped(engine):
    tg = stored("ack", "Telegram editado #{{ ticket.number }}", channel="telegram")
    generic = stored("ack", "Genérico editado #{{ ticket.number }}")
    store = MemoryStore(tg, generic)
    engine.store = store
    ctx = context(engine, "ack")

    out = await engine.render("ack", locale="es", channel="telegram", context=ctx, now=MON_0900)
    assert out.body == "Telegram editado #1042" and out.source is tg

    out = await engine.render("ack", locale="es", channel="email", context=ctx, now=MON_0900)
    assert out.body == "Genérico editado #1042" and out.source is generic
    assert store.lookups[-2:] == [("ack", "es", "email"), ("ack", "es", "")]

    out = await engine.render("ack", locale="en", channel="telegram", context=ctx, now=MON_0900)
    assert out.source == engine.default("ack", "en", "telegram") and not out.fell_back
    assert store.lookups[-2:] == [("ack", "en", "telegram"), ("ack", "en", "")]


async def test_a_generic_stored_template_beats_the_shipped_channel_override(engine):
    engine.store = MemoryStore(stored("ack", "Hola {{ customer.first_name }}"))
    out = await engine.render("ack", locale="es", channel="telegram",
                              context=context(engine, "ack"), now=MON_0900)
    assert out.body == "Hola María" and out.source.version == 3


@pytest.mark.parametrize(("body", "kind", "words"), [
    ("Hola {{ ticket.number }", "syntax", "line 1"),
    ("Hola\n{{ cliente.nombre }}", "undefined", "cliente"),
    ("{{ ''.__class__.__mro__ }}", "sandbox", "'__class__'"),
    ("{{ 1 / 0 }}", "runtime", "ZeroDivisionError"),
])
async def test_a_broken_stored_template_falls_back_to_the_shipped_default(engine, body, kind,
                                                                          words):
    # An admin saved a broken text (bypassing the editor); customers still get the default.
    engine.store = MemoryStore(stored("ack", body, channel="telegram"))
    ctx = context(engine, "ack")
    out = await engine.render("ack", locale="es", channel="telegram", context=ctx, now=MON_0900)
    expected = engine.render_source(engine.default("ack", "es", "telegram"), ctx, now=MON_0900)
    assert (out.subject, out.body) == expected
    assert out.fell_back and out.source.version == 0
    assert out.error and words in out.error


async def test_a_stored_text_over_its_budget_is_not_rendered_again_for_the_next_customer():
    # Every budget reads the clock when it starts (and every 512 steps): after the first
    # customer, only the shipped text's budget does.
    clock = StoppedClock()
    engine = TemplateEngine(default_locale="es", timezone="America/Santiago",
                            limits=RenderLimits(clock=clock))
    engine.store = MemoryStore(stored("ack", "{% for i in range(100000) %}{% endfor %}",
                                      channel="telegram"))
    ctx = context(engine, "ack")
    first = await engine.render("ack", locale="es", channel="telegram", context=ctx, now=MON_0900)
    before = clock.reads
    second = await engine.render("ack", locale="es", channel="telegram", context=ctx,
                                 now=MON_0900)
    assert clock.reads - before == 1 and before > 2
    assert first.fell_back and second.fell_back and "#1042" in second.body
    assert second.error == first.error and "demasiado trabajo" in first.error


async def test_a_database_outage_still_sends_the_shipped_acknowledgement(engine):
    engine.store = MemoryStore(broken=True)
    out = await engine.render("ack", locale="es", channel="telegram",
                              context=context(engine, "ack"), now=MON_0900)
    assert out.fell_back and "database is down" in (out.error or "")
    assert "#1042" in out.body


async def test_a_broken_shipped_default_is_a_bug_and_raises(engine):
    with pytest.raises(TemplateError) as err:
        await engine.render("ack", locale="es", channel="telegram", context={}, now=MON_0900)
    assert err.value.kind == "undefined"


# --- the admin editor: validate() -------------------------------------------------------------


@pytest.mark.parametrize(("body", "name"), [
    ("{{ ''.__class__.__mro__ }}", "__class__"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "__class__"),
    ("{{ cycler.__init__.__globals__ }}", "__init__"),
    ("{% if false %}{{ ticket['__class__'] }}{% endif %}", "__class__"),  # even when never run
    ("{{ (range | attr('__globals__')) }}", "__globals__"),
])
def test_validate_refuses_sandbox_escapes_with_a_clear_message(engine, body, name):
    # An admin pastes a classic Jinja escape into the editor; it is refused before saving.
    with pytest.raises(TemplateError) as err:
        engine.validate("", body, "ack")
    assert err.value.kind == "sandbox"
    assert f"the template tried to use '{name}', which is not allowed" in str(err.value)


@pytest.mark.parametrize("body", [
    "{{ namespace | string }}",          # found by the property test below
    "{{ range ~ '' }}",
    "{{ [range] }}",
    "{{ {'a': range} }}",
    "{{ ''.upper | upper }}",
    "{{ [namespace] | join(', ') }}",
])
def test_no_way_of_turning_a_function_into_text_gets_through(engine, body):
    # Printing, `~`, a list or any filter: an internal object never becomes customer text.
    with pytest.raises(TemplateError) as err:
        engine.validate("", body, "ack")
    assert err.value.kind == "sandbox"
    assert "tried to print a function or an object" in str(err.value)


def test_joining_and_filters_still_work_on_data(engine):
    source = TemplateSource("status", "es", "", "",
                            "{{ customer.first_name | upper }}: "
                            "{{ tickets | map(attribute='number') | join(', ') }} "
                            "{{ '#' ~ tickets[0].number }}")
    ctx = engine.sample_context("status")
    assert engine.render_source(source, ctx)[1] == "MARÍA: 1042, 987 #1042"


def test_validate_refuses_changing_the_data_even_through_an_allowed_name(engine):
    with pytest.raises(TemplateError) as err:
        engine.validate("", "{{ tickets.append(1) }}", "status")
    assert err.value.kind == "sandbox"
    assert "the template tried to use 'append', which is not allowed" in str(err.value)


def test_validate_refuses_huge_outputs(engine):
    with pytest.raises(TemplateError) as err:
        engine.validate("", "{{ 'x' * 1000000000 }}", "ack")
    assert err.value.kind == "budget"
    assert "arma un texto o una lista de más de 100000 caracteres" in str(err.value)


def test_validate_reports_a_syntax_error_with_its_line_number(engine):
    with pytest.raises(TemplateError) as err:
        engine.validate("", "Hola {{ customer.first_name }},\n\n{{ ticket.number }\n", "ack")
    assert err.value.kind == "syntax" and err.value.line == 3
    assert "syntax error on line 3" in str(err.value) and "unexpected '}'" in str(err.value)


def test_validate_names_an_unknown_variable_and_lists_the_available_ones(engine):
    with pytest.raises(TemplateError) as err:
        engine.validate("", "Hola {{ custome.name }}", "ack")
    message = str(err.value)
    assert err.value.kind == "undefined"
    assert "'custome'" in message and "Did you mean 'customer'?" in message
    assert "company" in message and "due_at" in message


def test_validate_names_an_unknown_field_of_a_known_variable(engine):
    with pytest.raises(TemplateError) as err:
        engine.validate("", "Tu número es {{ ticket.numero }}", "ack")
    assert err.value.kind == "undefined"
    assert "'ticket.numero'" in str(err.value) and "number" in str(err.value)


def test_validate_refuses_a_variable_that_belongs_to_another_key(engine):
    with pytest.raises(TemplateError) as err:
        engine.validate("", "{{ score }}", "ack")
    assert "'score'" in str(err.value)
    engine.validate("", "{{ score }}", "survey_thanks")


def test_validate_accepts_a_good_edit(engine):
    engine.validate("Hola [#{{ ticket.number }}]",
                    "{{ customer.first_name }}, respondemos {{ due_at | when }}.", "ack")


def test_render_source_raises_on_runtime_errors(engine):
    source = TemplateSource("ack", "es", "", "", "línea 1\n{{ sla_minutes / 0 }}")
    with pytest.raises(TemplateError) as err:
        engine.render_source(source, context(engine, "ack"))
    assert err.value.kind == "runtime" and err.value.line == 2


# --- output hygiene ---------------------------------------------------------------------------


def test_a_subject_never_carries_cr_or_lf_into_an_email_header(engine):
    source = TemplateSource("ack", "es", "email", "Hola {{ customer.name }}\r\nBcc: a@b",
                            "{{ ticket.number }}")
    ctx = context(engine, "ack", customer={"name": "Eve\r\nBcc: x@y", "first_name": "Eve"})
    subject, _ = engine.render_source(source, ctx)
    assert subject == "Hola Eve Bcc: x@y Bcc: a@b"
    assert "\r" not in subject and "\n" not in subject


def test_the_body_uses_unix_newlines_and_no_trailing_spaces(engine):
    source = TemplateSource("agent_reply", "es", "", "", "{{ text }}   \n\n")
    ctx = context(engine, "agent_reply", text="Hola\r\nMaría  \r\n")
    assert engine.render_source(source, ctx)[1] == "Hola\nMaría"


def test_agent_reply_is_signed_with_the_agents_name(engine):
    ctx = context(engine, "agent_reply", text="Ya salió tu pedido.", agent={"name": "Ana"})
    _, body = engine.render_source(engine.default("agent_reply", "es"), ctx)
    assert body == "Ya salió tu pedido.\n\n— Ana, Tienda Aurora"


def test_status_lists_open_tickets_or_says_there_are_none(engine):
    source = engine.default("status", "es", "telegram")
    ctx = context(engine, "status", tickets=[{"number": 7, "status": "pending", "subject": ""}])
    assert "#7: esperando tu respuesta" in engine.render_source(source, ctx)[1]
    ctx["tickets"] = []
    assert "No tienes solicitudes abiertas" in engine.render_source(source, ctx)[1]


def test_agents_hear_about_a_new_ticket_on_slack(engine):
    ctx = context(engine, "new_ticket", channel="telegram", text="No me llega el pedido")
    _, body = engine.render_source(engine.default("new_ticket", "es"), ctx)
    assert body == "Nuevo ticket #1042 por Telegram de María González: No me llega el pedido"


# --- locale-aware filters ---------------------------------------------------------------------


def render_expr(engine: TemplateEngine, expr: str, locale: str, now: datetime, **ctx) -> str:
    return engine.render_source(TemplateSource("x", locale, "", "", expr), ctx, now=now)[1]


@pytest.mark.parametrize(("at", "es", "en"), [
    (MON_0900 + timedelta(hours=1, minutes=15), "hoy a las 10:15", "today at 10:15 AM"),
    (TUE_1000 - timedelta(hours=1), "mañana a las 9:00", "tomorrow at 9:00 AM"),
    (MON_0900 + timedelta(days=7), "el lunes 30 de noviembre a las 9:00",
     "on Monday, November 30 at 9:00 AM"),
    (MON_0900 + timedelta(days=3, hours=-8), "el jueves 26 de noviembre a la 1:00",
     "on Thursday, November 26 at 1:00 AM"),
    (MON_0900 + timedelta(days=42), "el lunes 4 de enero de 2027 a las 9:00",
     "on Monday, January 4, 2027 at 9:00 AM"),
    (MON_0900 - timedelta(days=1), "ayer a las 9:00", "yesterday at 9:00 AM"),
])
def test_when_reads_naturally_in_spanish_and_english(engine, at, es, en):
    assert render_expr(engine, "{{ t | when }}", "es", MON_0900, t=at) == es
    assert render_expr(engine, "{{ t | when }}", "en", MON_0900, t=at) == en


def test_when_converts_utc_to_the_engine_timezone(engine):
    at = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # 9:00 in Santiago
    assert render_expr(engine, "{{ t | when }}", "es", SUN_2230, t=at) == "mañana a las 9:00"


def test_date_time_and_datetime_filters(engine):
    assert render_expr(engine, "{{ t | date }}", "es", MON_0900, t=MON_0900) == \
        "lunes 23 de noviembre"
    assert render_expr(engine, "{{ t | date }}", "en", MON_0900, t=MON_0900) == \
        "Monday, November 23"
    assert render_expr(engine, "{{ t | time }}", "en", MON_0900, t=MON_0900) == "9:00 AM"
    assert render_expr(engine, "{{ t | datetime }}", "es", MON_0900, t=MON_0900) == \
        "lunes 23 de noviembre a las 9:00"
    assert render_expr(engine, "[{{ t | when }}]", "es", MON_0900, t=None) == "[]"


@pytest.mark.parametrize(("minutes", "es", "en"), [
    (15, "15 minutos", "15 minutes"), (1, "1 minuto", "1 minute"), (60, "1 hora", "1 hour"),
    (150, "2 horas y 30 minutos", "2 hours and 30 minutes"), (1440, "1 día", "1 day"),
    (2880 + 180, "2 días y 3 horas", "2 days and 3 hours"), (0, "0 minutos", "0 minutes"),
])
def test_duration_in_words(engine, minutes, es, en):
    assert render_expr(engine, "{{ m | duration }}", "es", MON_0900, m=minutes) == es
    assert render_expr(engine, "{{ m | duration }}", "en", MON_0900, m=minutes) == en
