"""The texts' locale-aware filters: `when`, `date`, `time`, `datetime`, `duration`, and the
labels of statuses, priorities and channels, in Spanish and English.

Example (inside a template): `{{ due_at | when }}` → "mañana a las 9:00";
`{{ ticket.priority | priority_label }}` → "alta".
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from babel.dates import format_date, format_time

STATUS_LABELS = {
    "es": {"open": "en curso", "pending": "esperando tu respuesta", "resolved": "resuelta",
           "closed": "cerrada"},
    "en": {"open": "in progress", "pending": "waiting for your reply",
           "resolved": "resolved", "closed": "closed"},
}
# How the agents' console shows a ticket's status (the customer's labels are above).
TICKET_STATES = {
    "es": {"open": "🟢 abierto", "pending": "🟡 esperando al cliente", "resolved": "✅ resuelto",
           "closed": "⚫ cerrado"},
    "en": {"open": "🟢 open", "pending": "🟡 waiting on the customer", "resolved": "✅ resolved",
           "closed": "⚫ closed"},
}
PRIORITY_LABELS = {
    "es": {"low": "baja", "normal": "normal", "high": "alta", "urgent": "urgente"},
    "en": {"low": "low", "normal": "normal", "high": "high", "urgent": "urgent"},
}
CHANNEL_NAMES = {"email": "Email", "telegram": "Telegram", "slack": "Slack"}
NAMES = ("when", "date", "time", "datetime", "duration", "short", "status_label",
         "ticket_state", "priority_label", "channel_name")


# Babel is slow (~50 µs a call) and a gateway formats the same few days and times all day.
@functools.lru_cache(maxsize=4096)
def babel_date(value: date, pattern: str, locale: str) -> str:
    return format_date(value, pattern, locale=locale)


@functools.lru_cache(maxsize=4096)
def babel_time(value: time, locale: str) -> str:
    return format_time(value, "short", locale=locale).replace("\u202f", " ")



@dataclass(frozen=True, eq=False)  # one per (locale, tz, now): see `formatter`
class Formatter:
    locale: str
    tz: tzinfo
    now: datetime

    @property
    def lang(self) -> str:
        return self.locale.split("_")[0]

    def local(self, value: datetime) -> datetime:
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(self.tz)

    def date(self, value: date | datetime) -> str:
        d = self.local(value).date() if isinstance(value, datetime) else value
        other_year = d.year != self.local(self.now).year
        pattern = {"es": "EEEE d 'de' MMMM" + (" 'de' y" if other_year else ""),
                   "en": "EEEE, MMMM d" + (", y" if other_year else "")}.get(self.lang)
        return babel_date(d, pattern or "full", self.locale)

    def time(self, value: datetime | time) -> str:
        t = self.local(value).time() if isinstance(value, datetime) else value
        return babel_time(t.replace(tzinfo=None), self.locale)

    def at(self, value: datetime) -> str:
        if self.lang == "es":
            return ("a la " if self.local(value).hour == 1 else "a las ") + self.time(value)
        return "at " + self.time(value)

    def datetime(self, value: datetime) -> str:
        return f"{self.date(value)} {self.at(value)}"

    def when(self, value: datetime) -> str:
        days = (self.local(value).date() - self.local(self.now).date()).days
        words = {"es": {0: "hoy", 1: "mañana", -1: "ayer"},
                 "en": {0: "today", 1: "tomorrow", -1: "yesterday"}}.get(self.lang, {})
        if days in words:
            return f"{words[days]} {self.at(value)}"
        return {"es": "el ", "en": "on "}.get(self.lang, "") + self.datetime(value)

    def duration(self, minutes: float | timedelta) -> str:
        if isinstance(minutes, timedelta):
            minutes = minutes.total_seconds() / 60
        total = max(0, round(minutes))
        units = {"es": (("día", "días"), ("hora", "horas"), ("minuto", "minutos"), " y "),
                 "en": (("day", "days"), ("hour", "hours"), ("minute", "minutes"), " and ")}
        *names, joiner = units.get(self.lang, units["en"])
        parts = [f"{n} {name[n != 1]}" for n, name in
                 zip((total // 1440, total % 1440 // 60, total % 60), names, strict=True) if n]
        return joiner.join(parts[:2]) or f"0 {names[2][1]}"

    def status_label(self, code: str) -> str:
        return STATUS_LABELS.get(self.lang, {}).get(str(code), str(code).replace("_", " "))

    def ticket_state(self, code: str) -> str:
        return TICKET_STATES.get(self.lang, TICKET_STATES["en"]).get(str(code), str(code))

    def priority_label(self, code: str) -> str:
        return PRIORITY_LABELS.get(self.lang, PRIORITY_LABELS["en"]).get(str(code), str(code))

    def channel_name(self, code: str) -> str:
        return CHANNEL_NAMES.get(str(code), str(code).capitalize())

    def short(self, value: datetime) -> str:
        """Day and time in figures, for the agents: "23/11 09:15"."""
        return self.local(value).strftime("%d/%m %H:%M")


FMT: ContextVar[Formatter] = ContextVar("centralita_template_formatter")


@functools.lru_cache(maxsize=64)
def formatter(locale: str, tz: tzinfo, now: datetime) -> Formatter:
    """The formatter for a locale at `now`, shared by the texts of a batch (they share
    their instant), so the filters' cache below finds it by identity."""
    return Formatter(locale, tz, now)


@functools.lru_cache(maxsize=4096)
def formatted(fmt: Formatter, name: str, value: Any) -> str:
    """A filter's text, once per formatter and value: the messages of a batch share their
    `now`, so their due times and next opening are formatted once for all of them."""
    return getattr(fmt, name)(value)


def template_filter(name: str) -> Any:
    """The filter `name` as Jinja calls it: the formatter of the render in progress."""

    def apply(value: Any) -> str:
        if value is None or value == "":  # e.g. next_opening while open: print nothing
            return ""
        fmt = FMT.get(None)
        if fmt is None:  # outside render_source: a one-off formatter, not worth caching
            return getattr(Formatter("en", UTC, datetime.now(UTC)), name)(value)
        try:
            hash(value)
        except TypeError:  # a list, a dict…: formatted (or refused) without the cache
            return getattr(fmt, name)(value)
        return formatted(fmt, name, value)

    apply.__name__ = name
    return apply
