"""The sandbox standalone: `python -m gateway.sandbox.slack --port 8082 [--gateway URL]`.

Example:
    >>> main(["--gateway", gateway_url, "--channel", "C0AGENTS"])  # until Ctrl-C # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from gateway.sandbox.slack.server import SlackSandbox


async def _serve_forever(args: argparse.Namespace) -> None:
    sandbox = SlackSandbox(bot_token=args.token, signing_secret=args.signing_secret,
                           host=args.host, port=args.port)
    for channel in args.channel:
        sandbox.add_channel(channel, [])
    if args.gateway:
        sandbox.set_gateway(args.gateway)
    await sandbox.start()
    gateway = sandbox.events_url or "(not set: POST /sandbox/set_gateway {\"url\": ...})"
    print(f"Slack sandbox on {sandbox.url}\n  api_url         {sandbox.api_url}\n"
          f"  bot token       {sandbox.bot_token}\n  signing secret  {sandbox.signing_secret}\n"
          f"  gateway         {gateway}\n"
          f"  a customer:     curl -d '{{\"channel\": \"C0AGENTS\", \"user\": \"U0AGENT\", "
          f"\"text\": \"Hola\"}}' {sandbox.url}/sandbox/message\nCtrl-C stops.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Slack (Web API + event delivery).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", default="xoxb-test")
    parser.add_argument("--signing-secret", default="test-signing-secret")
    parser.add_argument("--gateway", default=None,
                        help="the gateway's Bolt endpoint, e.g. http://127.0.0.1:8000/slack/events")
    parser.add_argument("--channel", action="append", default=[],
                        help="a channel id the bot is a member of (repeatable)")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
