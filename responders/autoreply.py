"""Auto-acknowledgement: the instant "we received it, your number is #1042" message.

Sent for the first message of a new or reopened ticket, with the opening hours and the
next opening when we are closed (`ack_closed`) and when to expect an answer. Never to
agents, bots or automated senders, and at most once per sender per `[autoreply] window`.

Example (what María receives on Telegram at 22:30 on a Sunday):
    Gracias por escribirnos, María. Tu solicitud fue recibida. Tu número de solicitud
    es el #1001. Nuestro horario de atención es de lunes a viernes, de 9:00 a 19:00 hrs…
"""

from __future__ import annotations

from gateway.models import OutboxItem
from gateway.notices import audit
from gateway.responder import Context

ACK_KEYS = ["ack", "ack_closed"]


class AutoAcknowledge:
    name = "autoreply"

    def matches(self, ctx: Context) -> bool:
        inbound = ctx.inbound
        return (
            ctx.services.settings.autoreply.enabled
            and (ctx.new_ticket or ctx.reopened)
            and inbound.sender.kind == "customer"
            and not inbound.automated
            and not inbound.internal
        )

    async def handle(self, ctx: Context) -> None:
        since = ctx.now - ctx.services.settings.autoreply.window
        already = await OutboxItem.filter(
            contact=ctx.contact, channel=ctx.inbound.channel, kind__in=ACK_KEYS,
            created_at__gte=since,
        ).exists()
        if already:
            await audit(ctx.ticket, "autoreply", "ack.suppressed",
                        {"reason": "one acknowledgement per sender per window"}, ctx.now)
            return
        ctx.reply("ack" if ctx.services.hours.is_open(ctx.now) else "ack_closed")
