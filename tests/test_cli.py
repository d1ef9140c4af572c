"""`centralita` as a new admin tries it: the real console script, in a fresh directory, with
a settings file of its own (SQLite in that directory), one subprocess per command.

Each start costs ~0.6 s, so one scripted session (`desk`) runs the commands in order once
and the tests read its transcript.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = (shutil.which("centralita", path=str(Path(sys.executable).parent))
          or shutil.which("centralita"))
COMMAND = [SCRIPT] if SCRIPT else [sys.executable, "-m", "gateway.cli"]


@dataclass
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str

    def __str__(self) -> str:  # shown when an assertion fails
        return (f"$ centralita {' '.join(self.args)}\n(exit {self.code})\n"
                f"--- stdout\n{self.out}\n--- stderr\n{self.err}")


def write_settings(directory: Path, name: str = "settings.toml", **replace: str) -> Path:
    """The repo's settings.toml with the database and data_dir inside `directory`, and any
    `key = value` line replaced (key=value text, e.g. timezone='"Mars/Base"')."""
    text = (ROOT / "settings.toml").read_text(encoding="utf-8")
    replace = {"url": f'"sqlite://{directory}/centralita.sqlite3"',
               "data_dir": f'"{directory}/data"', **replace}
    for key, value in replace.items():
        text, count = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert count == 1, key
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def centralita(cwd: Path, *args: str, settings: Path | None = None,
               env: dict[str, str] | None = None) -> Run:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CENTRALITA_")}
    environment.update(COLUMNS="200", PYTHONUTF8="1", NO_COLOR="1")
    environment["CENTRALITA_SETTINGS"] = str(settings or cwd / "settings.toml")
    environment.update(env or {})
    done = subprocess.run([*COMMAND, *args], cwd=cwd, env=environment, capture_output=True,
                          text=True, encoding="utf-8", timeout=60, check=False)
    return Run(args, done.returncode, done.stdout, done.stderr)


def assert_user_error(run: Run, *words: str) -> None:
    """Exit 2, one line on stderr naming what is wrong, nothing that looks like a crash."""
    assert run.code == 2, run
    assert "Traceback" not in run.err + run.out, run
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run
    for word in words:
        assert word in lines[0], run


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """A new admin's first session, in order; {name: Run}."""
    cwd = tmp_path_factory.mktemp("desk")
    write_settings(cwd)
    runs: dict[str, Run] = {}

    def run(name: str, *args: str) -> None:
        runs[name] = centralita(cwd, *args)

    run("migrate", "migrate")
    runs["database exists"] = Run((), int(not (cwd / "centralita.sqlite3").is_file()), "", "")
    run("migrate again", "migrate")
    run("maría at night", "simulate", "--channel", "telegram", "--from", "12345",
        "--name", "María", "--text", "Hola, mi pedido no llegó", "--at", "2026-11-22T22:30")
    run("ana by email", "simulate", "--at", "2026-11-23T10:00", "--channel", "email",
        "--from", "ana@example.test", "--subject", "Factura", "--text", "Necesito la factura")
    run("bob in english", "simulate", "--lang", "en", "--channel", "telegram", "--from", "999",
        "--name", "Bob", "--text", "Where is my order?", "--at", "2026-11-23T10:05")
    run("maría again", "simulate", "--channel", "telegram", "--from", "12345",
        "--name", "María", "--text", "¿Hola?", "--at", "2026-11-22T22:35")
    run("tickets", "tickets")
    runs["tickets, 80 columns"] = centralita(cwd, "tickets", env={"COLUMNS": "80"})
    run("open tickets", "tickets", "--status", "open")
    run("closed tickets", "tickets", "--status", "closed")
    run("email tickets", "tickets", "--channel", "email")
    run("nonsense status", "tickets", "--status", "nonsense")
    run("ticket 1001", "ticket", "1001")
    run("ticket 999999", "ticket", "999999")
    run("check", "check")
    return runs


def rows(listing: Run) -> list[str]:
    """Ticket numbers in a `centralita tickets` table, in order."""
    return re.findall(r"^(\d+) ", listing.out, flags=re.MULTILINE)


# --- first contact ---------------------------------------------------------------------


def test_a_new_admin_asking_for_help_sees_every_command(tmp_path: Path) -> None:
    run = centralita(tmp_path, "--help")
    assert run.code == 0, run
    for command in ("migrate", "simulate", "tickets", "ticket", "check"):
        assert re.search(rf"│ {command} ", run.out), (command, run)


def test_a_new_admin_creates_the_database_and_a_second_migrate_has_nothing_to_do(
        desk: dict[str, Run]) -> None:
    assert desk["migrate"].code == 0, desk["migrate"]
    assert "database is up to date" in desk["migrate"].out
    assert desk["database exists"].code == 0, "the SQLite file was not created"
    again = desk["migrate again"]
    assert again.code == 0, again
    assert "nothing to do" in again.out, again


def test_check_shows_what_the_settings_mean(desk: dict[str, Run]) -> None:
    run = desk["check"]
    assert run.code == 0, run
    for shown in ("settings are valid", "America/Santiago",
                  "lunes a viernes, de 9:00 a 19:00 hrs", "autoreply, agents"):
        assert shown in run.out, (shown, run)


# --- simulate --------------------------------------------------------------------------


def test_maría_writing_on_sunday_night_gets_her_number_the_hours_and_the_status_hint(
        desk: dict[str, Run]) -> None:
    run = desk["maría at night"]
    assert run.code == 0, run
    assert "we are closed" in run.out
    assert "Ticket #1001 — new ticket" in run.out
    assert "Tu número de solicitud es el #1001" in run.out
    assert "lunes a viernes, de 9:00 a 19:00 hrs" in run.out
    assert "/estado" in run.out
    assert "agents are told" in run.out
    assert "Nuevo ticket #1001 por Telegram de María (fuera de horario)" in run.out
    assert run.err == "", run


def test_ana_writing_an_email_gets_the_number_in_the_subject(desk: dict[str, Run]) -> None:
    run = desk["ana by email"]
    assert run.code == 0, run
    assert "we are open" in run.out
    assert "Ticket #1002 — new ticket" in run.out
    assert re.search(r"Subject: .*\[#1002\]", run.out), run
    assert "agents are told" in run.out


def test_bob_who_writes_in_english_is_answered_in_english(desk: dict[str, Run]) -> None:
    run = desk["bob in english"]
    assert run.code == 0, run
    assert "Ticket #1003" in run.out
    assert "Your request number is #1003" in run.out
    assert "/status" in run.out
    assert "Tu solicitud" not in run.out


def test_maría_writing_again_joins_her_ticket_and_gets_no_second_acknowledgement(
        desk: dict[str, Run]) -> None:
    run = desk["maría again"]
    assert run.code == 0, run
    assert "Ticket #1001 — existing ticket" in run.out
    assert "The customer receives nothing" in run.out
    assert "receives on telegram" not in run.out
    assert "#1004" not in run.out


def test_a_time_that_is_not_a_time_is_refused_naming_at(tmp_path: Path) -> None:
    write_settings(tmp_path)
    assert_user_error(centralita(tmp_path, "simulate", "--at", "yesterday"),
                      "--at", "2026-11-22T22:30", "'yesterday'")


def test_a_channel_centralita_does_not_have_is_refused_and_makes_no_ticket(
        tmp_path: Path) -> None:
    write_settings(tmp_path)
    assert_user_error(centralita(tmp_path, "simulate", "--channel", "fax", "--text", "Hola"),
                      "--channel", "email, slack, telegram", "'fax'")
    # Nothing was stored: not even the database was created (and reading made none).
    assert_user_error(centralita(tmp_path, "tickets"), "does not exist yet",
                      "run `centralita migrate`")
    assert not list(tmp_path.rglob("*.sqlite3"))


@pytest.mark.parametrize("problem", ["server down", "no such database", "unknown user"])
def test_each_database_problem_gets_its_own_line_with_the_password_hidden(
        tmp_path: Path, postgres_url: str, problem: str) -> None:
    write_settings(tmp_path)
    server = urlsplit(postgres_url)
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    url, words = {
        "server down": (f"postgres://carla:s3creto@127.0.0.1:{closed}/test",
                        ["no database server answers", f"127.0.0.1:{closed}"]),
        "no such database": (f"postgres://{server.username}:s3creto@"
                             f"{server.netloc.split('@')[-1]}"
                             f"/no_such_db", ["no database 'no_such_db'", "createdb"]),
        "unknown user": (f"postgres://nadie:s3creto@{server.netloc.split('@')[-1]}/test",
                         ["refused user 'nadie'", "check the user and password"]),
    }[problem]
    for command in ("tickets", "migrate"):
        done = centralita(tmp_path, command, env={"CENTRALITA_DATABASE__URL": url})
        assert_user_error(done, "database.url", *words)
        assert "s3creto" not in done.err and "***" in done.err


def test_a_database_older_than_this_version_is_named_with_its_missing_migration(
        tmp_path: Path) -> None:
    import asyncio

    from tortoise import Tortoise
    from tortoise.migrations.api import migrate

    from gateway.store.db import tortoise_config

    write_settings(tmp_path)
    url = f"sqlite://{tmp_path}/centralita.sqlite3"

    async def install_the_previous_version() -> None:
        await migrate(config=tortoise_config(url), target="models.0003_admin_user")
        await Tortoise.close_connections()

    asyncio.run(install_the_previous_version())
    for command in ("tickets", "report", "schedule"):
        assert_user_error(centralita(tmp_path, command), "lacks migration(s) 0004_ticket_lookups",
                          "run `centralita migrate`")
    assert centralita(tmp_path, "migrate").code == 0
    assert "0 ticket(s)" in centralita(tmp_path, "tickets").out


def test_a_message_with_no_text_still_makes_a_ticket(tmp_path: Path) -> None:
    write_settings(tmp_path)
    run = centralita(tmp_path, "simulate", "--text", "", "--at", "2026-11-23T11:00")
    assert run.code == 0, run
    assert "(no text)" in run.out
    assert "Ticket #1001 — new ticket" in run.out


@pytest.fixture(scope="module")
def long_message(tmp_path_factory: pytest.TempPathFactory) -> Run:
    # 1 MB cannot travel as one argument: Linux caps a single argv string at 128 KiB
    # (MAX_ARG_STRLEN) and `simulate` has no way to read the text from a file or stdin.
    # 100 000 characters is the longest round number that fits.
    cwd = tmp_path_factory.mktemp("long")
    write_settings(cwd)
    return centralita(cwd, "simulate", "--text", "a" * 100_000, "--at", "2026-11-23T11:00")


def test_a_100_kb_message_does_not_crash_the_cli(long_message: Run) -> None:
    assert long_message.code == 0, long_message.err
    assert "Ticket #1001 — new ticket" in long_message.out
    assert "Traceback" not in long_message.err


def test_agents_still_hear_about_a_ticket_whose_message_is_100_kb(long_message: Run) -> None:
    assert "agents are told" in long_message.out


def test_a_1_mb_message_goes_through_from_a_file(tmp_path: Path) -> None:
    write_settings(tmp_path)
    (tmp_path / "big.txt").write_text("mi pedido no llegó " * 55_000, encoding="utf-8")
    run = centralita(tmp_path, "simulate", "--text-file", "big.txt", "--at", "2026-11-23T11:00")
    assert run.code == 0, run.err
    assert "#1001" in run.out and "agents are told" in run.out


# --- tickets and ticket ----------------------------------------------------------------


def test_the_admin_lists_tickets_newest_first_and_filters_them(desk: dict[str, Run]) -> None:
    for name in ("tickets", "open tickets", "closed tickets", "email tickets"):
        assert desk[name].code == 0, desk[name]
    assert rows(desk["tickets"]) == ["1003", "1002", "1001"]
    assert "3 ticket(s)" in desk["tickets"].out
    assert "María" in desk["tickets"].out and "Factura" in desk["tickets"].out
    assert rows(desk["open tickets"]) == ["1003", "1002", "1001"]
    assert rows(desk["closed tickets"]) == []
    assert "0 ticket(s)" in desk["closed tickets"].out
    assert rows(desk["email tickets"]) == ["1002"]
    # María wrote Sunday 22:30 and her answer is due Monday 09:15; on an 80-column
    # terminal too, every time is whole (without its year).
    assert "2026-11-22 22:30" in desk["tickets"].out
    assert "due 2026-11-23 09:15" in desk["tickets"].out
    narrow = desk["tickets, 80 columns"].out
    assert rows(desk["tickets, 80 columns"]) == ["1003", "1002", "1001"]
    assert "11-22 22:30" in narrow and "due 11-23 09:15" in narrow and "2026" not in narrow


def test_a_status_that_does_not_exist_is_refused_naming_status(desk: dict[str, Run]) -> None:
    assert_user_error(desk["nonsense status"], "--status", "open, pending, resolved, closed",
                      "'nonsense'")


def test_the_admin_reads_ticket_1001_with_its_thread_deliveries_and_audit(
        desk: dict[str, Run]) -> None:
    run = desk["ticket 1001"]
    assert run.code == 0, run
    assert "Ticket #1001 — open" in run.out
    assert "Customer: María · telegram:12345" in run.out
    assert "Hola, mi pedido no llegó" in run.out
    assert "¿Hola?" in run.out
    # the acknowledgement, and that it was delivered
    assert re.search(r"→ .* on telegram · ack_closed · 2026-11-22 22:30 · sent", run.out), run
    assert "Tu número de solicitud es el #1001" in run.out
    assert re.search(r"│ 2026-11-22 22:30 .*│ created ", run.out), run
    # the thread reads top to bottom
    first = run.out.index("Hola, mi pedido no llegó")
    assert first < run.out.index("Tu número de solicitud") < run.out.index("¿Hola?")


def test_a_ticket_that_does_not_exist_is_refused(desk: dict[str, Run]) -> None:
    assert_user_error(desk["ticket 999999"], "no ticket #999999")


def test_a_misspelled_option_is_a_usage_error_not_a_crash(tmp_path: Path) -> None:
    write_settings(tmp_path)
    run = centralita(tmp_path, "tickets", "--stauts", "open")
    assert_user_error(run, "No such option: --stauts", "centralita tickets --help")
    assert "run with -v" not in run.err
    # A ticket number that is not a number: one line too, not typer's usage block.
    assert_user_error(centralita(tmp_path, "ticket", "abc"), "'number'",
                      "centralita ticket --help")


@pytest.mark.parametrize("command", ["tickets", "report"])
def test_a_channel_centralita_does_not_have_is_refused_when_listing(
        tmp_path: Path, command: str) -> None:
    write_settings(tmp_path)
    assert_user_error(centralita(tmp_path, command, "--channel", "fax"),
                      "--channel", "email, slack, telegram", "'fax'")


# --- bad settings ----------------------------------------------------------------------


def test_check_with_a_misspelled_time_zone_names_the_key_without_a_traceback(
        tmp_path: Path) -> None:
    settings = write_settings(tmp_path, timezone='"Mars/Base"')
    assert_user_error(centralita(tmp_path, "check", settings=settings),
                      "hours.timezone", "Mars/Base", str(settings))


def test_check_refuses_a_responder_that_is_not_installed(tmp_path: Path) -> None:
    settings = write_settings(tmp_path, order='["autoreply", "chatgpt"]')
    assert_user_error(centralita(tmp_path, "check", settings=settings),
                      "responders.order", "'chatgpt'", "installed: agents, autoreply")


# --- PostgreSQL ------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_same_commands_work_on_postgresql(tmp_path: Path, postgres_url: str) -> None:
    write_settings(tmp_path)
    env = {"CENTRALITA_DATABASE__URL": postgres_url}
    migrate = centralita(tmp_path, "migrate", env=env)
    assert migrate.code == 0, migrate
    assert "database is up to date" in migrate.out
    assert postgres_url in migrate.out
    run = centralita(tmp_path, "simulate", "--channel", "telegram", "--from", "pg-1",
                     "--name", "Pía", "--text", "Hola desde PostgreSQL",
                     "--at", "2026-11-23T10:00", env=env)
    assert run.code == 0, run
    assert re.search(r"Ticket #\d+ — new ticket", run.out), run
    assert "Pía receives on telegram" in run.out
    assert not (tmp_path / "centralita.sqlite3").exists()  # it really used PostgreSQL


def test_an_admin_replays_a_customers_eml_file_and_sees_the_acknowledgement(
        tmp_path: Path) -> None:
    write_settings(tmp_path)
    eml = tmp_path / "maria.eml"
    eml.write_bytes(
        b"From: =?UTF-8?Q?Mar=C3=ADa_P=C3=A9rez?= <maria@cliente.test>\r\n"
        b"To: soporte@example.com\r\nSubject: =?UTF-8?Q?Mi_pedido_no_lleg=C3=B3?=\r\n"
        b"Message-ID: <eml-1@cliente.test>\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"\r\nHola, hice el pedido 5531 y no me llega.\r\n")
    first = centralita(tmp_path, "simulate", "--eml", str(eml), "--at", "2026-11-23T10:00")
    assert first.code == 0, first
    assert "María Pérez" in first.out and "maria@cliente.test" in first.out
    assert "Ticket #1001" in first.out and "new ticket" in first.out
    assert "[#1001]" in first.out  # the subject of the acknowledgement
    # The same file again is the same mail: recognised by its Message-ID, not answered.
    again = centralita(tmp_path, "simulate", "--eml", str(eml))
    assert again.code == 0 and "duplicate" in again.out, again


def test_run_without_any_channel_says_what_to_configure(tmp_path: Path) -> None:
    write_settings(tmp_path)
    done = centralita(tmp_path, "run")
    assert done.code == 2 and "[channels." in done.err, done


def test_run_with_a_wrong_mailbox_setting_names_the_key(tmp_path: Path) -> None:
    settings = write_settings(tmp_path)
    settings.write_text(settings.read_text() + '\n[channels.email]\n[[channels.email.mailboxes]]'
                        '\nname = "soporte"\naddress = "soporte@example.com"\n'
                        'imap_host = "127.0.0.1"\nimap_user = "soporte"\nsmtp_host = "x"\n'
                        'smtp_security = "ssl"\n')
    done = centralita(tmp_path, "run")
    assert done.code == 2 and "channels.email.mailboxes.0.smtp_security" in done.err, done
    assert "Traceback" not in done.err


def test_run_on_a_taken_address_stops_at_start_up_naming_the_key(tmp_path: Path) -> None:
    # Another program already listens where [http] listen points: the gateway must not
    # run on without its webhooks, admin pages and survey links.
    settings = write_settings(tmp_path)
    settings.write_text(settings.read_text() + '\n[channels.email]\n[[channels.email.mailboxes]]'
                        '\nname = "soporte"\naddress = "soporte@example.com"\n'
                        'imap_host = "127.0.0.1"\nimap_user = "soporte"\nsmtp_host = "x"\n')
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        done = centralita(tmp_path, "run", env={"CENTRALITA_HTTP__LISTEN": address})
    assert_user_error(done, "http.listen", address)


def test_an_admin_is_created_from_an_environment_variable_and_a_missing_one_is_named(
        tmp_path: Path) -> None:
    write_settings(tmp_path)
    missing = centralita(tmp_path, "admin", "create", "carla", "--password-env", "NOPE")
    assert missing.code == 2 and "NOPE is not set" in missing.err, missing
    short = centralita(tmp_path, "admin", "create", "carla", "--password-env", "PW",
                       env={"PW": "corta"})
    assert short.code == 2 and "at least 10 characters" in short.err, short
    made = centralita(tmp_path, "admin", "create", "carla", "--password-env", "PW",
                      env={"PW": "una-clave-larga-1"})
    assert made.code == 0 and "carla" in made.out, made
