"""What wraps every route of the HTTP app, outermost first (see `http.http_app`):

- `SecurityHeaders`: nosniff, Referrer-Policy same-origin, no framing, a strict default
  Content-Security-Policy for responses that set none (the HTML pages set their own), and
  Strict-Transport-Security when the gateway's public URL is https.
- `BodyLimit`: reads the request's body before any route (or Bolt) does, and answers 413
  when it is over `[http] max_body` — at once for a larger Content-Length, and as soon as
  the count passes the limit for a body sent in chunks without one, so the rest is never
  read. A body within the limit is handed to the route from memory.

Example:
    >>> app = SecurityHeaders(BodyLimit(app, limit=1024 * 1024), hsts=True)  # doctest: +SKIP
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.web.refusals import say

# For whatever sets no policy of its own (JSON, plain text, redirects, static files).
STRICT_POLICY = ("default-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
                 "form-action 'none'")
HSTS = "max-age=31536000"


class SecurityHeaders:
    """Adds the security headers a response lacks (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.headers = {"X-Content-Type-Options": "nosniff",
                        "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
                        "Content-Security-Policy": STRICT_POLICY}
        if hsts:
            self.headers["Strict-Transport-Security"] = HSTS

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413, unread beyond the limit."""

    def __init__(self, app: ASGIApp, *, limit: int, locale: str = "es") -> None:
        self.app, self.limit, self.locale = app, limit, locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "").strip()
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left half-way: nobody to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.limit:
                await self._refuse(scope, receive, send)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        text = say(Headers(scope=scope), "too_large", self.locale, limit=self.limit)
        # No "Connection: close": uvicorn then discards (never keeps) the rest of the body
        # while the client is still sending it, and closes the connection after its
        # keep-alive timeout, so the client reads this answer rather than a reset.
        await PlainTextResponse(text, status_code=413)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then whatever the client sends next
    (its disconnect)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
