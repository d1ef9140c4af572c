"""The admin FastAPI app: one router per page group, plus the JSON API."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.services import Services
from gateway.web.admin.api import api_router
from gateway.web.admin.dashboard import dashboard_router
from gateway.web.admin.editor import editor_router
from gateway.web.admin.hours import hours_router
from gateway.web.admin.login import login_router
from gateway.web.admin.session import AdminSession


def admin_app(services: Services) -> FastAPI:
    """The admin pages and API for `services` (see the package docstring)."""
    app = FastAPI(title="Centralita admin API", docs_url="/api/docs",
                  openapi_url="/api/openapi.json", redoc_url=None)
    session = AdminSession(services)
    app.include_router(login_router(session))
    app.include_router(dashboard_router(session, services))
    app.include_router(editor_router(session, services))
    app.include_router(hours_router(session, services))
    app.include_router(api_router(services))
    return app
