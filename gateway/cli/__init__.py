"""`centralita`: the command line.

    centralita migrate
    centralita run
    centralita demo
    centralita simulate --channel telegram --from 12345 --name "María" --text "Hola"
    centralita tickets --status open
    centralita ticket 1001
    centralita check

One module per command group: `entry` (the Typer app, the global options and `main`),
`setup` (check, migrate, admin create), `run` (run, demo), `simulate`, `tickets` (tickets,
ticket, schedule, report) and `common` (what they share). Heavy modules are imported
inside the commands, so `centralita --help` stays fast.
"""

from __future__ import annotations

from gateway.cli import run, setup, simulate, tickets
from gateway.cli.entry import app, main

# Registered here, in the order `centralita --help` lists them.
for _command in (setup.check, setup.migrate, run.run, run.demo, tickets.schedule,
                 simulate.simulate, tickets.tickets, tickets.ticket, tickets.report):
    app.command()(_command)
app.add_typer(setup.admin_cli, name="admin")

__all__ = ["app", "main"]
