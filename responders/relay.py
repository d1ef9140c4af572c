"""Agents' replies go to the customer, on the customer's own channel.

An agent answers in the console (a Slack thread); the console adapter hands the words to
the gateway as an agent's message on the ticket; this responder turns them into the
answer the customer receives on email, Telegram or wherever the ticket lives. Internal
notes (`Inbound.internal`) stay on the ticket.

Example: Pedro writes "Tu pedido sale hoy" in the ticket's Slack thread → María receives
"Tu pedido sale hoy" in her Telegram chat.
"""

from __future__ import annotations

from gateway.responder import Context


class RelayAgentReply:
    name = "relay"

    def matches(self, ctx: Context) -> bool:
        inbound = ctx.inbound
        return inbound.sender.kind == "agent" and not inbound.internal and bool(
            inbound.text.strip() or inbound.attachments)

    async def handle(self, ctx: Context) -> None:
        ctx.reply_text(ctx.inbound.text, automatic=False)
        ctx.stop()
