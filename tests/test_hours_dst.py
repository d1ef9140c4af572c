"""Business hours across daylight saving time: Santiago's and Madrid's clock changes,
weekends that last 47 or 49 hours, hours that happen twice or never."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.core.hours import BusinessHours
from tests.business_hours import MADRID, SANTIAGO, madrid, santiago, santiago_office, utc


@pytest.fixture
def office() -> BusinessHours:
    """Santiago office: Mon–Fri 09:00–19:00, Chilean holidays, closed Christmas Eve."""
    return santiago_office()


# -- daylight saving time ------------------------------------------------------------------


@pytest.fixture
def weekend_desk() -> BusinessHours:
    """Santiago weekend desk, staffed around the clock on Saturdays and Sundays."""
    return BusinessHours.parse(
        timezone="America/Santiago", week={"sat": "00:00-24:00", "sun": "00:00-24:00"}
    )


def test_zoneinfo_agrees_on_the_2026_chilean_transitions() -> None:
    # April: at Sunday 00:00 (-03) clocks go back to Saturday 23:00 (-04).
    assert santiago(2026, 4, 4, 23, 30).utcoffset() == timedelta(hours=-3)
    assert santiago(2026, 4, 4, 23, 30, fold=1).utcoffset() == timedelta(hours=-4)
    # September: Sunday 00:00 (-04) jumps to 01:00 (-03); 00:30 never happens.
    gap = santiago(2026, 9, 6, 0, 30)
    assert utc(gap).astimezone(SANTIAGO).replace(tzinfo=None) != gap.replace(tzinfo=None)


def test_santiago_april_weekend_lasts_49_hours(weekend_desk: BusinessHours) -> None:
    saturday, monday = santiago(2026, 4, 4, 0, 0), santiago(2026, 4, 6, 0, 0)
    assert weekend_desk.business_minutes_between(saturday, monday) == 49 * 60
    # A ticket at Saturday 22:00 with a 2-hour SLA is due at the second 23:00.
    due = weekend_desk.add_business_minutes(santiago(2026, 4, 4, 22, 0), 120)
    assert utc(due) == datetime(2026, 4, 5, 3, 0, tzinfo=UTC)
    assert due.utcoffset() == timedelta(hours=-4) and (due.hour, due.fold) == (23, 1)
    assert weekend_desk.next_closing(santiago(2026, 4, 4, 12, 0)) == santiago(2026, 4, 6, 0, 0)


def test_santiago_september_weekend_lasts_47_hours(weekend_desk: BusinessHours) -> None:
    saturday, monday = santiago(2026, 9, 5, 0, 0), santiago(2026, 9, 7, 0, 0)
    assert weekend_desk.business_minutes_between(saturday, monday) == 47 * 60
    # Saturday 22:00 plus three real hours reads 02:00 on the Sunday clock.
    due = weekend_desk.add_business_minutes(santiago(2026, 9, 5, 22, 0), 180)
    assert utc(due) == datetime(2026, 9, 6, 5, 0, tzinfo=UTC)
    assert due == santiago(2026, 9, 6, 2, 0)


def test_sunday_only_desk_opens_when_the_clock_jumps() -> None:
    # Sunday 6 September 2026 starts at 01:00 in Santiago: 00:00 does not exist.
    sundays = BusinessHours.parse(timezone="America/Santiago", week={"sun": "00:00-24:00"})
    opening = sundays.next_opening(santiago(2026, 9, 5, 12, 0))
    assert utc(opening) == datetime(2026, 9, 6, 4, 0, tzinfo=UTC)
    assert opening == santiago(2026, 9, 6, 1, 0)
    assert sundays.business_minutes_between(opening, santiago(2026, 9, 7, 0, 0)) == 23 * 60


def test_weekday_hours_are_untouched_by_the_chilean_switch(office: BusinessHours) -> None:
    friday, monday_close = santiago(2026, 9, 4, 9, 0), santiago(2026, 9, 7, 19, 0)
    assert office.business_minutes_between(friday, monday_close) == 1200
    # Thursday 2 April 18:00, two hours: Good Friday and Holy Saturday are holidays too.
    assert office.add_business_minutes(santiago(2026, 4, 2, 18, 0), 120) == santiago(
        2026, 4, 6, 10, 0
    )


def test_ambiguous_evening_in_santiago_counts_the_extra_hour() -> None:
    late_saturday = BusinessHours.parse(timezone="America/Santiago", week={"sat": "20:00-24:00"})
    start = santiago(2026, 4, 4, 20, 0)
    assert late_saturday.business_minutes_between(start, santiago(2026, 4, 5, 0, 0)) == 300
    assert late_saturday.is_open(santiago(2026, 4, 4, 23, 30, fold=1))
    assert late_saturday.next_closing(start) == santiago(2026, 4, 5, 0, 0)


@pytest.mark.parametrize(
    ("day", "minutes"),
    [(date(2026, 3, 29), 23 * 60), (date(2026, 10, 25), 25 * 60), (date(2026, 3, 22), 24 * 60)],
)
def test_madrid_sunday_around_the_clock(day: date, minutes: int) -> None:
    sundays = BusinessHours.parse(timezone="Europe/Madrid", week={"sun": "00:00-24:00"})
    start = datetime.combine(day, datetime.min.time(), tzinfo=MADRID)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=MADRID)
    assert sundays.business_minutes_between(start, end) == minutes
    assert sundays.business_minutes_between(start - timedelta(days=3), end) == minutes
    assert sundays.next_closing(start + timedelta(hours=1)) == end


def test_madrid_night_shift_across_the_spring_switch() -> None:
    # 01:00-05:00 on 29 March 2026 spans 02:00->03:00: three real hours.
    night = BusinessHours.parse(timezone="Europe/Madrid", week={"sun": "01:00-05:00"})
    assert night.business_minutes_between(madrid(2026, 3, 28), madrid(2026, 3, 30)) == 180
    due = night.add_business_minutes(madrid(2026, 3, 29, 1, 30), 60)
    assert due == madrid(2026, 3, 29, 3, 30)  # the clock skipped 02:00-03:00
    assert due - madrid(2026, 3, 29, 1, 30) == timedelta(hours=2)  # wall-clock difference
    assert utc(due) - utc(madrid(2026, 3, 29, 1, 30)) == timedelta(hours=1)  # real time
    assert night.add_business_minutes(madrid(2026, 3, 29, 1, 0), 180) == madrid(2026, 3, 29, 5)


def test_madrid_night_shift_across_the_autumn_switch() -> None:
    # 01:00-05:00 on 25 October 2026 lives 02:00-03:00 twice: five real hours.
    night = BusinessHours.parse(timezone="Europe/Madrid", week={"sun": "01:00-05:00"})
    assert night.business_minutes_between(madrid(2026, 10, 24), madrid(2026, 10, 26)) == 300
    one_thirty = madrid(2026, 10, 25, 1, 30)
    first = night.add_business_minutes(one_thirty, 60)
    second = night.add_business_minutes(one_thirty, 120)
    assert utc(first) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
    assert utc(second) == datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET
    assert (first.hour, first.fold, second.hour, second.fold) == (2, 0, 2, 1)
    assert night.business_minutes_between(first, second) == 60


def test_opening_time_inside_the_missing_hour() -> None:
    # Opening "02:30" on the spring-forward Sunday: the desk opens when clocks show 03:00.
    desk = BusinessHours.parse(timezone="Europe/Madrid", week={"sun": "02:30-05:00"})
    assert desk.next_opening(madrid(2026, 3, 28, 12)) == madrid(2026, 3, 29, 3, 0)
    assert desk.business_minutes_between(madrid(2026, 3, 29), madrid(2026, 3, 30)) == 120
    # In autumn 02:30 happens twice: open from the first one.
    opening = desk.next_opening(madrid(2026, 10, 24, 12))
    assert utc(opening) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert desk.business_minutes_between(madrid(2026, 10, 25), madrid(2026, 10, 26)) == 210
