"""Setting up: `centralita check`, `migrate`, `admin create` and `admin remove`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from gateway.cli.common import Failure, _run, _settings, out
from gateway.store.db import database
from gateway.store.db import migrate as run_migrations


def check(ctx: typer.Context) -> None:
    """Check settings.toml and show what it means: hours, SLA, database."""
    s = _settings(ctx)
    from gateway.app import build_adapters, load_responders

    load_responders(s)  # [responders] order must name installed responders
    channels = build_adapters(s)  # every [channels.<name>] table is checked by its adapter
    hours = s.hours.build()
    table = Table(title=f"{s.gateway.name} — settings are valid", show_header=False)
    table.add_row("database", s.database.url)
    table.add_row("time zone", s.hours.timezone)
    table.add_row("opening hours (es)", hours.summary("es"))
    table.add_row("opening hours (en)", hours.summary("en"))
    now = datetime.now(hours.tz)
    table.add_row("now", f"{now:%Y-%m-%d %H:%M} — {'open' if hours.is_open(now) else 'closed'}")
    for channel, minutes in s.sla.first_response.items():
        kind = "business" if s.sla.business.get(channel, True) else "calendar"
        table.add_row(f"first response, {channel}", f"{minutes} {kind} minutes")
    table.add_row("responders", ", ".join(s.responders.order))
    table.add_row("channels", ", ".join(channels) or "none configured")
    out.print(table)


def migrate(ctx: typer.Context) -> None:
    """Create or upgrade the database (tortoise-orm migrations)."""
    s = _settings(ctx)
    steps: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        steps.append(f"{event} {app_label}.{name}")
        out.print(f"  {event:>8} {app_label}.{name}")

    async def go() -> None:
        from tortoise import Tortoise

        try:
            await run_migrations(s.database.url, progress=progress)
        finally:
            await Tortoise.close_connections()

    _run(go)
    out.print(f"[green]database is up to date[/green] ({s.database.url})"
              + ("" if steps else " — nothing to do"))


admin_cli = typer.Typer(help="Admins of the admin pages.", no_args_is_help=True)


@admin_cli.command("create")
def admin_create(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="the admin's user name")],
    password_env: Annotated[str | None, typer.Option(
        help="read the password from this environment variable instead of asking")] = None,
) -> None:
    """Create an admin, or set a new password for an existing one (which ends every
    session she has open)."""
    from gateway.store.models import AdminUser
    from gateway.web.auth import hash_password

    s = _settings(ctx)
    password = _new_password(password_env)
    hashed = hash_password(password)

    async def go() -> None:
        await run_migrations(s.database.url)
        async with database(s.database.url):
            admin = await AdminUser.get_or_none(username=username)
            if admin is None:
                await AdminUser.create(username=username, password_hash=hashed,
                                       created_at=datetime.now(ZoneInfo("UTC")))
                out.print(f"admin [bold]{username}[/bold] created")
            else:
                admin.password_hash = hashed
                admin.session_version += 1  # whoever held her old password is signed out
                await admin.save(update_fields=["password_hash", "session_version"])
                out.print(f"new password set for [bold]{username}[/bold]; her open "
                          "sessions are ended")

    _run(go)


@admin_cli.command("remove")
def admin_remove(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="the admin's user name")],
) -> None:
    """Remove an admin: her password and every session she has open stop working."""
    from gateway.store.models import AdminUser

    s = _settings(ctx)

    async def go() -> None:
        await run_migrations(s.database.url)
        async with database(s.database.url):
            if not await AdminUser.filter(username=username).delete():
                raise Failure(f"no admin named {username!r} (see `centralita admin create`)")
        out.print(f"admin [bold]{username}[/bold] removed")

    _run(go)


def _new_password(password_env: str | None) -> str:
    """The password from `--password-env`, or asked twice; at least 10 characters."""
    import os

    if password_env:
        if password_env not in os.environ:
            raise Failure(f"--password-env: the environment variable {password_env} is not set")
        password = os.environ[password_env]
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < 10:
        raise Failure("the password must have at least 10 characters")
    return password
