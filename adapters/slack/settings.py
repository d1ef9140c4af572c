"""Settings of the Slack channel: `[channels.slack]` (the agents' console, and Slack as a
channel customers can write on).

Example (settings.toml):

    [agents]
    console = "slack"
    channel = "C0AGENTS"                 # the default agents' channel
    [channels.slack]
    bot_token_env = "SLACK_BOT_TOKEN"
    signing_secret_env = "SLACK_SIGNING_SECRET"
    [agents]                             # who is an agent, admins and routes: see there
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator


class SlackSettings(BaseModel):
    """Tokens, transport, and how the console behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    mode: Literal["http", "socket"] = "http"   # HTTP Events API, or Socket Mode
    bot_token: str = ""                        # better from the environment:
    bot_token_env: str = "SLACK_BOT_TOKEN"     # noqa: S105 (a variable's name)
    signing_secret: str = ""                   # HTTP mode: checks every request
    signing_secret_env: str = "SLACK_SIGNING_SECRET"  # noqa: S105 (a variable's name)
    app_token: str = ""                        # Socket Mode (xapp-…)
    app_token_env: str = "SLACK_APP_TOKEN"     # noqa: S105 (a variable's name)
    base_url: str = "https://slack.com/api/"   # the Web API (a sandbox for trials)
    events_path: str = "/slack/events"         # HTTP mode: events, buttons, /ticket
    command: str = "/ticket"                   # the slash command agents use
    customers: bool = True                     # DMs from non-agents are customer messages

    @model_validator(mode="before")
    @classmethod
    def _moved_to_agents(cls, values: Any) -> Any:
        """Routes, admins and who is an agent belong to every console: [agents]."""
        moved = {"routes": "routes", "agent_group": "members", "admins": "admins"}
        for old, new in moved.items():
            if isinstance(values, dict) and old in values:
                raise ValueError(f"{old}: moved to [agents] {new} (it applies to any console)")
        return values

    def token(self) -> str:
        return self.bot_token or os.environ.get(self.bot_token_env, "")

    def secret(self) -> str:
        return self.signing_secret or os.environ.get(self.signing_secret_env, "")

    def socket_token(self) -> str:
        return self.app_token or os.environ.get(self.app_token_env, "")
