"""Tell the agents' console when a ticket is opened or reopened (the ticket's card is
posted the first time), or when a customer's mail server reports that one of our answers
did not arrive (a bounce).

Example notice: "Nuevo ticket #1001 por telegram de María: Hola, mi pedido no llegó".
"""

from __future__ import annotations

from gateway.core.responder import Context


class NotifyAgents:
    name = "agents"

    def matches(self, ctx: Context) -> bool:
        inbound = ctx.inbound
        return ctx.ticket is not None and inbound.sender.kind != "agent" and (
            ctx.new_ticket or ctx.reopened or inbound.kind == "bounce")

    async def handle(self, ctx: Context) -> None:
        if ctx.inbound.kind == "bounce":
            reason = next((line.strip() for line in ctx.inbound.text.splitlines()
                           if line.strip()), "the customer's mail server refused our answer")
            ctx.notify_agents("delivery_failed", broadcast=True, reason=reason[:300])
        else:
            ctx.notify_agents("new_ticket", card=True, broadcast=True,
                              reopened=ctx.reopened)
