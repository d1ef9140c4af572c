"""The template editor: /admin/templates (the list) and /admin/templates/{key}/{locale}
(edit, save, live preview, revert to an older version)."""

from __future__ import annotations

import difflib
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import JSONResponse, Response
from tortoise.functions import Max

from gateway.services import Services
from gateway.store.models import Template as StoredTemplate
from gateway.texts.engine import TemplateError
from gateway.web.admin.session import AdminSession
from gateway.web.admin.texts import (
    CHANNELS,
    LOCALES,
    check_key,
    preview_text,
    save_version,
    stored,
)


def editor_router(session: AdminSession, services: Services) -> APIRouter:
    """The list of texts and the editor's GET and POST routes."""
    router = APIRouter(include_in_schema=False)

    @router.get("/admin/templates")
    async def template_list(request: Request) -> Response:
        await session.require(request)
        versions = {(r["key"], r["locale"]): r["v"] for r in
                    await StoredTemplate.filter(channel="").annotate(v=Max("version"))
                    .group_by("key", "locale").values("key", "locale", "v")}
        return await session.page(request, "templates.html", title="Textos",
                                  keys=services.templates.keys(), locales=LOCALES,
                                  versions=versions)

    @router.get("/admin/templates/{key}/{locale}")
    async def edit(request: Request, key: str, locale: str, channel: str = "") -> Response:
        await session.require(request)
        check_key(services, key, locale, channel)
        return await edit_page(session, services, request, key, locale, channel)

    @router.post("/admin/templates/{key}/{locale}")
    async def save(request: Request, key: str, locale: str,
                   subject: Annotated[str, Form()] = "", body: Annotated[str, Form()] = "",
                   channel: Annotated[str, Form()] = "",
                   csrf: Annotated[str, Form()] = "") -> Response:
        user = await session.require(request, csrf)
        check_key(services, key, locale, channel)
        try:
            version = await save_version(services, key, locale, channel, subject, body, user)
        except TemplateError as exc:
            return await edit_page(session, services, request, key, locale, channel,
                                   status=400, error=str(exc), subject=subject, body=body)
        await services.store.refresh()
        return await edit_page(session, services, request, key, locale, channel,
                               saved=version)

    @router.post("/admin/templates/{key}/{locale}/preview")
    async def preview(request: Request, key: str, locale: str,
                      subject: Annotated[str, Form()] = "", body: Annotated[str, Form()] = "",
                      channel: Annotated[str, Form()] = "",
                      ticket: Annotated[str, Form()] = "") -> JSONResponse:
        await session.require(request)  # the CSRF token comes as header X-CSRF-Token
        check_key(services, key, locale, channel)
        return JSONResponse(await preview_text(services, key, locale, channel, subject, body,
                                               ticket))

    @router.post("/admin/templates/{key}/{locale}/revert/{version}")
    async def revert(request: Request, key: str, locale: str, version: int,
                     channel: Annotated[str, Form()] = "",
                     csrf: Annotated[str, Form()] = "") -> Response:
        user = await session.require(request, csrf)
        check_key(services, key, locale, channel)
        old = await StoredTemplate.get_or_none(key=key, locale=locale, channel=channel,
                                               version=version)
        if old is None:
            raise HTTPException(404, "no such version")
        saved = await save_version(services, key, locale, channel, old.subject, old.body,
                                   f"{user} (vuelta a v{version})")
        await services.store.refresh()
        return await edit_page(session, services, request, key, locale, channel, saved=saved)

    return router


async def edit_page(session: AdminSession, services: Services, request: Request, key: str,
                    locale: str, channel: str, *, status: int = 200, error: str = "",
                    saved: int | None = None, subject: str | None = None,
                    body: str | None = None) -> Response:
    """The editor for one text: the draft `subject`/`body` (by default the newest version,
    or the shipped text), its preview, the variables, the history and the last change."""
    engine = services.templates
    history = await stored(key, locale, channel)
    shipped = engine.default(key, locale, channel)
    current = history[0] if history else None
    if subject is None:
        subject = current.subject if current else shipped.subject
    if body is None:
        body = current.body if current else shipped.body
    diff = ""
    if len(history) > 1:
        diff = "\n".join(difflib.unified_diff(
            history[1].body.splitlines(), history[0].body.splitlines(),
            f"v{history[1].version}", f"v{history[0].version}", lineterm=""))
    shown = await preview_text(services, key, locale, channel, subject, body)
    return await session.page(
        request, "edit.html", status, title=f"{key} {locale}", key=key, locale=locale,
        channel=channel, channels=CHANNELS, subject=subject, body=body, error=error,
        saved=saved, variables=list(engine.variables(key).items()), diff=diff,
        preview=shown.get("error") or (shown.get("subject", "") + "\n\n" +
                                       shown.get("body", "")).strip(),
        history=[{"version": v.version, "created_by": v.created_by or "—",
                  "when": v.created_at.astimezone(services.hours.tz)
                  .strftime("%d/%m/%Y %H:%M")} for v in history])
