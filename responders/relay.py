"""Agents' replies go to the customer, on the customer's own channel.

An agent answers in the console (a Slack thread); the console adapter hands the words to
the gateway as an agent's message on the ticket; this responder turns them into the
answer the customer receives on email, Telegram or wherever the ticket lives. Internal
notes (`Inbound.internal`), and anything written in the thread of a closed ticket, stay
on the ticket.

Example: Pedro writes "Tu pedido sale hoy" in the ticket's Slack thread → María receives
"Tu pedido sale hoy" in her Telegram chat.
"""

from __future__ import annotations

from gateway.core.responder import Context
from gateway.desk.replies import canned_reply


class RelayAgentReply:
    name = "relay"

    def matches(self, ctx: Context) -> bool:
        inbound = ctx.inbound
        return inbound.sender.kind == "agent" and not inbound.internal and bool(
            inbound.text.strip() or inbound.attachments)

    def matches_ticket(self, ctx: Context) -> bool:
        # a closed ticket's thread is for notes
        return ctx.ticket is not None and ctx.ticket.status != "closed"

    async def handle(self, ctx: Context) -> None:
        ctx.stop()
        if not self.matches_ticket(ctx):
            return
        # Signed with the agent's name (template agent_reply); held for the undo window
        # when the agent wrote in a console that offers one.
        hold = ctx.services.settings.agents.undo_seconds if ctx.inbound.channel == \
            ctx.services.settings.agents.console else 0
        agent = ctx.inbound.sender.name or ctx.inbound.sender.address
        words = {}
        if ctx.inbound.kind == "canned":  # `/ticket reply N name`: a reply from [replies]
            words["text"] = await canned_reply(ctx.services, ctx.ticket.number,  # type: ignore[union-attr]
                                               ctx.inbound.text.strip(), agent)
        ctx.reply("agent_reply", automatic=False, hold_seconds=hold, agent={"name": agent},
                  **words)
