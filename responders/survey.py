"""The satisfaction survey's answer: a score from 1 to 5, recorded once per ticket.

A channel passes a button press as `Inbound(kind="score", text="5",
thread=ThreadHint(ticket_number=1042))`. On channels without buttons the customer answers
with a bare number: before it is threaded, a bare "1"–"5" from the customer of a resolved
(or closed) ticket whose survey was sent is read as her score, not as a new question
(`recognise`). The first score is kept and thanked for (`survey_thanks`); answering again
changes nothing (it is audited).

Example: María presses ⭐ 5 under the survey for #1042 → ticket 1042 has satisfaction 5
and she reads "¡Gracias por tu respuesta!".
"""

from __future__ import annotations

from dataclasses import replace

from gateway.core.messages import SURVEY_SCORES, Inbound
from gateway.core.responder import Arrival, Context
from gateway.desk.notices import audit
from gateway.store.models import ScheduledAction


class RecordScore:
    name = "survey"

    async def recognise(self, arrival: Arrival) -> Inbound | None:
        """A bare score answering a resolved ticket's survey is a score."""
        inbound, ticket = arrival.inbound, arrival.ticket
        if inbound.kind != "message" or inbound.thread.new_ticket or \
                inbound.text.strip() not in SURVEY_SCORES or ticket is None or \
                ticket.status not in ("resolved", "closed"):
            return None
        if not await ScheduledAction.filter(ticket_id=ticket.id, kind="survey",
                                            status="done").exists():
            return None
        return replace(inbound, kind="score", thread=replace(
            inbound.thread, ticket_number=ticket.number, verified=True))

    def matches(self, ctx: Context) -> bool:
        return ctx.inbound.kind == "score" and ctx.ticket is not None

    async def handle(self, ctx: Context) -> None:
        ctx.stop()  # a button press is not a message to acknowledge or notify about
        ticket, text = ctx.ticket, ctx.inbound.text.strip()
        assert ticket is not None
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
