"""The satisfaction survey's answer: a score from 1 to 5, recorded once per ticket.

A channel passes a button press as `Inbound(kind="score", text="5",
thread=ThreadHint(ticket_number=1042))`. The first score is kept and thanked for
(`survey_thanks`); pressing again changes nothing (it is audited).

Example: María presses ⭐ 5 under the survey for #1042 → ticket 1042 has satisfaction 5
and she reads "¡Gracias por tu respuesta!".
"""

from __future__ import annotations

from gateway.core.messages import SURVEY_SCORES
from gateway.core.responder import Context
from gateway.desk.notices import audit


class RecordScore:
    name = "survey"

    def matches(self, ctx: Context) -> bool:
        return ctx.inbound.kind == "score"

    async def handle(self, ctx: Context) -> None:
        ctx.stop()  # a button press is not a message to acknowledge or notify about
        ticket, text = ctx.ticket, ctx.inbound.text.strip()
        if text not in SURVEY_SCORES:
            await audit(ticket, ctx.inbound.sender.address, "survey.invalid",
                        {"answer": text[:50]}, ctx.now)
            return
        score = int(text)
        if ticket.satisfaction is not None:
            await audit(ticket, ctx.inbound.sender.address, "survey.repeat",
                        {"score": score, "kept": ticket.satisfaction}, ctx.now)
            return
        ticket.satisfaction = score
        await ticket.save(update_fields=["satisfaction"])
        await audit(ticket, ctx.inbound.sender.address, "survey.score", {"score": score},
                    ctx.now)
        ctx.reply("survey_thanks", score=score)
