"""`SlackSandbox`: the fake Slack server itself — its routes, the Web API method table, and
start/stop.

Example:
    >>> sandbox = SlackSandbox()                                        # doctest: +SKIP
    >>> await sandbox.start()                    # port 0: a free one   # doctest: +SKIP
    >>> client = AsyncWebClient(token="xoxb-test", base_url=sandbox.api_url)  # doctest: +SKIP
    >>> await sandbox.stop()                                            # doctest: +SKIP
"""

from __future__ import annotations

import httpx
from starlette.applications import Starlette
from starlette.routing import Route, WebSocketRoute

from gateway.sandbox.slack.controls import Controls
from gateway.sandbox.slack.events import EventsApi
from gateway.sandbox.slack.files import Files
from gateway.sandbox.slack.interactivity import Interactivity
from gateway.sandbox.slack.socket_mode import SocketMode
from gateway.sandbox.slack.web_api import WebApi
from gateway.sandbox.slack.wire import _Handler
from gateway.web.http import start_server


class SlackSandbox(WebApi, Files, EventsApi, Interactivity, SocketMode, Controls):
    """A Slack workspace on loopback: the Web API for slack-sdk, and Slack's signed deliveries
    (events, interactivity, slash commands) to the gateway's Bolt endpoint.

    Example (doctest: +SKIP, it needs a running loop and a Bolt app)::

        sandbox = SlackSandbox()
        await sandbox.start()
        sandbox.add_user("U0ANA", "Ana Agente", email="ana@example.com")
        sandbox.add_channel("C0AGENTS", ["U0ANA"])            # the bot is added too
        client = AsyncWebClient(token="xoxb-test", base_url=sandbox.api_url)
        await client.chat_postMessage(channel="C0AGENTS", text="Nuevo ticket")
        sandbox.set_gateway("http://127.0.0.1:8000/slack/events")   # Bolt's endpoint
        r = await sandbox.message("C0AGENTS", "U0ANA", "Lo atiendo",
                                  thread_ts=sandbox.posted[0]["ts"])
        assert r.status_code == 200
        await sandbox.resend(r.event_id, retry_num=1)        # Slack's retry, same body
        sandbox.fail("chat.postMessage", retry_after=2)      # next post: HTTP 429
        await sandbox.stop()

    Records: `calls` (every Web API call: {"method", **arguments}), `posted` (chat.postMessage
    only), `updated`, `deleted`, `reactions`, `ephemerals`, `views`, `uploads` (with the bytes),
    `responses` (what was POSTed to response_urls), `deliveries` (every request sent to the
    gateway: kind, status, elapsed seconds). Messages the sandbox injects are remembered too,
    so reactions, edits, deletions and block actions find them.

    Files customers send arrive with `url_private` on this server; downloading them needs
    `Authorization: Bearer <bot token>` — without it Slack (and the sandbox) answer 302 to an
    HTML login page (status 200 when followed), the classic trap.
    """

    def __init__(self, *, bot_token: str = "xoxb-test",  # noqa: S107 (a fake bot's token)
                 signing_secret: str = "test-signing-secret",  # noqa: S107
                 team_id: str = "T0TEAM", bot_user_id: str = "U0BOT",
                 host: str = "127.0.0.1", port: int = 0,
                 app_token: str = "xapp-test") -> None:  # noqa: S107
        super().__init__(bot_token=bot_token, signing_secret=signing_secret, team_id=team_id,
                         bot_user_id=bot_user_id, host=host, port=port, app_token=app_token)
        self._handlers: dict[str, _Handler] = {
            "auth.test": self._auth_test, "chat.postMessage": self._post_message,
            "chat.update": self._chat_update, "chat.postEphemeral": self._post_ephemeral,
            "chat.delete": self._chat_delete, "chat.getPermalink": self._get_permalink,
            "reactions.add": self._reactions_add, "reactions.remove": self._reactions_remove,
            "conversations.members": self._conversations_members,
            "conversations.open": self._conversations_open,
            "conversations.info": self._conversations_info, "users.info": self._users_info,
            "users.lookupByEmail": self._lookup_by_email, "views.open": self._views_open,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload, "files.info": self._files_info,
            "files.upload": self._files_upload_v1,
            "apps.connections.open": self._connections_open}
        self.app = Starlette(routes=[
            Route("/api/{method}", self._api, methods=["GET", "POST"]),
            Route("/upload/v1/{file_id}", self._upload, methods=["POST"]),
            Route("/files-pri/{owner}/{rest:path}", self._download, methods=["GET"]),
            Route("/hooks/{kind}/{team}/{rid}/{key}", self._respond, methods=["POST"]),
            Route("/sandbox/login", self._login_page, methods=["GET"]),
            WebSocketRoute("/socket-mode", self._socket),
            Route("/sandbox/{name}", self._control_read, methods=["GET"]),
            Route("/sandbox/{name}", self._control_act, methods=["POST"]),
        ])

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """slack-sdk's `base_url` (the trailing slash matters: it is joined with urljoin)."""
        return f"{self.url}/api/"

    async def start(self) -> None:
        """Bind (port 0 picks a free port), serve in this loop, return once listening."""
        self._client = httpx.AsyncClient(timeout=self.delivery_timeout, trust_env=False)
        self._server, self._serving, self.port = await start_server(self.app, self.host,
                                                                    self.port)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        if self._server is not None:
            self._server.should_exit = True
        if self._serving is not None:
            await self._serving
