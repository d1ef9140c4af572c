"""Reading Telegram with getUpdates: at least once, and no customer waits on another.

PTB's Updater advances the offset before an update is handled, so it can lose updates;
this loop does not. Each update is handled in a task of its own (`handle`: the adapter's
`handle_update`), so a file that takes long to fetch holds only its own update: while any
update is still in hand, getUpdates is asked again every `RECHECK` seconds and new updates
start at once. Telegram's offset — which confirms every update below it — moves past an
update only once it and every update before it are handled (stored, or logged and dropped
when it cannot be read); a crash re-reads the rest, and the gateway's dedup makes the
repeats no-ops. An update whose commit failed is read again after a backoff (1, 2, 4 …
60 s). A batch that python-telegram-bot cannot parse is read again raw, and the updates in
it that cannot be read are logged and confirmed.

Example:
    >>> polling = Polling(bot, port, adapter.handle_update, poll_timeout=25,
    ...                   clock=SystemClock())                            # doctest: +SKIP
    >>> task = asyncio.create_task(polling.run(stop))                        # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any

from telegram import Bot, Update
from telegram.error import NetworkError, RetryAfter
from telegram.error import TelegramError as TgError
from telegram.warnings import PTBDeprecationWarning

from gateway.core.adapter import Port
from gateway.core.backoff import Backoff
from gateway.core.clock import Clock

log = logging.getLogger("centralita.telegram")
UPDATES = ["message", "edited_message", "callback_query"]
OFFSET_EVERY = 1.0  # seconds between stores of the polling offset (see _save_offset)
RECHECK = 0.2  # seconds between getUpdates while an update is still in hand
RECONNECT = Backoff(base=1, ceiling=60, jitter=False)  # 1, 2, 4 … 60 s between polls
# PTB 22 warns on every read of RetryAfter.retry_after that its type will change; we
# accept both types (see retry_after).
warnings.filterwarnings("ignore", message=".*retry_after.*", category=PTBDeprecationWarning)


def retry_after(exc: RetryAfter) -> float:
    """Seconds Telegram asked us to wait (PTB 22 warns that the type becomes timedelta)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class Polling:
    """The getUpdates loop of one bot; `polls` counts the answers (tests wait on it)."""

    def __init__(self, bot: Bot, port: Port, handle: Callable[[Update], Awaitable[None]], *,
                 poll_timeout: int, clock: Clock) -> None:
        self.bot, self.port, self.handle = bot, port, handle
        self.poll_timeout, self.clock = poll_timeout, clock
        self.polls = 0
        self.offset: int | None = None   # the next update to read (what Telegram was told)
        self._saved = True               # whether the database has `offset`
        self._saved_at = float("-inf")
        self._in_hand: dict[int, asyncio.Task[None]] = {}  # update_id → its handling
        self._handled: set[int] = set()  # done, but an earlier update is still in hand

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set (or the task is cancelled); updates still in hand then
        are cancelled and read again after a restart."""
        stored = (await self.port.load_state("telegram", "updates")).get("offset", 0)
        self.offset = int(stored or 0) or None
        failures = 0
        try:
            while not stop.is_set():
                try:
                    failed = await self._round()
                    failures = failures + 1 if failed else 0
                    if failed:
                        await self._pause(stop, RECONNECT.delay(failures),
                                          f"{failed} update(s) not stored")
                except asyncio.CancelledError:
                    raise
                except RetryAfter as exc:
                    await self._pause(stop, retry_after(exc), f"getUpdates: {exc}")
                except Exception as exc:  # network, 5xx, a failed save of the offset
                    failures += 1
                    delay = RECONNECT.delay(failures)
                    network = isinstance(exc, NetworkError)
                    log.log(logging.WARNING if network else logging.ERROR,
                            "telegram: %s; polling again in %.1f s", exc, delay,
                            exc_info=not network)
                    await self._pause(stop, delay, str(exc))
        finally:
            for task in self._in_hand.values():
                task.cancel()
            await asyncio.gather(*self._in_hand.values(), return_exceptions=True)
            self._in_hand.clear()

    async def _round(self) -> int:
        """Read, start what is new, wait a little for what is in hand, move the offset;
        returns how many updates failed to be stored."""
        batch = await self._read(wait=0 if self._in_hand else self.poll_timeout)
        self.polls += 1
        for update_id, update in batch:
            if update_id in self._in_hand or update_id in self._handled:
                continue
            if update is None:
                self._handled.add(update_id)  # unreadable: logged by _read, confirmed
            else:
                self._in_hand[update_id] = asyncio.create_task(
                    self.handle(update), name=f"telegram update {update_id}")
        if self._in_hand:
            await asyncio.wait(self._in_hand.values(), timeout=RECHECK)
        failed = self._collect()
        self._advance([update_id for update_id, _ in batch])
        if not self._saved and self.clock.monotonic() - self._saved_at >= OFFSET_EVERY:
            await self.save()
        return failed

    def _collect(self) -> int:
        """Move finished tasks to `_handled`, or drop them to be read again (their commit
        failed); returns how many failed, logged once with the first failure."""
        failed: list[tuple[int, BaseException]] = []
        for update_id, task in list(self._in_hand.items()):
            if not task.done():
                continue
            del self._in_hand[update_id]
            exc = asyncio.CancelledError() if task.cancelled() else task.exception()
            if exc is None:
                self._handled.add(update_id)
            else:
                failed.append((update_id, exc))
        if failed:
            first, exc = failed[0]
            log.error("telegram: %d update(s) not stored, from update %s (%r); they will be "
                      "read again", len(failed), first, exc, exc_info=exc)
        return len(failed)

    def _advance(self, read: Sequence[int]) -> None:
        """The offset moves to the first update read that is not handled yet."""
        if not read:
            return
        ordered = sorted(read)
        offset = next((i for i in ordered if i not in self._handled), ordered[-1] + 1)
        self._handled = {i for i in self._handled if i >= offset}
        if offset != self.offset:
            self.offset, self._saved = offset, False

    async def _read(self, wait: int) -> list[tuple[int, Update | None]]:
        """One getUpdates, a long poll of `wait` seconds: (update_id, update) pairs, None
        for one that cannot be read."""
        try:
            updates = await self.bot.get_updates(offset=self.offset, timeout=wait,
                                                 allowed_updates=UPDATES)
        except TgError:
            raise
        except Exception as exc:  # PTB could not parse the batch: read it raw
            log.warning("telegram: a batch of updates could not be read as a whole (%s); "
                        "reading them one by one", exc)
            return await self._read_raw()
        batch = [(u.update_id, u) for u in updates if isinstance(u.update_id, int)]
        if len(batch) < len(updates):
            log.warning("telegram: %d update(s) without a numeric id were skipped",
                        len(updates) - len(batch))
            if not batch:  # nothing to confirm them with: wait like after an error
                raise RuntimeError("getUpdates answered only updates without an id")
        return batch

    async def _read_raw(self) -> list[tuple[int, Update | None]]:
        """The pending updates as JSON, each read on its own; None for one that cannot be."""
        # Bot API methods are case-insensitive; PTB warns when do_api_request is given the
        # name of a method it wraps (getUpdates, get_updates), and we need the raw answer.
        raw: Any = await self.bot.do_api_request(
            "getupdates", api_kwargs={"offset": self.offset, "timeout": 0,
                                      "allowed_updates": UPDATES})
        items = raw if isinstance(raw, list) else []
        batch: list[tuple[int, Update | None]] = []
        for item in items:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int):
                log.warning("telegram: an update without an id was skipped: %.300r", item)
                continue
            try:
                batch.append((update_id, Update.de_json(item, self.bot)))
            except Exception as exc:
                log.warning("telegram: update %s cannot be read (%s); confirmed without "
                            "storing it: %.300r", update_id, exc, item)
                batch.append((update_id, None))
        if items and not batch:  # nothing to confirm them with: wait like after an error
            raise RuntimeError("getUpdates answered only updates without an id")
        return batch

    async def save(self) -> None:
        """Store where to resume after a restart. At most every OFFSET_EVERY seconds: each
        save is a commit, and getUpdates itself tells Telegram what we have, so an older
        stored offset only means re-reading a few stored updates (dedup drops them)."""
        if self._saved or self.offset is None:
            return
        await self.port.save_state("telegram", "updates", {"offset": self.offset})
        self._saved, self._saved_at = True, self.clock.monotonic()

    @staticmethod
    async def _pause(stop: asyncio.Event, seconds: float, why: str) -> None:
        """Wait `seconds` before polling again (or until the adapter stops)."""
        log.debug("telegram: polling again in %.1f s (%s)", seconds, why)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
