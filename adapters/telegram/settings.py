"""Settings of the Telegram channel: `[channels.telegram]`.

Example (settings.toml):

    [channels.telegram]
    token_env = "TELEGRAM_TOKEN"      # the bot token is read from this variable
    mode = "polling"                  # or "webhook" (needs [http] public_url)
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gateway.settings import Duration

TWENTY_MB = 20 * 1024 * 1024


class TelegramSettings(BaseModel):
    """The bot, how updates arrive, and what it accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    token: str = ""                       # better: CENTRALITA_CHANNELS__TELEGRAM__TOKEN
    token_env: str = "TELEGRAM_TOKEN"  # noqa: S105 (the name of a variable holding it)
    mode: Literal["polling", "webhook"] = "polling"
    # Self-hosted Bot API servers and the sandbox use their own base URLs.
    base_url: str = "https://api.telegram.org/bot"
    base_file_url: str = "https://api.telegram.org/file/bot"
    webhook_secret: str = Field("", pattern=r"^[A-Za-z0-9_-]{0,256}$")
    webhook_path: str = "/telegram/webhook"
    poll_timeout: int = Field(25, ge=0, le=50)  # seconds a getUpdates long poll waits
    allow_groups: bool = False            # messages from groups are ignored unless true
    max_file_bytes: int = Field(TWENTY_MB, ge=0, le=TWENTY_MB)  # bots download ≤ 20 MB
    # A customer's file not fetched within this (getFile and download) is recorded on her
    # message without its contents, like one over max_file_bytes.
    file_timeout: Duration = timedelta(seconds=60)
    status_command: str = ""              # shown in texts; "" = /estado or /status by language
    # Commands → what they do: "start" greets, "status" lists open tickets, "new" opens one.
    commands: dict[str, Literal["start", "status", "new"]] = Field(default_factory=lambda: {
        "start": "start", "estado": "status", "status": "status", "nuevo": "new",
        "new": "new"})

    @field_validator("file_timeout")
    @classmethod
    def _file_timeout(cls, value: timedelta) -> timedelta:
        if not timedelta(0) < value <= timedelta(minutes=10):
            raise ValueError('more than 0 and at most 10 minutes, e.g. "60s"')
        return value

    @model_validator(mode="after")
    def _webhook(self) -> TelegramSettings:
        if self.mode == "webhook" and not self.webhook_secret:
            raise ValueError("webhook_secret: required in webhook mode (1-256 characters "
                             "A-Z a-z 0-9 _ -); Telegram sends it with every update")
        return self

    def bot_token(self) -> str:
        """The token from `token`, else from the variable `token_env` ('' if neither)."""
        return self.token or os.environ.get(self.token_env, "")
