"""Reading one mailbox folder over IMAP: catch up by UID, then IDLE (or poll), forever.

- Resume by UID: UIDVALIDITY and the last UID whose message was committed are stored
  (`gateway.store.state`); after a restart only newer mail is fetched. If UIDVALIDITY changes
  the folder is re-scanned; the pipeline's dedup by Message-ID makes that safe.
- A message counts as done only once `handle` returned (the gateway committed it); the
  stored UID moves after a whole fetched chunk is done, so a crash re-reads at most one
  chunk, which dedup absorbs: nothing lost, nothing answered twice.
- IDLE (RFC 2177) is re-issued every `idle_renew` (25 minutes by default, before the
  29-minute limit); without IDLE the folder is polled every `poll_interval`.
- Any network or server error (including the silent hang aioimaplib can fall into after a
  server restart: every command has a timeout) ends the session; it is reopened with
  exponential backoff up to `reconnect_max`.

Example:
    >>> reader = MailboxReader(box, settings, handle=store_raw_mail)   # doctest: +SKIP
    >>> await reader.run(stop_event)                                    # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from aioimaplib import IMAP4, Abort, CommandTimeout

from adapters.email.settings import EmailSettings, MailboxSettings
from gateway.core.adapter import Port
from gateway.core.backoff import Backoff
from gateway.core.clock import Clock, SystemClock

log = logging.getLogger("centralita.email.imap")



@dataclass(frozen=True)
class Fetched:
    """One mail read from the folder: its bytes and the server's arrival time. For a mail
    over `max_message_bytes`, `too_big` is its size and `raw` only its headers."""

    raw: bytes
    received_at: datetime | None = None
    too_big: int | None = None


Handle = Callable[[list[Fetched]], Awaitable[None]]
Progress = Callable[[str, int, int], None]

CHUNK = 50            # messages per UID FETCH
COMMAND_TIMEOUT = 30  # seconds for any single IMAP command
FETCH_TIMEOUT = 300   # seconds for one chunk of (possibly large) messages
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UID = re.compile(rb"UID (\d+)")
_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


class ImapError(Exception):
    """The server said NO/BAD, or the connection is gone: end the session, reconnect."""


def _ok(response: object, what: str) -> list[bytes | bytearray]:
    result = getattr(response, "result", None)
    if result != "OK":
        lines = getattr(response, "lines", [])
        detail = b" ".join(bytes(line) for line in lines[-1:]).decode(errors="replace")
        raise ImapError(f"{what}: {result} {detail}".strip())
    return list(getattr(response, "lines", []))


def parse_fetch(lines: list[bytes | bytearray]) -> list[tuple[int, bytes, datetime | None]]:
    """(uid, raw message, INTERNALDATE) from the lines of a UID FETCH response.

    >>> parse_fetch([b'1 FETCH (UID 5 INTERNALDATE "22-Nov-2026 22:30:00 -0300" '
    ...              b'BODY[] {2}', bytearray(b'hi'), b')', b'FETCH completed.'])[0][:2]
    (5, b'hi')
    """
    found: list[tuple[int, bytes, datetime | None]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if isinstance(line, bytes) and b"FETCH (" in line and line.endswith(b"}") and \
                i + 1 < len(lines) and isinstance(lines[i + 1], bytearray):
            raw = bytes(lines[i + 1])
            tail = bytes(lines[i + 2]) if i + 2 < len(lines) else b""
            uid = _UID.search(line) or _UID.search(tail)
            date = _INTERNALDATE.search(line) or _INTERNALDATE.search(tail)
            if uid:
                found.append((int(uid.group(1)), raw, _internaldate(date.group(1))
                              if date else None))
            i += 2
        else:
            i += 1
    return found


def _internaldate(value: bytes) -> datetime | None:
    try:
        day, month, rest = value.decode().strip().split("-", 2)
        year, clock, zone = rest.split(" ")
        return parsedate_to_datetime(f"{int(day)} {month} {year} {clock} {zone}")
    except (ValueError, TypeError, IndexError):
        return None


def _search_uids(lines: list[bytes | bytearray]) -> list[int]:
    uids: list[int] = []
    for line in lines:
        text = bytes(line).decode(errors="replace").strip()
        if text.upper().startswith("SEARCH"):
            text = text[len("SEARCH"):]
        if text and all(part.isdigit() for part in text.split()):
            uids += [int(part) for part in text.split()]
    return uids


class MailboxReader:
    """Feeds every new mail of one mailbox folder to `handle`, in UID order."""

    def __init__(self, mailbox: MailboxSettings, settings: EmailSettings, *, handle: Handle,
                 state: Port, clock: Clock | None = None, progress: Progress | None = None,
                 rng: Callable[[], float] = random.random) -> None:
        self.mailbox = mailbox
        self.settings = settings
        self.handle = handle
        self.state = state  # where the folder's UIDVALIDITY and last UID are kept
        self.clock = clock or SystemClock()
        self.progress = progress
        self.reconnect = Backoff(1, settings.reconnect_max.total_seconds(), rng=rng)
        self.key = f"{mailbox.name}/{mailbox.folder}"
        self.connected = asyncio.Event()  # set while a session is open (tests wait on it)
        self.sessions = 0
        self._client: IMAP4 | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Sessions until `stop` is set; errors end a session, never the reader."""
        failures = 0
        while not stop.is_set():
            try:
                await self._session(stop)
                failures = 0
            except (ImapError, Abort, CommandTimeout, TimeoutError, OSError, ssl.SSLError,
                    ConnectionError) as exc:
                failures += 1
                delay = self.reconnect.delay(failures)
                log.warning("mailbox %s: %s; reconnecting in %.1f s", self.key,
                            exc or type(exc).__name__, delay)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the mailbox for good
                failures += 1
                delay = self.reconnect.delay(failures)
                log.exception("mailbox %s: unexpected error; reconnecting in %.1f s",
                              self.key, delay)
            finally:
                self.connected.clear()
                await self._close()
            if not stop.is_set() and failures:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            if client.has_pending_idle():
                client.idle_done()
            await asyncio.wait_for(client.logout(), 2)
        with contextlib.suppress(Exception):
            client.protocol.transport.close()  # type: ignore[union-attr]

    async def _session(self, stop: asyncio.Event) -> None:
        box = self.mailbox
        lost = asyncio.Event()
        context = ssl.create_default_context() if box.imap_tls else None
        client = IMAP4(host=box.imap_host, port=box.imap_port, timeout=COMMAND_TIMEOUT,
                       conn_lost_cb=lambda _exc: lost.set(), ssl_context=context)
        self._client = client
        await client.wait_hello_from_server()
        _ok(await client.login(box.imap_user, box.imap_password), f"login as {box.imap_user}")
        lines = _ok(await client.select(box.folder), f"select {box.folder}")
        uidvalidity = next((int(m.group(1)) for line in lines
                            if (m := _UIDVALIDITY.search(bytes(line)))), 0)
        self.sessions += 1
        self.connected.set()
        log.info("mailbox %s: connected (UIDVALIDITY %s)", self.key, uidvalidity)
        state = await self.state.load_state("email", self.key)
        if state and state.get("uidvalidity") != uidvalidity:
            log.warning("mailbox %s: UIDVALIDITY changed from %s to %s; re-scanning "
                        "(mail already stored is recognised by its Message-ID)",
                        self.key, state.get("uidvalidity"), uidvalidity)
            state = {}
        last_uid = int(state.get("last_uid", 0)) if state else 0
        first_sync = not state
        idle = box.idle and client.has_capability("IDLE")
        while not stop.is_set():
            if lost.is_set():
                raise ImapError("the server closed the connection")
            last_uid = await self._sync(client, uidvalidity, last_uid, first_sync)
            first_sync = False
            if idle:
                await self._idle(client, stop, lost)
            else:
                await self._wait(stop, lost, box.poll_interval.total_seconds())
                if not stop.is_set():
                    _ok(await client.noop(), "noop")

    async def _wait(self, stop: asyncio.Event, lost: asyncio.Event, seconds: float) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def _idle(self, client: IMAP4, stop: asyncio.Event, lost: asyncio.Event) -> None:
        """One IDLE: until the server pushes something, `idle_renew` passes, or we stop."""
        renew = self.mailbox.idle_renew.total_seconds()
        idle = await client.idle_start(timeout=renew)
        push = asyncio.ensure_future(client.wait_server_push(timeout=renew + COMMAND_TIMEOUT))
        waits = [push, asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits[1:]:
                task.cancel()
        if lost.is_set():
            push.cancel()
            raise ImapError("the server closed the connection during IDLE")
        if push.done() and not push.cancelled() and push.exception() is not None:
            raise ImapError(f"IDLE failed: {push.exception()!r}")
        push.cancel()
        client.idle_done()
        try:
            await asyncio.wait_for(idle, COMMAND_TIMEOUT)
        except TimeoutError:
            raise ImapError("the server did not end IDLE") from None

    async def _sync(self, client: IMAP4, uidvalidity: int, last_uid: int,
                    first_sync: bool) -> int:
        """Hand every message after `last_uid` to `handle`; returns the new last UID."""
        if first_sync and self.settings.import_days:
            since = (self.clock.now() - timedelta(days=self.settings.import_days)).astimezone(UTC)
            criteria = f"SINCE {since.day}-{_MONTHS[since.month - 1]}-{since.year}"
        else:
            criteria = f"UID {last_uid + 1}:*"
        found = _search_uids(_ok(await client.uid_search(criteria, charset=None),
                                 f"search {criteria}"))
        # "UID n:*" also returns the newest message when its UID is below n: drop those.
        uids = sorted(uid for uid in set(found) if uid > last_uid)
        if not uids:
            return last_uid
        total = len(uids)
        if first_sync or total > CHUNK:
            log.info("mailbox %s: %d message(s) to import", self.key, total)
        done = 0
        for start in range(0, total, CHUNK):
            chunk = uids[start:start + CHUNK]
            await self.handle(await self._fetch(client, chunk))
            last_uid = chunk[-1]
            await self.state.save_state("email", self.key, {"uidvalidity": uidvalidity,
                                                            "last_uid": last_uid})
            await self._processed(client, chunk)
            done += len(chunk)
            if self.progress is not None:
                self.progress(self.key, done, total)
            if total > CHUNK:
                log.info("mailbox %s: imported %d of %d", self.key, done, total)
        return last_uid

    async def _fetch(self, client: IMAP4, chunk: list[int]) -> list[Fetched]:
        """The chunk's mail in UID order; a mail over `max_message_bytes` is never
        downloaded, only its headers (a 2 GB mail must not stop the mailbox)."""
        sizes = await self._sizes(client, chunk)
        limit = self.settings.max_message_bytes
        small = [uid for uid in chunk if sizes.get(uid, 0) <= limit]
        big = [uid for uid in chunk if sizes.get(uid, 0) > limit]
        found: list[tuple[int, Fetched]] = []
        for uids, part in ((small, "BODY.PEEK[]"), (big, "BODY.PEEK[HEADER]")):
            if not uids:
                continue
            response = await asyncio.wait_for(client.uid(
                "fetch", ",".join(map(str, uids)), f"(UID INTERNALDATE {part})"),
                FETCH_TIMEOUT)
            for uid, raw, date in parse_fetch(_ok(response, "fetch")):
                too_big = sizes[uid] if uid in big else None
                if too_big:
                    log.warning("mailbox %s: mail UID %d is %d bytes, over max_message_bytes "
                                "(%d): only its headers were read", self.key, uid, too_big,
                                limit)
                found.append((uid, Fetched(raw, date, too_big)))
        return [fetched for _, fetched in sorted(found, key=lambda pair: pair[0])]

    async def _sizes(self, client: IMAP4, chunk: list[int]) -> dict[int, int]:
        response = await asyncio.wait_for(client.uid(
            "fetch", ",".join(map(str, chunk)), "(UID RFC822.SIZE)"), COMMAND_TIMEOUT)
        sizes: dict[int, int] = {}
        for line in _ok(response, "fetch sizes"):
            uid, size = _UID.search(bytes(line)), _SIZE.search(bytes(line))
            if uid and size:
                sizes[int(uid.group(1))] = int(size.group(1))
        return sizes

    async def _processed(self, client: IMAP4, uids: list[int]) -> None:
        """Move processed mail to `move_to`, or mark it seen."""
        uid_set = ",".join(map(str, uids))
        target = self.mailbox.move_to

        async def uid(*args: str) -> object:
            return await asyncio.wait_for(client.uid(*args), COMMAND_TIMEOUT)

        if not target:
            _ok(await uid("store", uid_set, "+FLAGS.SILENT (\\Seen)"), "mark seen")
        elif client.has_capability("MOVE"):
            _ok(await uid("move", uid_set, target), f"move to {target}")
        else:
            _ok(await uid("copy", uid_set, target), f"copy to {target}")
            _ok(await uid("store", uid_set, "+FLAGS.SILENT (\\Deleted)"), "delete")
            _ok(await client.expunge(), "expunge")
