"""Socket Mode: with `sandbox.socket_mode = True` every delivery travels as an envelope on
the websocket the app opened (`apps.connections.open`, with the app token), and waits for
the app's acknowledgement.

Example:
    >>> sandbox.socket_mode = True                                      # doctest: +SKIP
    >>> await AsyncSocketModeHandler(app, sandbox.app_token).connect_async()  # doctest: +SKIP
    >>> r = await sandbox.slash_command("U0ANA", "C0AGENTS", "/ticket")  # doctest: +SKIP
    >>> r.status_code            # the app acknowledged the envelope    # doctest: +SKIP
    200
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.sandbox.slack.wire import _P
from gateway.sandbox.slack.workspace import Workspace


class SocketMode(Workspace):
    """The Socket Mode websocket and its envelopes (a mixin of `SlackSandbox`)."""

    async def _deliver_on_socket(self, kind: str, body: bytes, content_type: str,
                                 event_id: str | None) -> httpx.Response:
        """The same delivery as a Socket Mode envelope; the app's acknowledgement (with its
        `payload`, if any) comes back as a 200 response, none in time as a 408."""
        if content_type.startswith("application/json"):
            envelope_type, payload = "events_api", json.loads(body)
            if payload.get("type") == "url_verification":
                return httpx.Response(200, json={})  # not a Socket Mode thing
        elif kind == "slash_command":
            envelope_type, payload = "slash_commands", dict(parse_qsl(body.decode()))
        else:
            envelope_type = "interactive"
            payload = json.loads(dict(parse_qsl(body.decode()))["payload"])
        if not self._sockets:
            raise RuntimeError("Socket Mode: the app has no open connection")
        envelope_id = str(uuid.uuid4())
        acked: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = acked
        started = time.monotonic()
        await self._sockets[-1].send_json({
            "envelope_id": envelope_id, "type": envelope_type, "payload": payload,
            "accepts_response_payload": envelope_type != "events_api",
            "retry_attempt": 0, "retry_reason": ""})
        try:
            answer = await asyncio.wait_for(acked, self.delivery_timeout)
            response = httpx.Response(200, json=answer.get("payload") or {})
        except TimeoutError:
            response = httpx.Response(408)
        finally:
            self._acks.pop(envelope_id, None)
        self.deliveries.append({"kind": kind, "url": "socket-mode", "status":
                                response.status_code, "elapsed": time.monotonic() - started,
                                "late": False, "event_id": event_id, "retry_num": None})
        self._notify()
        return response

    async def _connections_open(self, p: _P) -> dict[str, Any]:
        return {"url": f"ws://{self.host}:{self.port}/socket-mode?ticket={uuid.uuid4()}"}

    async def _socket(self, websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_json({"type": "hello", "num_connections": len(self._sockets) + 1,
                                   "debug_info": {"host": "sandbox"},
                                   "connection_info": {"app_id": self.app_id}})
        self._sockets.append(websocket)
        try:
            while True:
                message = await websocket.receive_json()
                future = self._acks.get(str(message.get("envelope_id")))
                if future is not None and not future.done():
                    future.set_result(message)
        except (WebSocketDisconnect, ValueError, KeyError):
            pass
        finally:
            self._sockets.remove(websocket)
