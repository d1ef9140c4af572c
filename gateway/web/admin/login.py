"""Signing in and out: /admin/login and /admin/logout."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gateway.web import auth
from gateway.web.admin.session import COOKIE, PRE_COOKIE, AdminSession, cookie_flags
from gateway.web.refusals import say
from gateway.web.signin import SignInGuard, TooManyAttempts, client_address


def login_router(session: AdminSession, guard: SignInGuard) -> APIRouter:
    """The login form, signing in (a session cookie; throttled by `guard`) and signing
    out (which ends the admin's sessions in every browser)."""
    router = APIRouter(include_in_schema=False)
    locale = session.services.settings.gateway.default_locale

    @router.get("/admin/login")
    async def login_form(request: Request) -> Response:
        # The login form's CSRF token is tied to a cookie set here, before any session.
        pre = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
        response = await session.page(request, "login.html", title="Entrar", csrf_cookie=pre)
        response.set_cookie(PRE_COOKIE, pre, **cookie_flags(request))
        return response

    @router.post("/admin/login")
    async def login(request: Request, username: Annotated[str, Form()] = "",
                    password: Annotated[str, Form()] = "",
                    csrf: Annotated[str, Form()] = "") -> Response:
        key = await session.secret()
        if not auth.csrf_ok(key, request.cookies.get(PRE_COOKIE), csrf):
            return await session.page(request, "login.html", 403, title="Entrar",
                                      error=say(request.headers, "form_expired", locale))
        try:
            admin = await guard.admin(client_address(request), username, password)
        except TooManyAttempts as exc:
            refused = await session.page(
                request, "login.html", 429, title="Entrar",
                error=say(request.headers, "too_many", locale, seconds=exc.retry_after))
            refused.headers["Retry-After"] = str(exc.retry_after)
            return refused
        if admin is None:
            return await session.page(request, "login.html", 401, title="Entrar",
                                      error=say(request.headers, "wrong_password", locale))
        response = RedirectResponse("/admin/", status_code=303)
        response.set_cookie(COOKIE, await session.cookie_for(admin),
                            max_age=auth.SESSION_SECONDS, **cookie_flags(request))
        response.delete_cookie(PRE_COOKIE)
        return response

    @router.post("/admin/logout")
    async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        user = await session.require(request, csrf)
        await session.revoke(user)
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return router
