"""The admin FastAPI app: one router per page group, plus the JSON API."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.services import Services
from gateway.web.admin.api import api_router
from gateway.web.admin.dashboard import dashboard_router
from gateway.web.admin.docs import docs_router
from gateway.web.admin.editor import editor_router
from gateway.web.admin.hours import hours_router
from gateway.web.admin.login import login_router
from gateway.web.admin.session import AdminSession
from gateway.web.signin import SignInGuard


def admin_app(services: Services) -> FastAPI:
    """The admin pages and API for `services` (see the package docstring). The sign-in
    form and the API's HTTP Basic share one throttle."""
    app = FastAPI(title="Centralita admin API", docs_url=None, openapi_url=None,
                  redoc_url=None)
    session = AdminSession(services)
    guard = SignInGuard(services.settings.http, services.clock)
    app.state.signin, app.state.locale = guard, services.settings.gateway.default_locale
    app.include_router(login_router(session, guard))
    app.include_router(dashboard_router(session, services))
    app.include_router(editor_router(session, services))
    app.include_router(hours_router(session, services))
    app.include_router(api_router(services))
    app.include_router(docs_router(app, session))
    return app
