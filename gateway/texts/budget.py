"""How much work one render of a text may do, counted as it goes: every turn of a loop
and every item a filter walks over is a step, a call is CALL_STEPS steps; every new value
is checked for size (texts, lists) and magnitude (numbers), most before they are made
(gateway.texts.guards); the output is counted as it streams; and the clock is read every
CHECK_EVERY steps. A render over any limit stops with `TooMuchWork`.

Example:
    >>> with budgeted(RenderLimits().hot()):
    ...     sum(counted(range(10)))
    45
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

MAX_OUTPUT = 20_000  # characters per rendered part (and per text an admin writes)
MAX_SIZE = 100_000  # characters or items in any value a text builds
MAX_BITS = 4096  # bits in any number a text computes (about 1233 digits)
MAX_SPREAD = 100 * MAX_SIZE  # a one-step estimate beyond this is refused before it is made
CHECK_EVERY = 512  # steps between two readings of the clock
CALL_STEPS = 8  # a call (a macro, a method) costs about as much as eight turns of a loop

_SIZED = (str, list, tuple, dict, set, frozenset)  # values held in memory
_WALKED = (*_SIZED, range)  # values a filter walks over item by item
_FORMAT_NUMBER = re.compile(r"\d+")
_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


class TooMuchWork(Exception):
    """A render went over one of its limits: `limit` is "steps", "time", "size", "number",
    "output" or "source"; `bound` is that limit's value (a count, or milliseconds)."""

    def __init__(self, limit: str, bound: int) -> None:
        super().__init__(f"{limit} over {bound}")
        self.limit, self.bound = limit, bound


@dataclass(frozen=True)
class RenderLimits:
    """The budget of one render: `steps` counted steps, and `seconds` of time (a text for
    a customer, rendered on the event loop) or `studio_seconds` (a preview or a save check,
    rendered in a worker thread). `clock` is read at the start and every CHECK_EVERY steps.

    Example: RenderLimits(steps=20_000, seconds=0.05).hot().seconds -> 0.05
    """

    steps: int = 20_000
    seconds: float = 0.05
    studio_seconds: float = 0.2
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)

    def hot(self) -> Budget:
        """A fresh budget for a customer's or an agent's text."""
        return Budget(self.steps, self.seconds, self.clock)

    def studio(self) -> Budget:
        """A fresh budget for an admin's preview or save check."""
        return Budget(self.steps, self.studio_seconds, self.clock)


class Budget:
    """The steps and time left to one render. `charge(n)` is a subtraction and a
    comparison; the limits themselves are checked every CHECK_EVERY steps."""

    __slots__ = ("clock", "deadline", "seconds", "spent", "steps", "tick", "window")

    def __init__(self, steps: int, seconds: float, clock: Callable[[], float]) -> None:
        self.steps, self.seconds, self.clock = steps, seconds, clock
        self.deadline = clock() + seconds
        self.spent = 0
        self.window = self.tick = min(CHECK_EVERY, steps + 1)

    def charge(self, units: int = 1) -> None:
        self.tick -= units
        if self.tick <= 0:
            self.check()

    def check(self) -> None:
        """Count the steps since the last check; raise when over a limit."""
        self.spent += self.window - self.tick
        if self.spent > self.steps:
            self.tick = 0  # every later charge checks, and fails, again
            raise TooMuchWork("steps", self.steps)
        if self.clock() > self.deadline:
            self.tick = 0
            raise TooMuchWork("time", round(self.seconds * 1000))
        self.window = self.tick = min(CHECK_EVERY, self.steps - self.spent + 1)

    def items(self, iterable: Iterable[Any]) -> Iterator[Any]:
        """`iterable`, one step per item."""
        for item in iterable:
            self.tick -= 1
            if self.tick <= 0:
                self.check()
            yield item


BUDGET: ContextVar[Budget | None] = ContextVar("centralita_text_budget", default=None)


@contextlib.contextmanager
def budgeted(budget: Budget) -> Iterator[Budget]:
    """Count every step taken inside the block against `budget`."""
    token = BUDGET.set(budget)
    try:
        yield budget
    finally:
        BUDGET.reset(token)


def charge(units: int = 1) -> None:
    """Count `units` steps against the render in progress (none at compile time)."""
    budget = BUDGET.get()
    if budget is not None:
        budget.charge(units)


def counted(iterable: Iterable[Any]) -> Iterable[Any]:
    """`iterable`, one step per item it yields (a loop's items, a filter's lazy output)."""
    budget = BUDGET.get()
    return iterable if budget is None else budget.items(iterable)


def weight(value: Any) -> int:
    """Steps for keeping `value`: one per item, one per 256 characters."""
    if isinstance(value, str):
        return len(value) >> 8
    if isinstance(value, _SIZED):
        return len(value)
    return 0


def walk(value: Any) -> int:
    """Steps for walking over `value` (a filter's input): one per item (a range's too),
    one per 256 characters."""
    if isinstance(value, str):
        return len(value) >> 8
    if isinstance(value, _WALKED):
        return len(value)
    return 0


def length(value: Any) -> int:
    """Characters or items in `value` (a range's too); 0 for anything else."""
    return len(value) if isinstance(value, _WALKED) else 0


def _big(number: str) -> bool:
    return len(number) > 6 or int(number) > MAX_SIZE


def refuse_size(size: int) -> None:
    if size > MAX_SIZE:
        raise TooMuchWork("size", MAX_SIZE)


def checked(value: Any) -> Any:
    """`value`, a new value of the text's, unless it is too big; its size is charged."""
    if isinstance(value, int):
        if value.bit_length() > MAX_BITS:
            raise TooMuchWork("number", MAX_BITS)
    elif isinstance(value, _SIZED):
        refuse_size(len(value))
        charge(weight(value))
    return value


def joined(parts: Iterable[str]) -> str:
    """"".join(parts), refused before joining when the result would be too big (the
    output of a block, a macro or a filter block: `Environment.concat`)."""
    if not isinstance(parts, list):
        parts = list(parts)
    refuse_size(sum(map(len, parts)))
    return "".join(parts)


def collect(chunks: Iterator[str], limit: int = MAX_OUTPUT) -> str:
    """The rendered text, counted as it streams (16 pieces at a time): stops as soon as
    it passes `limit`."""
    text = "".join(islice(chunks, 16))
    following = next(chunks, None)
    if following is None and len(text) <= limit:  # nearly every text: all in one go
        return text
    out, size = [text], len(text)
    while following is not None and size <= limit:
        batch = [following, *islice(chunks, 15)]
        size += sum(map(len, batch))
        out += batch
        following = next(chunks, None)
    if size > limit:
        raise TooMuchWork("output", limit)
    return "".join(out)


def refuse_spread(base: int, inserted: Iterable[Any]) -> None:
    """Refuse a step that may put each string of `inserted` at each of `base` places
    (replace, join, wordwrap, format…) when that could be too big to make."""
    longest = max((len(x) for x in inserted if isinstance(x, str | list | tuple)), default=0)
    if (base + 1) * (longest + 1) > MAX_SPREAD:
        raise TooMuchWork("size", MAX_SIZE)


def refuse_format(text: str, values: Iterable[Any]) -> None:
    """Widths and repeated fields of a `%` or `str.format` text."""
    if "%" in text:
        for star_or_width, precision in _PRINTF_SPEC.findall(text):
            for number in (star_or_width, precision):
                if number == "*" or (number and _big(number)):
                    raise TooMuchWork("size", MAX_SIZE)
    refuse_spread(text.count("%") + text.count("{"), values)


def refuse_spec(spec: str) -> None:
    """A `str.format` field's spec, such as ">1000000000"."""
    if any(_big(n) for n in _FORMAT_NUMBER.findall(spec)):
        raise TooMuchWork("size", MAX_SIZE)
