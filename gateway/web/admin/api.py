"""The JSON API, /api/templates… (OpenAPI at /api/docs, for signed-in admins): the same
admins as the pages, with HTTP Basic, throttled like the sign-in form (one `SignInGuard`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel

from gateway.services import Services
from gateway.texts.engine import TemplateError
from gateway.web.admin.texts import check_key, save_version, stored
from gateway.web.refusals import say
from gateway.web.signin import SignInGuard, TooManyAttempts, client_address

BASIC = HTTPBasic()


async def api_user(request: Request,
                   credentials: Annotated[HTTPBasicCredentials, Depends(BASIC)]) -> str:
    """The admin calling the JSON API (HTTP Basic, the same passwords as the pages,
    checked by the admin app's `SignInGuard`): 401 for wrong credentials, 429 with
    Retry-After when throttled."""
    guard: SignInGuard = request.app.state.signin
    locale: str = request.app.state.locale
    try:
        admin = await guard.admin(client_address(request), credentials.username,
                                  credentials.password)
    except TooManyAttempts as exc:
        raise HTTPException(429, say(request.headers, "too_many", locale,
                                     seconds=exc.retry_after),
                            headers={"Retry-After": str(exc.retry_after)}) from None
    if admin is None:
        raise HTTPException(401, say(request.headers, "wrong_password", locale),
                            headers={"WWW-Authenticate": "Basic"})
    return admin.username


class TemplateBody(BaseModel):
    subject: str = ""
    body: str
    channel: str = ""


def api_router(services: Services) -> APIRouter:
    """List, read and save templates."""
    router = APIRouter(tags=["templates"])
    engine = services.templates

    @router.get("/api/templates")
    async def api_list(user: Annotated[str, Depends(api_user)]) -> list[dict[str, Any]]:
        """Every template: shipped text or the admin's newest version."""
        result = []
        for source in engine.defaults():
            versions = await stored(source.key, source.locale, source.channel)
            current = versions[0] if versions else None
            result.append({"key": source.key, "locale": source.locale,
                           "channel": source.channel, "version": current.version if current
                           else 0, "subject": current.subject if current else source.subject,
                           "body": current.body if current else source.body})
        return result

    @router.get("/api/templates/{key}/{locale}")
    async def api_get(key: str, locale: str, user: Annotated[str, Depends(api_user)],
                      channel: str = "") -> dict[str, Any]:
        check_key(services, key, locale, channel)
        versions = await stored(key, locale, channel)
        shipped = engine.default(key, locale, channel)
        return {"key": key, "locale": locale, "channel": channel,
                "variables": engine.variables(key),
                "versions": [{"version": v.version, "subject": v.subject, "body": v.body,
                              "created_by": v.created_by,
                              "created_at": v.created_at.isoformat()} for v in versions],
                "shipped": {"subject": shipped.subject, "body": shipped.body}}

    @router.put("/api/templates/{key}/{locale}")
    async def api_put(key: str, locale: str, text: TemplateBody,
                      user: Annotated[str, Depends(api_user)]) -> dict[str, Any]:
        """Save a new version; 422 with the reason when it does not validate."""
        check_key(services, key, locale, text.channel)
        try:
            version = await save_version(services, key, locale, text.channel, text.subject,
                                         text.body, user)
        except TemplateError as exc:
            raise HTTPException(422, {"error": str(exc), "kind": exc.kind,
                                      "line": exc.line}) from None
        await services.store.refresh()
        return {"version": version}

    return router
