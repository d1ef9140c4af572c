"""What the business-hours tests share (`test_hours*.py`): the Santiago office they meet
most, and wall-clock times in Santiago and Madrid.

Example:
    >>> santiago_office().is_open(santiago(2026, 11, 23, 10, 0))
    True
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.core.hours import BusinessHours

SANTIAGO = ZoneInfo("America/Santiago")
MADRID = ZoneInfo("Europe/Madrid")
WEEKDAYS = {d: "09:00-19:00" for d in ("mon", "tue", "wed", "thu", "fri")}
ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def santiago(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=SANTIAGO, fold=fold)


def madrid(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=MADRID, fold=fold)


def utc(dt: datetime) -> datetime:
    """Compare instants in UTC: an aware datetime in a repeated hour never equals one in
    another zone (PEP 495), and within one zone fold is ignored by ==."""
    assert dt.tzinfo is not None
    return dt.astimezone(UTC)


def santiago_office() -> BusinessHours:
    """Santiago office: Mon–Fri 09:00–19:00, Chilean holidays, closed Christmas Eve."""
    return BusinessHours.parse(
        timezone="America/Santiago", week=WEEKDAYS, holidays="CL", closed=["2026-12-24"]
    )
