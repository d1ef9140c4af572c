"""Business hours and the SLA clock: when we are open, and how much open time lies between.

All arithmetic runs on UTC instants. Each local day's open intervals are built from wall-clock
times in the configured zone, so DST days count real elapsed minutes. A wall time that does not
exist (clocks jump forward) means the instant the clocks jump; an ambiguous one (clocks go back)
opens at its first occurrence and closes at its last.

Example:
    >>> from datetime import datetime
    >>> from zoneinfo import ZoneInfo
    >>> h = BusinessHours.parse(timezone="America/Santiago", week={"mon": "09:00-19:00"})
    >>> sunday = datetime(2026, 11, 22, 22, 30, tzinfo=ZoneInfo("America/Santiago"))
    >>> h.add_business_minutes(sunday, 60).isoformat()
    '2026-11-23T10:00:00-03:00'
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from itertools import groupby
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holidays_lib
from babel import Locale
from babel.dates import format_time, get_day_names

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON_DAYS = 400
_FULL_DAY = ((0, 1440),)
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ONE_DAY = timedelta(days=1)

Ranges = tuple[tuple[int, int], ...]  # (start, end) in minutes after local midnight; end <= 1440
Span = tuple[datetime, datetime]  # [start, end) in UTC
_Days = dict[date, tuple[Span, ...]]  # local day -> its open spans
_Years = dict[int, dict[date, str]]  # year -> public holidays


class HoursError(ValueError):
    """A bad hours setting; str() names the item.

    >>> str(HoursError("expected 'HH:MM-HH:MM' ranges", key="hours.week.mon"))
    "hours.week.mon: expected 'HH:MM-HH:MM' ranges"
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)


def _parse_ranges(key: str, value: object) -> Ranges:
    """ "09:00-13:00, 14:00-18:00" -> ((540, 780), (840, 1080)); "" or "closed" -> ()."""
    if not isinstance(value, str):
        raise HoursError(f"expected a string like '09:00-19:00', got {value!r}", key=key)
    if value.strip().lower() in ("", "closed"):
        return ()
    ranges: list[tuple[int, int]] = []
    for part in value.split(","):
        ends = [p.strip() for p in part.replace("–", "-").split("-")]
        matches = [_TIME.fullmatch(p) for p in ends]
        if len(ends) != 2 or not all(matches):
            msg = f"expected 'HH:MM-HH:MM' ranges separated by commas, got {value!r}"
            raise HoursError(msg, key=key)
        (h1, m1), (h2, m2) = ((int(m[1]), int(m[2])) for m in matches if m)
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if m1 > 59 or m2 > 59 or h1 > 23 or end > 1440:
            raise HoursError(f"no such time in {part.strip()!r} (use 00:00 to 24:00)", key=key)
        if end <= start:
            raise HoursError(f"range {part.strip()!r} ends before it starts", key=key)
        ranges.append((start, end))
    ranges.sort()
    merged = [ranges[0]]
    for start, end in ranges[1:]:
        if start < merged[-1][1]:
            raise HoursError(f"ranges overlap in {value!r}", key=key)
        if start == merged[-1][1]:  # "09:00-13:00, 13:00-18:00" is one range
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return tuple(merged)


def _parse_closed(key: str, closed: Iterable[str | date]) -> frozenset[date]:
    if isinstance(closed, str | date):
        raise HoursError(f"expected a list of 'YYYY-MM-DD' dates, got {closed!r}", key=key)
    days: set[date] = set()
    for i, item in enumerate(closed):
        if isinstance(item, date) and not isinstance(item, datetime):
            days.add(item)
            continue
        try:
            if not isinstance(item, str) or not _DATE.fullmatch(item.strip()):
                raise ValueError(item)
            days.add(date.fromisoformat(item.strip()))
        except ValueError:
            msg = f"expected a date 'YYYY-MM-DD', got {item!r}"
            raise HoursError(msg, key=f"{key}[{i}]") from None
    return frozenset(days)


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """A weekly schedule in one time zone, minus public holidays and extra closed dates.

    Immutable; build it with `BusinessHours.parse(...)`. `week` holds (start, end) minutes after
    local midnight for Monday..Sunday.
    """

    tz: ZoneInfo
    week: tuple[Ranges, ...]
    holidays_country: str = ""
    holidays_subdiv: str = ""
    closed: frozenset[date] = frozenset()
    holidays_language: str | None = None
    _day_cache: _Days = field(default_factory=dict, init=False, repr=False, compare=False)
    _year_cache: _Years = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def parse(
        cls,
        *,
        timezone: str,
        week: Mapping[str, str],
        holidays: str = "",
        holidays_subdiv: str = "",
        closed: Iterable[str | date] = (),
        key_prefix: str = "hours",
    ) -> BusinessHours:
        """Validate settings; every HoursError names the offending key.

        >>> try:
        ...     BusinessHours.parse(timezone="Europe/Madrid", week={"mon": "9-19"})
        ... except HoursError as exc:
        ...     print(exc)
        hours.week.mon: expected 'HH:MM-HH:MM' ranges separated by commas, got '9-19'
        """
        try:
            tz = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            msg = f"unknown time zone {timezone!r}"
            raise HoursError(msg, key=f"{key_prefix}.timezone") from None
        days: dict[str, Ranges] = {}
        for raw_key, value in week.items():
            day = str(raw_key).strip().lower()
            key = f"{key_prefix}.week.{raw_key}"
            if day not in DAYS:
                raise HoursError(f"unknown weekday, expected one of {', '.join(DAYS)}", key=key)
            days[day] = _parse_ranges(key, value)
        country, subdiv, language = holidays.strip().upper(), holidays_subdiv.strip(), None
        try:
            if subdiv and not country:
                raise NotImplementedError("holidays_subdiv is set without a country")
            if country:  # name holidays in the country's language, not whatever $LANG says
                language = holidays_lib.country_holidays(
                    country, subdiv=subdiv or None
                ).default_language
        except NotImplementedError as exc:
            msg = f"unknown holidays country or subdivision ({exc})"
            raise HoursError(msg, key=f"{key_prefix}.holidays") from None
        week_ranges = tuple(days.get(d, ()) for d in DAYS)
        closed_days = _parse_closed(f"{key_prefix}.closed", closed)
        return cls(tz, week_ranges, country, subdiv, closed_days, language)

    # -- days -----------------------------------------------------------------------------

    def _holidays(self, year: int) -> dict[date, str]:
        if (found := self._year_cache.get(year)) is None:
            country, subdiv = self.holidays_country, self.holidays_subdiv or None
            lang = self.holidays_language
            found = self._year_cache[year] = (
                {}
                if not country
                else dict(
                    holidays_lib.country_holidays(country, subdiv=subdiv, years=year, language=lang)
                )
            )
        return found

    def holiday_name(self, day: date) -> str | None:
        """The public holiday's name (in the country's own language), or None.

        >>> cl = BusinessHours.parse(timezone="UTC", week={}, holidays="CL")
        >>> cl.holiday_name(date(2026, 12, 8))
        'La Inmaculada Concepción'
        """
        day = self._local_date(day)
        return self._holidays(day.year).get(day)

    def is_closed_day(self, day: date) -> bool:
        """True on a public holiday or an extra closed date (whatever the weekday).

        >>> h = BusinessHours.parse(timezone="UTC", week={}, closed=["2026-12-24"])
        >>> h.is_closed_day(date(2026, 12, 24))
        True
        """
        day = self._local_date(day)
        return day in self.closed or day in self._holidays(day.year)

    def _local_date(self, day: date) -> date:  # a datetime is never == its date: convert it
        return (
            (day.astimezone(self.tz) if day.tzinfo else day).date()
            if isinstance(day, datetime)
            else day
        )

    # -- intervals --------------------------------------------------------------------------

    def _to_utc(self, day: date, minute: int, *, end: bool) -> datetime:
        if minute == 1440:
            day, minute = day + _ONE_DAY, 0
        wall = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=self.tz)
        first, second = wall.astimezone(UTC), wall.replace(fold=1).astimezone(UTC)
        if first == second:
            return first
        if first < second:  # ambiguous: open at the first occurrence, close at the last
            return second if end else first
        # does not exist: fold=1 lies before the jump, fold=0 after; find the jump itself
        lo, hi = int(second.timestamp()), int(first.timestamp())
        before = second.astimezone(self.tz).utcoffset()
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.tz).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return datetime.fromtimestamp(hi, UTC)

    def _day_spans(self, day: date) -> tuple[Span, ...]:
        spans = self._day_cache.get(day)
        if spans is None:
            spans = ()
            if not self.is_closed_day(day):
                built = [
                    (self._to_utc(day, s, end=False), self._to_utc(day, e, end=True))
                    for s, e in self.week[day.weekday()]
                ]
                spans = tuple(sp for sp in built if sp[1] > sp[0])
            if len(self._day_cache) > 4000:
                self._day_cache.clear()
            self._day_cache[day] = spans
        return spans

    def _spans(self, after: datetime, until: datetime | None = None) -> Iterator[Span]:
        """Open spans in UTC that end after `after`, clipped to start no earlier than it, in
        order and non-overlapping. Stops past `until`; without it, raises after HORIZON_DAYS
        closed days in a row."""
        day = after.astimezone(self.tz).date() - _ONE_DAY
        last_day = until.astimezone(self.tz).date() + _ONE_DAY if until else None
        floor, idle = after, 0
        while last_day is None or day <= last_day:
            spans = self._day_spans(day)
            idle = 0 if spans else idle + 1
            if idle > HORIZON_DAYS and last_day is None:
                raise HoursError("never open")
            for start, end in spans:
                if end > floor:
                    yield max(start, floor), end
                    floor = end
            day += _ONE_DAY

    @staticmethod
    def _utc(at: datetime, name: str = "at") -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware, got naive {at!r}")
        return at.astimezone(UTC)

    # -- the clock --------------------------------------------------------------------------

    def is_open(self, at: datetime) -> bool:
        """True if `at` lies in an open interval (opening minute included, closing excluded)."""
        at = self._utc(at)
        start, _ = next(self._spans(at, until=at), (None, None))
        return start == at

    def next_opening(self, at: datetime) -> datetime:
        """`at` if open, else the start of the next open interval, in self.tz."""
        return next(self._spans(self._utc(at)))[0].astimezone(self.tz)

    def next_closing(self, at: datetime) -> datetime | None:
        """`at` if closed, else when the current open stretch ends (back-to-back intervals,
        e.g. across midnight, count as one); None if open for the next HORIZON_DAYS days."""
        at = self._utc(at)
        if not self.is_open(at):
            return at.astimezone(self.tz)
        horizon, closing = at + timedelta(days=HORIZON_DAYS), at
        for start, end in self._spans(at, until=horizon):
            if start > closing:
                break
            closing = end
            if closing > horizon:
                return None
        return closing.astimezone(self.tz)

    def add_business_minutes(self, start: datetime, minutes: float) -> datetime:
        """The moment `minutes` of open time after `start`, in self.tz.

        Starting while closed counts from the next opening; a deadline that uses up an interval
        exactly falls on its closing time.
        """
        if not math.isfinite(minutes) or minutes < 0:
            raise ValueError(f"minutes must be a finite number >= 0, got {minutes!r}")
        left = timedelta(minutes=minutes)
        for begin, end in self._spans(self._utc(start, "start")):
            if left <= end - begin:
                return (begin + left).astimezone(self.tz)
            left -= end - begin
        raise AssertionError("unreachable")  # pragma: no cover - _spans is endless or raises

    def business_minutes_between(self, a: datetime, b: datetime) -> float:
        """Open minutes in [a, b); 0 if b <= a."""
        a, b = self._utc(a, "a"), self._utc(b, "b")
        total = timedelta(0)
        if b > a:
            for begin, end in self._spans(a, until=b):
                if begin >= b:
                    break
                total += min(end, b) - begin
        return total / timedelta(minutes=1)

    # -- words ------------------------------------------------------------------------------

    def summary(self, locale: str = "es") -> str:
        """The weekly schedule in words, for acknowledgements and service guides.

        >>> BusinessHours.parse(timezone="UTC", week={d: "09:00-19:00" for d in DAYS[:5]}).summary()
        'lunes a viernes, de 9:00 a 19:00 hrs'
        """
        w = _Words(locale)
        groups: dict[Ranges, list[int]] = {}
        for i, ranges in enumerate(self.week):
            if ranges:
                groups.setdefault(ranges, []).append(i)
        if not groups:
            return w.w["never"]
        return "; ".join(f"{w.days(days)}, {w.ranges(ranges)}" for ranges, days in groups.items())

    def week_table(self, locale: str = "es") -> list[tuple[str, str]]:
        """(weekday name, hours) for Monday..Sunday.

        >>> BusinessHours.parse(timezone="UTC", week={"mon": "09:00-19:00"}).week_table()[:2]
        [('lunes', '9:00–19:00'), ('martes', 'cerrado')]
        """
        w = _Words(locale)
        return [(w.names[i], w.table_cell(ranges)) for i, ranges in enumerate(self.week)]


_WORDS = {
    "es": {"to": " a ", "and": " y ", "every": "todos los días", "full": "las 24 horas",
           "cell_full": "24 horas", "closed": "cerrado", "never": "sin horario de atención"},
    "en": {"to": " to ", "and": " and ", "every": "every day", "full": "24 hours",
           "cell_full": "24 hours", "closed": "closed", "never": "no opening hours"},
}  # fmt: skip


class _Words:
    """Weekday names and times from Babel, connecting words in Spanish or English."""

    def __init__(self, locale: str) -> None:
        self.locale = Locale.parse(locale.replace("-", "_"))
        names = get_day_names("wide", locale=self.locale)
        self.names = [names[i] for i in range(7)]
        self.es = self.locale.language == "es"
        self.w = _WORDS["es" if self.es else "en"]

    def time(self, minute: int) -> str:
        if self.es:  # the "9:00" style of the service guides, whatever the region
            return f"{minute // 60}:{minute % 60:02d}"
        text = format_time(time((minute // 60) % 24, minute % 60), "short", locale=self.locale)
        return text.replace("\u202f", " ").replace("\xa0", " ")

    def join(self, items: list[str]) -> str:
        return items[0] if len(items) == 1 else ", ".join(items[:-1]) + self.w["and"] + items[-1]

    def days(self, days: list[int]) -> str:
        if len(days) == 7:
            return self.w["every"]
        items: list[str] = []
        for _, pairs in groupby(enumerate(days), lambda p: p[1] - p[0]):  # runs of next days
            run = [self.names[d] for _, d in pairs]
            items += [f"{run[0]}{self.w['to']}{run[-1]}"] if len(run) >= 3 else run
        return self.join(items)

    def ranges(self, ranges: Ranges) -> str:
        if ranges == _FULL_DAY:
            return self.w["full"]
        if self.es:
            return self.join([f"de {self.time(s)} a {self.time(e)}" for s, e in ranges]) + " hrs"
        return self.join([f"{self.time(s)} to {self.time(e)}" for s, e in ranges])

    def table_cell(self, ranges: Ranges) -> str:
        if not ranges:
            return self.w["closed"]
        if ranges == _FULL_DAY:
            return self.w["cell_full"]
        return ", ".join(f"{self.time(s)}–{self.time(e)}" for s, e in ranges)
