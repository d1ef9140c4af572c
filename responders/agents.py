"""Tell the agents' console when a ticket is opened or reopened.

Example notice: "Nuevo ticket #1001 por telegram de María: Hola, mi pedido no llegó".
"""

from __future__ import annotations

from gateway.responder import Context


class NotifyAgents:
    name = "agents"

    def matches(self, ctx: Context) -> bool:
        return ctx.inbound.sender.kind != "agent" and (ctx.new_ticket or ctx.reopened)

    async def handle(self, ctx: Context) -> None:
        ctx.notify_agents("new_ticket", reopened=ctx.reopened)
