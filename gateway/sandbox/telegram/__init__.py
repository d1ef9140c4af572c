"""A fake Telegram Bot API server on loopback (Starlette + uvicorn, in the caller's loop).

python-telegram-bot (PTB) is pointed at it with
`Bot(token, base_url=sandbox.base_url, base_file_url=sandbox.base_file_url)`. It speaks the
wire format PTB uses: parameters form-encoded (non-string values JSON-encoded), multipart for
uploads, or a JSON body; answers `{"ok": true, "result": ...}` or `{"ok": false, "error_code",
"description", "parameters": {"retry_after"}}`. Telegram's limits are enforced (text 4096,
caption 1024, callback data 64 bytes, downloads 20 MB), and faults can be scheduled: errors,
delays and dropped connections per method, files that answer 404/401 or hang, malformed
updates (`inject_update`).

Run standalone with `python -m gateway.sandbox.telegram --port 8081 [--token T]`; customers
are then simulated with `POST /sandbox/inject/{text|photo|document|voice|edit|callback|update}`
(a JSON object of the inject_* arguments; bytes as `data_b64`) and `GET /sandbox/sent`.

`TelegramSandbox` is assembled from one mixin per module, all sharing the state that
`state.SandboxState` sets up:

    wire       the wire format: parameter decoding, error answers, Telegram's limits
    state      chats, messages, the update queue and the record of sends
    customers  scripted customers (inject_*), known and blocked chats
    methods    the Bot API methods (sendMessage, sendPhoto, editMessageText, ...)
    updates    getUpdates long polling
    webhook    setWebhook & co. and webhook delivery with retries
    files      stored files, getFile and downloads
    controls   the test API (wait_sent, scheduled faults) and the /sandbox/* routes
    server     `TelegramSandbox` itself: routes, method dispatch, start/stop
    cli        `python -m gateway.sandbox.telegram`

Example:
    >>> from gateway.sandbox.telegram import TelegramSandbox
    >>> sandbox = TelegramSandbox("123456:TEST")
    >>> sandbox.inject_text(42, "Hola")["update_id"]
    1
"""

from gateway.sandbox.telegram.cli import main
from gateway.sandbox.telegram.customers import GROUP_SENDER_ID
from gateway.sandbox.telegram.server import TelegramSandbox
from gateway.sandbox.telegram.webhook import SECRET_HEADER
from gateway.sandbox.telegram.wire import (
    CALLBACK_DATA_LIMIT,
    CALLBACK_TEXT_LIMIT,
    CAPTION_LIMIT,
    DOWNLOAD_LIMIT,
    PHOTO_UPLOAD_LIMIT,
    TEXT_LIMIT,
    UPLOAD_LIMIT,
    ApiError,
)

__all__ = [
    "CALLBACK_DATA_LIMIT", "CALLBACK_TEXT_LIMIT", "CAPTION_LIMIT", "DOWNLOAD_LIMIT",
    "GROUP_SENDER_ID", "PHOTO_UPLOAD_LIMIT", "SECRET_HEADER", "TEXT_LIMIT", "UPLOAD_LIMIT",
    "ApiError", "TelegramSandbox", "main",
]
