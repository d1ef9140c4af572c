"""settings.toml as an admin meets it: the shipped file works and explains itself, the
environment wins over it, and every mistake stops start-up with one line that names the
key and says what is expected — never a traceback or a pydantic dump."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.app import load_responders
from gateway.settings import SettingsError, load_settings, parse_duration

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "settings.toml"

_TABLE = re.compile(r"^\[([^\]]+)\]\s*(#.*)?$")
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$")

# Keys of the shipped settings.toml that say nothing about themselves today. settings.toml
# is not edited by these tests; when someone documents a key, its xfail turns into a failure
# (strict) and the key must be removed from here.
UNDOCUMENTED: set[str] = set()


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the developer's shell exports must not leak into these tests."""
    import os

    for name in list(os.environ):
        if name.startswith("CENTRALITA_"):
            monkeypatch.delenv(name)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refuses(path: Path) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    message = str(caught.value)
    for dump in ("Traceback", "pydantic", "validation error", "errors.pydantic.dev",
                 "For further information", "input_value"):
        assert dump not in message, message
    return message


# --- the shipped file ------------------------------------------------------------------


def _documentation() -> dict[str, bool]:
    """{'table.key': documented?} for every `key =` line of the shipped settings.toml.

    A key is documented by a `#` comment on its own line, or by the comment block right
    above it in its table — a block documents the keys that follow it until a blank line,
    or until a key with its own inline comment (that comment is about that key). A table
    header carrying a comment documents the keys right under it the same way.
    """
    table = ""
    block = False  # is there a comment (block or header) governing the next key?
    found: dict[str, bool] = {}
    for raw in SHIPPED.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            block = False
        elif line.startswith("#"):
            block = True
        elif header := _TABLE.match(line):
            table, block = header[1], header[2] is not None
        elif key := _KEY.match(line):
            inline = "#" in _strip_strings(key[2])
            found[f"{table}.{key[1]}"] = inline or block
            if inline:
                block = False
    return found


def _strip_strings(value: str) -> str:
    """The value with its quoted strings removed, so '"#1001"' is not taken for a comment."""
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'[^\']*\'', '""', value)


KEYS = _documentation()


def test_the_shipped_settings_file_loads_as_it_is() -> None:
    settings = load_settings(SHIPPED)
    assert settings.hours.timezone == "America/Santiago"
    assert settings.gateway.default_locale == "es"
    assert settings.outbox.backoff_max == timedelta(hours=1)
    assert settings.autoreply.window == timedelta(minutes=10)
    assert settings.responders.order == ["mirror", "followups", "commands", "survey",
                                         "relay", "autoreply", "agents"]
    assert settings.hours.build().summary("es") == "lunes a viernes, de 9:00 a 19:00 hrs"
    assert len(KEYS) > 30  # the parser below really saw the file


@pytest.mark.parametrize("key", [
    pytest.param(k, marks=pytest.mark.xfail(strict=True, reason="no comment in settings.toml"))
    if k in UNDOCUMENTED else k
    for k in KEYS
])
def test_an_admin_reading_the_shipped_file_finds_every_key_explained(key: str) -> None:
    assert KEYS[key], f"settings.toml: {key} has no comment on its line or right above it"


def test_the_documentation_check_tells_an_inline_comment_from_a_hash_in_a_string() -> None:
    assert "#" not in _strip_strings('"#1001"   ')
    assert "#" in _strip_strings('"x"   # what x is')


# --- the environment -------------------------------------------------------------------


def test_an_operator_moves_the_office_to_madrid_and_the_database_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRALITA_HOURS__TIMEZONE", "Europe/Madrid")
    monkeypatch.setenv("CENTRALITA_DATABASE__URL", "postgres://x@h/db")
    settings = load_settings(SHIPPED)
    assert settings.hours.timezone == "Europe/Madrid"
    assert settings.database.url == "postgres://x@h/db"
    # the rest of each table still comes from the file
    assert settings.hours.holidays == "CL"
    assert settings.hours.closed == ["2026-12-24", "2026-12-31"]
    assert settings.hours.build().tz.key == "Europe/Madrid"


def test_the_environment_wins_over_a_value_written_in_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, '[gateway]\nname = "From the file"\n')
    monkeypatch.setenv("CENTRALITA_GATEWAY__NAME", "From the environment")
    assert load_settings(path).gateway.name == "From the environment"


def test_a_wrong_value_in_the_environment_is_named_like_one_in_the_file(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRALITA_HOURS__TIMEZONE", "Mars/Base")
    with pytest.raises(SettingsError, match=r"hours\.timezone: unknown time zone 'Mars/Base'"):
        load_settings(SHIPPED)


def test_an_operator_who_writes_a_list_in_the_environment_without_json_is_told_how(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRALITA_HOURS__CLOSED", "2026-12-24")
    message = refuses(SHIPPED)
    assert "environment" in message and "hours" in message and "JSON" in message


# --- mistakes --------------------------------------------------------------------------


MISTAKES = {
    "an admin who misspells the time zone is told which key is wrong": (
        '[hours]\ntimezone = "Mars/Base"\n', "hours.timezone", "unknown time zone 'Mars/Base'"),
    "an admin who writes opening hours without minutes is shown the format": (
        '[hours]\nweek = { mon = "9-19" }\n', "hours.week.mon", "'HH:MM-HH:MM'"),
    "an admin who names a country the holidays package does not know is told": (
        '[hours]\nholidays = "XX"\n', "hours.holidays", "unknown holidays country"),
    "an admin who closes the office on a date that does not exist is shown the format": (
        '[hours]\nclosed = ["2026-12-24", "2026-13-45"]\n', "hours.closed[1]", "'YYYY-MM-DD'"),
    "an admin who misspells a key in a table is told it is unknown": (
        '[gateway]\nnmae = "Soporte"\n', "gateway.nmae", "unknown setting"),
    "an admin who misspells a table name is told it is unknown": (
        '[gatewya]\nname = "Soporte"\n', "gatewya", "unknown setting"),
    "an admin who asks for french is told which languages exist": (
        '[gateway]\ndefault_locale = "fr"\n', "gateway.default_locale", "'es' or 'en'"),
    "an admin who writes a duration in words is shown how to write one": (
        '[autoreply]\nwindow = "ten minutes"\n', "autoreply.window", "'30s', '15m', '4h'"),
    "an admin who sets a negative outbox batch is told the minimum": (
        "[outbox]\nbatch = -5\n", "outbox.batch", "greater than or equal to 1"),
    "an admin who points at a mysql database is shown the urls that work": (
        '[database]\nurl = "mysql://x@h/db"\n', "database.url", "'postgres://"),
}


@pytest.mark.parametrize("toml, key, expected", MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_stops_start_up_with_one_line_naming_the_key(
        tmp_path: Path, toml: str, key: str, expected: str) -> None:
    path = write(tmp_path, toml)
    message = refuses(path)
    assert f"{key}:" in message, message
    assert expected in message, message
    assert message.startswith(f"{path}: ")  # which file, too
    assert "\n" not in message, message  # one problem, one line


def test_the_value_the_admin_wrote_is_quoted_back_once(tmp_path: Path) -> None:
    message = refuses(write(tmp_path, '[autoreply]\nwindow = "ten minutes"\n'))
    assert message.count("'ten minutes'") == 1, message
    message = refuses(write(tmp_path, '[database]\nurl = "mysql://x@h/db"\n'))
    assert message.count("'mysql://x@h/db'") == 1, message


def test_an_admin_with_two_mistakes_sees_both_one_per_line(tmp_path: Path) -> None:
    message = refuses(write(tmp_path, '[gateway]\nnmae = "x"\ndefault_locale = "fr"\n'))
    lines = message.splitlines()[1:]
    assert len(lines) == 2
    assert any(line.strip().startswith("gateway.nmae: unknown setting") for line in lines)
    assert any(line.strip().startswith("gateway.default_locale:") for line in lines)


def test_an_admin_who_forgets_a_bracket_is_told_the_file_is_not_valid_toml(
        tmp_path: Path) -> None:
    message = refuses(write(tmp_path, '[gateway\nname = "Soporte"\n'))
    assert "not valid TOML" in message
    assert "line 1" in message


def test_an_admin_who_gives_a_settings_file_that_does_not_exist_is_told_so(
        tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "settings.toml"
    with pytest.raises(SettingsError, match="not found") as caught:
        load_settings(missing)
    assert str(missing) in str(caught.value)


def test_an_empty_settings_file_means_every_default(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, ""))
    assert settings.hours.timezone == "America/Santiago"
    assert settings.outbox.batch == 50


# --- durations -------------------------------------------------------------------------


@pytest.mark.parametrize("written, seconds", [
    ("30s", 30), ("15m", 900), ("4h", 14400), ("2d", 172800), ("1h30m", 5400),
    ("1h 30m", 5400), (" 90M ", 5400), ("1m30s", 90), ("250ms", 0.25), (45, 45), (1.5, 1.5), (0, 0),
])
def test_durations_are_written_the_way_people_say_them(written: object, seconds: float) -> None:
    assert parse_duration(written) == timedelta(seconds=seconds)


@pytest.mark.parametrize("written", [
    "ten minutes", "", "15", "15 minutes", "m15", "1h30", "h", True, None, [15],
])
def test_a_duration_that_is_not_one_is_refused_with_an_example(written: object) -> None:
    with pytest.raises(ValueError, match="'1h30m'"):
        parse_duration(written)


def test_durations_in_the_file_become_timedeltas(tmp_path: Path) -> None:
    path = write(tmp_path, '[autoreply]\nwindow = "1h30m"\n[outbox]\nlease = 90\n')
    settings = load_settings(path)
    assert settings.autoreply.window == timedelta(minutes=90)
    assert settings.outbox.lease == timedelta(seconds=90)


# --- responders ------------------------------------------------------------------------


def test_an_admin_who_orders_a_responder_that_is_not_installed_is_told_which_are(
        tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, '[responders]\norder = ["autoreply", "chatgpt"]\n'))
    with pytest.raises(SettingsError) as caught:
        load_responders(settings)
    message = str(caught.value)
    assert message.startswith("responders.order:")
    assert "'chatgpt'" in message
    assert "installed: agents, autoreply" in message


def test_the_shipped_responders_are_installed() -> None:
    names = [type(r).__name__ for r in load_responders(load_settings(SHIPPED))]
    assert names == ["MirrorToConsole", "FollowUps", "CustomerCommands", "RecordScore",
                     "RelayAgentReply", "AutoAcknowledge", "NotifyAgents"]


def test_a_canned_reply_with_a_broken_text_names_its_key(tmp_path: Path) -> None:
    message = refuses(write(tmp_path, '[replies]\nenvio.es = "Hola {{ customer.first_name "\n'))
    assert message.startswith(f"{tmp_path / 'settings.toml'}: replies.envio.es:"), message
    message = refuses(write(tmp_path, "[replies]\nenvio.es = \"{{ ''.__class__.__mro__ }}\"\n"))
    assert "replies.envio.es" in message and "__class__" in message, message
    message = refuses(write(tmp_path, '[replies]\nenvio.fr = "Bonjour"\n'))
    assert "replies.envio" in message and "fr" in message, message
    message = refuses(write(tmp_path, '[replies]\n"Envío Rápido".es = "Hola"\n'))
    assert "replies.Envío Rápido" in message, message


def test_a_public_url_without_its_scheme_is_refused_naming_the_key(tmp_path: Path) -> None:
    # The survey links in emails are built from it: "soporte.example.com/survey/…" would
    # not be a link at all.
    message = refuses(write(tmp_path, '[http]\npublic_url = "soporte.example.com"\n'))
    assert "http.public_url" in message and "https://soporte.example.com" in message, message
