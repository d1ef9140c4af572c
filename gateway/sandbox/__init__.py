"""Fake platform servers on loopback, for tests, benchmarks and the demo.

`gateway.sandbox.telegram.TelegramSandbox` speaks the Telegram Bot API wire format, so the
real python-telegram-bot can be pointed at it; `gateway.sandbox.slack.SlackSandbox` is a
Slack workspace (the Web API for slack-sdk, and signed event deliveries to Bolt).
Submodules are imported lazily (so that `python -m gateway.sandbox.telegram` runs without
a double import).
"""

from __future__ import annotations

from typing import Any

__all__ = ["SlackSandbox", "TelegramSandbox"]


def __getattr__(name: str) -> Any:
    if name == "TelegramSandbox":
        from gateway.sandbox.telegram import TelegramSandbox

        return TelegramSandbox
    if name == "SlackSandbox":
        from gateway.sandbox.slack import SlackSandbox

        return SlackSandbox
    raise AttributeError(name)
