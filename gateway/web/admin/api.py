"""The JSON API, /api/templates… (OpenAPI at /api/docs): the same admins as the pages,
with HTTP Basic."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel

from gateway.services import Services
from gateway.store.models import AdminUser
from gateway.texts.engine import TemplateError
from gateway.web import auth
from gateway.web.admin.texts import check_key, save_version, stored

BASIC = HTTPBasic()


async def api_user(credentials: Annotated[HTTPBasicCredentials, Depends(BASIC)]) -> str:
    """The admin calling the JSON API (HTTP Basic, the same passwords as the pages)."""
    admin = await AdminUser.get_or_none(username=credentials.username)
    if admin is None or not auth.check_password(credentials.password, admin.password_hash):
        raise HTTPException(401, "wrong username or password",
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
