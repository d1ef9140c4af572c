"""Who is signed in: the signing secret, session cookies and CSRF tokens.

The secret is made once and kept in the database (state "admin"/"secret"), so sessions
survive restarts. A session is a signed cookie (`COOKIE`) carrying the admin's session
version: it is good while her row holds that version, so signing out (`revoke`), a new
password (`centralita admin create`) or removing her (`centralita admin remove`) ends
every cookie she has. Before signing in, the login form's CSRF token is tied to a random
cookie of its own (`PRE_COOKIE`).
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import Response
from tortoise.expressions import F

from gateway.services import Services
from gateway.store.models import AdminUser
from gateway.store.state import load_state, save_state
from gateway.web import auth
from gateway.web.admin.render import html_page

COOKIE = "centralita_admin"
PRE_COOKIE = COOKIE + "_pre"


def cookie_flags(request: Request) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, and Secure when served over https."""
    return {"httponly": True, "samesite": "strict",
            "secure": request.url.scheme == "https"}


class AdminSession:
    """The sessions of one admin app: checks who is signed in and renders their pages."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._key: bytes | None = None

    async def secret(self) -> bytes:
        """The key that signs session cookies and CSRF tokens (made on first use)."""
        if self._key is None:
            state = await load_state("admin", "secret")
            if not state.get("key"):
                state = {"key": secrets.token_hex(32)}
                await save_state("admin", "secret", state, self.services.clock.now())
            self._key = bytes.fromhex(state["key"])
        return self._key

    async def current_user(self, request: Request) -> str | None:
        """The signed-in admin's username, or None (no cookie; a forged or expired one; or
        one of a session since ended). Checked once per request."""
        if not hasattr(request.state, "admin_user"):
            request.state.admin_user = await self._holder(request.cookies.get(COOKIE))
        return request.state.admin_user

    async def _holder(self, cookie: str | None) -> str | None:
        session = auth.read_session(await self.secret(), cookie)
        if session is None:
            return None
        admin = await AdminUser.get_or_none(username=session.username)
        if admin is None or admin.session_version != session.version:
            return None
        return admin.username

    async def cookie_for(self, admin: AdminUser) -> str:
        """A new session cookie for `admin`, at her current session version."""
        return auth.session_cookie(await self.secret(), admin.username, admin.session_version)

    async def revoke(self, username: str) -> None:
        """End every session of `username`, in every browser (signing out)."""
        await AdminUser.filter(username=username).update(
            session_version=F("session_version") + 1)

    async def require(self, request: Request, csrf: str | None = None) -> str:
        """The signed-in admin, or a redirect to the login page (303). A POST must also
        carry the session's CSRF token, as form field `csrf` or header X-CSRF-Token (403)."""
        user = await self.current_user(request)
        if user is None:
            raise HTTPException(303, headers={"Location": "/admin/login"})
        if request.method == "POST":
            token = csrf or request.headers.get("x-csrf-token")
            if not auth.csrf_ok(await self.secret(), request.cookies.get(COOKIE), token):
                raise HTTPException(403, "missing or wrong CSRF token")
        return user

    async def page(self, request: Request, name: str, status: int = 200, *,
                   csrf_cookie: str | None = None, **values: Any) -> Response:
        """Render `name`; its forms carry the CSRF token of the session (or of the
        pre-login cookie `csrf_cookie`)."""
        cookie = csrf_cookie or request.cookies.get(COOKIE) or \
            request.cookies.get(PRE_COOKIE) or ""
        csrf = auth.csrf_token(await self.secret(), cookie)
        return html_page(name, status, user=await self.current_user(request), csrf=csrf,
                         **values)
