"""Signing in and out: /admin/login and /admin/logout."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gateway.store.models import AdminUser
from gateway.web import auth
from gateway.web.admin.session import COOKIE, PRE_COOKIE, AdminSession, cookie_flags


def login_router(session: AdminSession) -> APIRouter:
    """The login form, signing in (a session cookie) and signing out."""
    router = APIRouter(include_in_schema=False)

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
                                      error="El formulario caducó; vuelve a intentarlo.")
        admin = await AdminUser.get_or_none(username=username)
        if admin is None or not auth.check_password(password, admin.password_hash):
            return await session.page(request, "login.html", 401, title="Entrar",
                                      error="Usuario o contraseña incorrectos.")
        response = RedirectResponse("/admin/", status_code=303)
        response.set_cookie(COOKIE, auth.session_cookie(key, username),
                            max_age=auth.SESSION_SECONDS, **cookie_flags(request))
        response.delete_cookie(PRE_COOKIE)
        return response

    @router.post("/admin/logout")
    async def logout(request: Request, csrf: Annotated[str, Form()] = "") -> Response:
        await session.require(request, csrf)
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    return router
