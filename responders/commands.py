"""Customers' channel commands, answered on the spot without opening a ticket: "start"
greets (`start`), "status" lists her open tickets (`status`). A channel passes them as
`Inbound(kind="command", text=<name>)` (Telegram's /start, /estado and /status).

Example: María sends /estado on Telegram → "Esta es tu solicitud abierta: • #1001 «Mi
pedido no llegó»: en curso".
"""

from __future__ import annotations

from gateway.core.responder import Context
from gateway.desk.notices import audit
from gateway.store.models import Ticket

OPEN_STATUSES = ("open", "pending")


class CustomerCommands:
    name = "commands"
    commands = frozenset({"start", "status"})  # the names a channel may pass on

    def matches(self, ctx: Context) -> bool:
        return ctx.inbound.kind == "command"

    async def handle(self, ctx: Context) -> None:
        ctx.stop()  # a command is not a message to acknowledge or to tell agents about
        inbound, name = ctx.inbound, ctx.inbound.text.strip().lower()
        tickets = [{"number": t.number, "subject": t.subject, "status": t.status}
                   for t in await Ticket.filter(contact=ctx.contact,
                                                status__in=OPEN_STATUSES)
                   .order_by("-id").limit(10)]
        ctx.reply(name, tickets=tickets)
        await audit(None, f"{inbound.channel}:{inbound.sender.address}", "command", {
            "command": name, "external_id": inbound.external_id,
            "tickets": [t["number"] for t in tickets]}, ctx.now)
