"""The sandbox standalone: `python -m gateway.sandbox.telegram --port 8081 [--token T]`.

Example:
    >>> main(["--port", "8081"])          # serves until Ctrl-C         # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from gateway.sandbox.telegram.server import TelegramSandbox


async def _serve_forever(args: argparse.Namespace) -> None:
    sandbox = TelegramSandbox(args.token, host=args.host, port=args.port)
    await sandbox.start()
    print(f"Telegram sandbox on {sandbox.url}\n  token         {sandbox.token}\n"
          f"  base_url      {sandbox.base_url}\n  base_file_url {sandbox.base_file_url}\n"
          f"  customers:    curl -d '{{\"chat_id\": 42, \"text\": \"Hola\"}}' "
          f"{sandbox.url}/sandbox/inject/text\nCtrl-C stops.", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await sandbox.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Telegram Bot API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(args))
