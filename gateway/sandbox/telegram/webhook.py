"""Webhooks: setWebhook, deleteWebhook and getWebhookInfo, and the delivery of queued updates
to the webhook — with the secret token header, retried `webhook_attempts` times
`webhook_backoff` seconds apart, then given up like Telegram does. Like Telegram, several
updates are posted at once (up to the hook's `max_connections`, 40 by default), but the
updates of one chat one at a time, in order.

Example:
    >>> await bot.set_webhook(hook_url, secret_token="s3cr3t")          # doctest: +SKIP
    >>> sandbox.inject_text(42, "Hola")     # POSTed to the hook        # doctest: +SKIP
    >>> sandbox.webhook_log[-1]["status"]                               # doctest: +SKIP
    200
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import httpx
from starlette.requests import Request

from gateway.sandbox.telegram.state import SandboxState
from gateway.sandbox.telegram.wire import _P, ApiError, _int

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header name)
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{1,256}")


class Webhooks(SandboxState):
    """The webhook methods and delivery (a mixin of `TelegramSandbox`)."""

    async def _set_webhook(self, p: _P, files: _P, request: Request) -> Any:
        url, secret = p.get("url") or "", p.get("secret_token") or None
        if not url:
            return await self._delete_webhook(p, files, request)
        if not str(url).startswith(("http://", "https://")):
            raise ApiError(400, "Bad Request: bad webhook: invalid URL")
        if secret is not None and not _SECRET_RE.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if p.get("drop_pending_updates"):
            self._pending.clear()
        connections = min(max(_int(p.get("max_connections"), 40, "max_connections"), 1), 100)
        self._webhook = {"url": url, "secret": secret, "max_connections": connections}
        self._hook_error = None
        self._wake_pollers()
        self._hook_wake.set()
        return True

    async def _delete_webhook(self, p: _P, files: _P, request: Request) -> Any:
        if p.get("drop_pending_updates"):
            self._pending.clear()
        self._webhook = None
        return True

    async def _get_webhook_info(self, p: _P, files: _P, request: Request) -> Any:
        info: dict[str, Any] = {"url": self._webhook["url"] if self._webhook else "",
                                "has_custom_certificate": False,
                                "pending_update_count": len(self._pending)}
        if self._webhook:
            info["max_connections"] = self._webhook["max_connections"]
        if self._hook_error:
            info["last_error_date"], info["last_error_message"] = self._hook_error
        return info

    # -- delivery ------------------------------------------------------------------------------

    async def _deliver_webhooks(self) -> None:
        busy: dict[int, asyncio.Task[None]] = {}  # id(update) → its delivery
        async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
            try:
                while not self._closing:
                    await self._hook_wake.wait()
                    self._hook_wake.clear()
                    hook = self._webhook
                    if hook is not None:
                        self._start_deliveries(client, hook, busy)
            finally:
                for task in busy.values():
                    task.cancel()
                await asyncio.gather(*busy.values(), return_exceptions=True)

    def _start_deliveries(self, client: httpx.AsyncClient, hook: dict[str, Any],
                          busy: dict[int, asyncio.Task[None]]) -> None:
        """Post the queued updates that may go now: the first of each chat, up to the
        hook's max_connections in flight."""
        chats: set[Any] = set()  # a chat whose first queued update is posted or waiting
        for update in list(self._pending):
            chat = _chat_of(update)
            if chat is not None:
                if chat in chats:
                    continue
                chats.add(chat)
            if id(update) in busy:
                continue
            if len(busy) >= hook["max_connections"]:
                break
            busy[id(update)] = asyncio.create_task(self._deliver(client, hook, update, busy))

    async def _deliver(self, client: httpx.AsyncClient, hook: dict[str, Any],
                       update: dict[str, Any], busy: dict[int, asyncio.Task[None]]) -> None:
        try:
            await self._post_update(client, hook, update)
            if self._webhook is hook:  # delivered, or given up on like Telegram
                self._pending = [u for u in self._pending if u is not update]
            # else: the hook changed or was deleted meanwhile, the update stays queued
        finally:
            busy.pop(id(update), None)
            self._hook_wake.set()

    async def _post_update(self, client: httpx.AsyncClient, hook: dict[str, Any],
                           update: dict[str, Any]) -> bool:
        headers = {"content-type": "application/json"}
        if hook["secret"]:
            headers[SECRET_HEADER] = hook["secret"]
        body = json.dumps(update, ensure_ascii=False).encode()
        for attempt in range(1, self.webhook_attempts + 1):
            status: int | None = None
            try:
                response = await client.post(hook["url"], content=body, headers=headers)
                status = response.status_code
                error = None if 200 <= status < 300 else (
                    f"Wrong response from the webhook: {status} {response.reason_phrase}")
            except httpx.HTTPError as exc:
                error = f"Connection failed: {type(exc).__name__} {exc}".strip()
            self.webhook_log.append({"update_id": update["update_id"], "attempt": attempt,
                                     "status": status, "error": error})
            if error is None:
                return True
            self._hook_error = (int(time.time()), error)
            if self._webhook is not hook or self._closing:
                return False
            if attempt < self.webhook_attempts:
                await asyncio.sleep(self.webhook_backoff)
        return False


def _chat_of(update: dict[str, Any]) -> Any:
    """The chat an update belongs to (its deliveries keep their order), None if none."""
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post",
                 "callback_query"):
        payload = update.get(kind)
        if not isinstance(payload, dict):
            continue
        if kind == "callback_query":
            sender = payload.get("from")
            payload = payload.get("message") if isinstance(payload.get("message"), dict) \
                else {"chat": sender}
        chat = payload.get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int | str):
            return chat["id"]
    return None
