"""A fake Slack server on loopback (Starlette + uvicorn, in the caller's loop).

Both directions of Slack are played: the Web API that slack-sdk's `AsyncWebClient` calls
(`AsyncWebClient(token=..., base_url=sandbox.api_url)`), and Slack's deliveries to the
gateway — Events API callbacks, interactivity payloads and slash commands, signed with the
signing secret exactly like Slack signs them, so slack-bolt's `AsyncApp` verifies them.
With `socket_mode = True` the same deliveries travel instead as Socket Mode envelopes on the
websocket the app opens (`apps.connections.open` with the app token), each waiting for its
acknowledgement.

Wire format of the Web API as slack-sdk 3.x speaks it: POST (or GET) `/api/{method}` with
`Authorization: Bearer <token>`; arguments arrive as a JSON body (chat.postMessage,
chat.update, chat.postEphemeral, views.*), in the query string (most other methods, booleans
as "1"/"0"), form-encoded or multipart. Answers are `{"ok": true, ...}` or `{"ok": false,
"error": "..."}` (HTTP 200); rate limits are HTTP 429 with `Retry-After`. Slack's limits are
enforced where it is cheap (≤ 50 blocks, section text ≤ 3,000, text silently truncated past
40,000, trigger_id single use within 3 s, response_url ≤ 5 uses).

Run standalone with `python -m gateway.sandbox.slack --port 8082 [--gateway URL]`; events are
then injected with `POST /sandbox/{message|app_mention|block_action|slash_command|...}`
(a JSON object of the helper's arguments) and records read with `GET /sandbox/{posted|...}`.

`SlackSandbox` is assembled from one mixin per module, all sharing the state that
`workspace.Workspace` sets up:

    wire           the Web API wire format: errors, argument coercion, Block Kit checks
    workspace      members, channels, DMs and messages; the shared state and helpers
    web_api        the Web API methods (chat.*, reactions.*, conversations.*, users.*,
                   views.*) and their dispatch
    files          shared files, the files_upload_v2 flow, files.info, downloads
    events         Events API deliveries, signed like Slack's (`sign`)
    interactivity  block actions, modal submissions, slash commands, response_urls
    socket_mode    the same deliveries as Socket Mode envelopes on the app's websocket
    controls       the test API (wait_for, scheduled faults) and the /sandbox/* routes
    server         `SlackSandbox` itself: routes, the method table, start/stop
    cli            `python -m gateway.sandbox.slack`

Example:
    >>> from gateway.sandbox.slack import SlackSandbox
    >>> sandbox = SlackSandbox()
    >>> sandbox.add_channel("C0AGENTS", ["U0ANA"])["members"]
    ['U0ANA', 'U0BOT']
"""

from gateway.sandbox.slack.cli import main
from gateway.sandbox.slack.events import SIGNATURE_HEADER, SLACKBOT_UA, TIMESTAMP_HEADER, sign
from gateway.sandbox.slack.server import SlackSandbox
from gateway.sandbox.slack.wire import (
    BLOCKS_LIMIT,
    HEADER_TEXT_LIMIT,
    RESPONSE_URL_USES,
    SECTION_TEXT_LIMIT,
    TEXT_LIMIT,
    TRIGGER_TTL,
    SlackError,
)

__all__ = [
    "BLOCKS_LIMIT", "HEADER_TEXT_LIMIT", "RESPONSE_URL_USES", "SECTION_TEXT_LIMIT",
    "SIGNATURE_HEADER", "SLACKBOT_UA", "TEXT_LIMIT", "TIMESTAMP_HEADER", "TRIGGER_TTL",
    "SlackError", "SlackSandbox", "main", "sign",
]
