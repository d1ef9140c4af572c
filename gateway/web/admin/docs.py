"""The JSON API's documentation, for signed-in admins only: /api/docs (Swagger UI) and
/api/openapi.json (also with the API's HTTP Basic, for tools)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from gateway.web.admin.api import BASIC, api_user
from gateway.web.admin.render import html_page
from gateway.web.admin.session import AdminSession

CDN = "https://cdn.jsdelivr.net"  # where Swagger UI's script and styles come from
POLICY = (f"default-src 'self'; script-src 'self' {CDN}; style-src 'self' {CDN} "
          "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; form-action 'self'; "
          "frame-ancestors 'none'; base-uri 'none'; object-src 'none'")


def docs_router(app: FastAPI, session: AdminSession) -> APIRouter:
    """GET /api/docs (the sign-in page first) and /api/openapi.json (401 first)."""
    router = APIRouter(include_in_schema=False)

    @router.get("/api/docs")
    async def docs(request: Request) -> Response:
        await session.require(request)
        return html_page("api_docs.html", title=app.title, policy=POLICY)

    @router.get("/api/openapi.json")
    async def schema(request: Request) -> JSONResponse:
        if await session.current_user(request) is None:
            await api_user(request, await BASIC(request))  # type: ignore[arg-type]
        return JSONResponse(app.openapi())

    return router
