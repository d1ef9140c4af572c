"""Survey answers by link, for channels without buttons (email).

With `[http] public_url` set, the survey carries one signed link per score
(`extra["survey_links"]`, which the email channel shows under the text). Opening a link
only shows a confirmation page, because mail scanners open every link of a message;
pressing its button posts the score into the pipeline like a Telegram button press.

Example:
    >>> links = await survey_links(services, 1042)           # doctest: +SKIP
    >>> links["5"]                                            # doctest: +SKIP
    'https://soporte.example.com/survey/1042/5?t=3f9c…'
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from gateway.core.messages import SURVEY_SCORES, Inbound, Party, ThreadHint
from gateway.desk.notices import customer_address
from gateway.store.models import ChannelState, Ticket
from gateway.store.state import load_state

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
_HTML = Environment(loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
                    autoescape=select_autoescape(default=True), keep_trailing_newline=True)


async def _secret() -> bytes:
    """The signing key, made once and shared by every gateway process (the database)."""
    state = await load_state(*_KEY)
    if not state:
        try:
            async with in_transaction():
                await ChannelState.create(channel=_KEY[0], key=_KEY[1],
                                          value={"key": secrets.token_hex(32)},
                                          updated_at=datetime.now(UTC))
        except IntegrityError:
            pass  # another process made it first: use theirs
        state = await load_state(*_KEY)
    return bytes.fromhex(state["key"])


def _token(secret: bytes, number: int, score: int) -> str:
    return hmac.new(secret, f"survey:{number}:{score}".encode(), hashlib.sha256).hexdigest()[:32]


async def survey_links(services: Any, number: int) -> dict[str, str]:
    """One link per score for ticket `number`; {} without `[http] public_url`."""
    base = services.settings.http.public_url.rstrip("/")
    if not base:
        return {}
    secret = await _secret()
    return {score: f"{base}/survey/{number}/{score}?t={_token(secret, number, int(score))}"
            for score in SURVEY_SCORES}


def _page(locale: str, page: str, status: int = 200, **values: Any) -> HTMLResponse:
    """The page templates/survey.html: `page` is "ask", "thanks" or "bad"."""
    words = _PAGES.get(locale, _PAGES["es"])
    return HTMLResponse(
        _HTML.get_template("survey.html").render(locale=locale, words=words, page=page,
                                                 **values),
        status_code=status, headers={"Content-Security-Policy": "default-src 'none'; "
                                     "style-src 'unsafe-inline'; form-action 'self'",
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
                token, _token(await _secret(), number, score)):
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
