"""Auto-acknowledgement: the instant "we received it, your number is #1042" message.

Sent for the first message of a new or reopened ticket, with the opening hours and the
next opening when we are closed (`ack_closed`) and when to expect an answer. Never to
agents, bots or automated senders, and at most once per sender per `[autoreply] window`.

Example (what María receives on Telegram at 22:30 on a Sunday):
    Gracias por escribirnos, María. Tu solicitud fue recibida. Tu número de solicitud
    es el #1001. Nuestro horario de atención es de lunes a viernes, de 9:00 a 19:00 hrs…
"""

from __future__ import annotations

from datetime import datetime

from gateway.core.responder import Context
from gateway.desk.notices import audit
from gateway.store.models import OutboxItem

ACK_KEYS = ["ack", "ack_closed"]
RECENT_ACK = "autoreply.recent_ack"


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

    async def prepare(self, contexts: list[Context]) -> None:
        """One query for the whole batch: who already had an acknowledgement lately."""
        wanted = []
        for ctx in contexts:
            if self.matches(ctx):
                if ctx.new_contact:  # a first message: no acknowledgement yet
                    ctx.facts[RECENT_ACK] = False
                else:
                    wanted.append(ctx)
        if not wanted:
            return
        since = min(ctx.now for ctx in wanted) - wanted[0].services.settings.autoreply.window
        recent = await OutboxItem.filter(
            contact_id__in={ctx.contact.id for ctx in wanted},
            channel__in={ctx.inbound.channel for ctx in wanted},
            kind__in=ACK_KEYS, created_at__gte=since,
        ).values_list("contact_id", "channel", "created_at")
        latest: dict[tuple[int, str], datetime] = {}
        for contact, channel, created in recent:
            latest[(contact, channel)] = max(created, latest.get((contact, channel), created))
        for ctx in wanted:
            last = latest.get((ctx.contact.id, ctx.inbound.channel))
            window_start = ctx.now - ctx.services.settings.autoreply.window
            ctx.facts[RECENT_ACK] = last is not None and last >= window_start

    async def handle(self, ctx: Context) -> None:
        already = ctx.facts.get(RECENT_ACK)
        if already is None:
            since = ctx.now - ctx.services.settings.autoreply.window
            already = await OutboxItem.filter(
                contact=ctx.contact, channel=ctx.inbound.channel, kind__in=ACK_KEYS,
                created_at__gte=since,
            ).exists()
        if already:
            await audit(ctx.ticket, "autoreply", "ack.suppressed",
                        {"reason": "one acknowledgement per sender per window"}, ctx.now)
            return
        ctx.reply("ack" if ctx.services.opening(ctx.now)[0] else "ack_closed")
