"""The `centralita` Typer app, its global options, and the console entry point."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from gateway.cli.common import Failure, err
from gateway.settings import Settings, SettingsError, default_settings_path, load_settings
from gateway.store.db import DatabaseNotReady

__all__ = ["Failure", "app", "main"]

app = typer.Typer(
    name="centralita",
    help="Centralita: one inbox for email, Telegram and Slack, answered from Slack.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def main_options(
    ctx: typer.Context,
    settings: Annotated[Path | None, typer.Option(
        "--settings", "-s", help="settings file (default: $CENTRALITA_SETTINGS or ./settings.toml)",
        show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log what happens")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cache: dict[str, Settings] = {}

    def load() -> Settings:
        if "s" not in cache:
            cache["s"] = load_settings(settings or default_settings_path())
        return cache["s"]

    ctx.obj = {"load": load}


def main() -> None:
    """Console entry point: user errors in one line (exit 2), never a traceback."""
    try:
        app(standalone_mode=False)
    except (SettingsError, Failure, DatabaseNotReady) as exc:
        err.print(Text.assemble(("error:", "red"), f" {exc}"), highlight=False)
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # e.g. the database is unreachable
        # typer 0.29 ships its own copy of click (click itself may not be installed):
        # its usage errors are typer.TyperException.
        if isinstance(exc, typer.TyperException):  # one line, like every user error
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            err.print(Text.assemble(("error:", "red"), f" {exc.format_message()}{hint}"),
                      highlight=False)
            sys.exit(exc.exit_code)
        err.print(Text.assemble(("error:", "red"), f" {type(exc).__name__}: {exc}"),
                  highlight=False)
        err.print("(run with -v for details)")
        if logging.getLogger().isEnabledFor(logging.INFO):
            raise
        sys.exit(1)
