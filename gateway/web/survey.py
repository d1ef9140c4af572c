"""Survey answers by link, for channels without buttons (email).

With `[http] public_url` set, the survey carries one signed link per score
(`Outbound.survey`, which the email channel shows under the text; see
`gateway.desk.survey`). Opening a link
only shows a confirmation page, because mail scanners open every link of a message;
pressing its button posts the score into the pipeline like a Telegram button press.

Example:
    >>> routes = survey_routes(gateway.receive)               # doctest: +SKIP
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from gateway.core.messages import SURVEY_SCORES, Inbound, Party, ThreadHint
from gateway.desk.notices import customer_address
from gateway.desk.survey import signing_key
from gateway.desk.survey import token as link_token
from gateway.store.models import Ticket

log = logging.getLogger("centralita.survey")

_KEY = ("survey", "secret")
_PAGES = {
    "es": {"title": "Encuesta de satisfacción", "ask": "Tu nota para la solicitud #{n}:",
           "confirm": "Enviar mi nota", "thanks": "¡Gracias! Guardamos tu nota para la "
           "solicitud #{n}.", "bad": "Este enlace no es válido."},
    "en": {"title": "Satisfaction survey", "ask": "Your score for request #{n}:",
           "confirm": "Send my score", "thanks": "Thank you! Your score for request #{n} "
           "was saved.", "bad": "This link is not valid."},
}
# The page has no script and no style; its one form posts back to itself.
POLICY = ("default-src 'none'; form-action 'self'; frame-ancestors 'none'; "
          "base-uri 'none'")
_HTML = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                    autoescape=select_autoescape(default=True), keep_trailing_newline=True)


def _page(locale: str, page: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page templates/survey.html: `page` is "ask", "thanks" or "bad"."""
    words = _PAGES.get(locale, _PAGES["es"])
    return HTMLResponse(
        _HTML.get_template("survey.html").render(locale=locale, words=words, page=page,
                                                 **values),
        status_code=status, headers={"Content-Security-Policy": POLICY,
                                     "X-Frame-Options": "DENY", "Cache-Control": "no-store"})


def survey_routes(receive: Callable[[Inbound], Awaitable[Any]]) -> list[Route]:
    """GET shows the confirmation, POST records the score through `receive`."""

    async def answer(request: Request) -> Response:
        number, score = request.path_params["number"], request.path_params["score"]
        form = await request.form() if request.method == "POST" else {}
        token = str(form.get("t") or request.query_params.get("t") or "")
        ticket = await Ticket.get_or_none(number=number)
        locale = ticket.locale if ticket is not None and ticket.locale in _PAGES else "es"
        if ticket is None or str(score) not in SURVEY_SCORES or not hmac.compare_digest(
                token, link_token(await signing_key(), number, score)):
            return _page(locale, "bad", 403)
        if request.method == "GET":
            return _page(locale, "ask", number=number, score=score,
                         top=SURVEY_SCORES[-1], token=token)
        await receive(Inbound(
            channel=ticket.channel, sender=Party("customer", await customer_address(ticket)),
            text=str(score), kind="score", external_id=f"survey-link:{number}:{score}",
            thread=ThreadHint(ticket_number=number, verified=True)))
        return _page(locale, "thanks", number=number)

    return [Route("/survey/{number:int}/{score:int}", answer, methods=["GET", "POST"])]
