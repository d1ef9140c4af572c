"""The console's thread is the whole conversation: the customer's later messages (her
first is on the card) and every automatic answer she receives are copied into the
ticket's thread. An agent's own words are not copied back: they are in the thread.

Put it first in `[responders] order`: a responder after it may stop the others, and
what the customer wrote and received is copied all the same.

Example: María answers "¡Gracias!" on Telegram → the card's thread shows
"María escribió: > ¡Gracias!".
"""

from __future__ import annotations

from gateway.core.responder import Context, EventContext


class MirrorToConsole:
    name = "mirror"

    def matches(self, ctx: Context) -> bool:
        return bool(ctx.services.settings.agents.console) and ctx.ticket is not None

    async def handle(self, ctx: Context) -> None:
        customer = ctx.inbound.sender.is_customer
        ctx.copy_to_console(inbound=customer and not ctx.new_ticket, answers=True)

    async def on_event(self, ctx: EventContext) -> None:
        if ctx.services.settings.agents.console:
            ctx.copy_to_console(answers=True)
