"""Benchmark: the email corpus parsed and ingested through `Gateway.receive`, memory adapter,
SQLite, compared with the standard library's bare `email.message_from_bytes`.

    python -m bench.email [--repeat N] [--concurrency 32] [--db URL]

Every file of tests/email_corpus is copied `--repeat` times (default: enough for ~2000
messages); each copy gets its own Message-ID (and an `X-Bench-Copy` header, so the file
without a Message-ID gets its own synthetic id) and is not deduplicated. `--concurrency`
workers each take the next raw mail, run `parse_email` on it and hand the result to
`receive`, as the email adapter does, while the outbox delivers acknowledgements on the
memory channel. Two figures from the same run:

1. parse+ingest: messages per second from the first parse to the last `receive` returning;
2. message_from_bytes: messages per second of `email.message_from_bytes(raw,
   policy=email.policy.default)` over the same bytes, best of three passes (the floor any
   parser pays); `parse_email` alone over the same bytes is printed too, to tell the
   parsing from the storing.

The last line is:

    email: <msgs/s> msgs/s parse+ingest, message_from_bytes <msgs/s> msgs/s, ratio <r>
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import logging
import math
import re
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tortoise import Tortoise

from adapters.email.parse import parse_email
from adapters.email.settings import EmailSettings, MailboxSettings
from adapters.email.tokens import ReplyTokens
from adapters.memory import MemoryAdapter
from bench.running import running
from gateway.app import assemble
from gateway.settings import load_settings
from gateway.store.db import init_db, migrate

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "email_corpus"
TARGET = 2000
MESSAGE_ID = re.compile(rb"(?im)^(message-id:[ \t]*<?)")


def copies(repeat: int) -> list[bytes]:
    """`repeat` distinct copies of every corpus file, interleaved (file 1, file 2, …)."""
    files = [path.read_bytes() for path in sorted(CORPUS.glob("*.eml"))]
    out = []
    for n in range(repeat):
        for raw in files:
            raw = MESSAGE_ID.sub(rb"\g<1>copy%d." % n, raw, count=1)
            out.append(b"X-Bench-Copy: %d\r\n" % n + raw)
    return out


def best_rate(parse: Callable[[bytes], object], raws: list[bytes], rounds: int = 3) -> float:
    """Messages per second of `parse` over `raws`, best of `rounds`."""
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for raw in raws:
            parse(raw)
        best = max(best, len(raws) / (time.perf_counter() - start))
    return best


async def bench(repeat: int, concurrency: int, url: str | None, workdir: Path) -> None:
    raws = copies(repeat)
    db_url = url or f"sqlite://{workdir}/bench.sqlite3"
    settings = load_settings(ROOT / "settings.toml", database={"url": db_url},
                             gateway={"data_dir": str(workdir)}, agents={"console": ""},
                             outbox={"rate": {"email": 1e9}})  # no SMTP server to spare
    box = MailboxSettings(name="soporte", address="soporte@example.com", imap_host="localhost",
                          imap_user="soporte", smtp_host="localhost")
    email_settings = EmailSettings(token_secret="corpus-secret", mailboxes=[box])
    tokens = ReplyTokens("corpus-secret")
    await migrate(db_url)
    await Tortoise.close_connections()
    await init_db(db_url)
    channel = MemoryAdapter("email")
    app = assemble(settings, adapters={"email": channel})
    outcomes: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    try:
        queue = iter(raws)

        async def worker() -> None:
            for raw in queue:
                inbound = parse_email(raw, mailbox=box, settings=email_settings, tokens=tokens)
                kinds[inbound.kind] += 1
                try:
                    accepted = await app.gateway.receive(inbound)
                except Exception as exc:
                    outcomes[f"rejected ({type(exc).__name__})"] += 1
                    continue
                outcomes["duplicate" if accepted.duplicate
                         else "new ticket" if accepted.new_ticket else "same ticket"] += 1

        async with running(app):
            begin = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - begin
    finally:
        await Tortoise.close_connections()
    ours = len(raws) / elapsed
    print(f"corpus: {len(raws) // repeat} files x {repeat} copies = {len(raws)} messages "
          f"({sum(map(len, raws)) / 1e6:.1f} MB), {concurrency} at a time")
    print("kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())))
    print(f"parse+ingest: {len(raws)} messages in {elapsed:.2f} s: {ours:.0f} msgs/s")
    alone = best_rate(lambda raw: parse_email(raw, mailbox=box, settings=email_settings,
                                              tokens=tokens), raws, rounds=1)
    print(f"parse_email alone, same bytes: {alone:.0f} msgs/s")
    plain = best_rate(lambda raw: email.message_from_bytes(raw, policy=email.policy.default),
                      raws)
    print(f"message_from_bytes (policy=default), same bytes, best of 3: {plain:.0f} msgs/s")
    print(f"email: {ours:.0f} msgs/s parse+ingest, message_from_bytes {plain:.0f} msgs/s, "
          f"ratio {ours / plain:.2f}")


def main() -> None:
    files = len(list(CORPUS.glob("*.eml")))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=math.ceil(TARGET / max(files, 1)),
                        help=f"copies of each corpus file (default: {TARGET}+ messages)")
    parser.add_argument("--concurrency", type=int, default=32, help="messages in flight")
    parser.add_argument("--db", default=None, help="database URL (default: temporary SQLite)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="centralita-bench-", dir=ROOT) as tmp:
        asyncio.run(bench(args.repeat, args.concurrency, args.db, Path(tmp)))


if __name__ == "__main__":
    main()
