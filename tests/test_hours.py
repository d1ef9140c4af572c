"""Business hours and the SLA clock, told as the situations the support desk meets: open
or closed, the clock consistent with itself, and bad settings. Holidays, daylight saving
time and the schedule in words have their own modules (test_hours_*.py)."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.core.hours import BusinessHours, HoursError
from tests.business_hours import (
    MADRID,
    SANTIAGO,
    WEEKDAYS,
    madrid,
    santiago,
    santiago_office,
    utc,
)


@pytest.fixture
def office() -> BusinessHours:
    """Santiago office: Mon–Fri 09:00–19:00, Chilean holidays, closed Christmas Eve."""
    return santiago_office()


# -- open or closed ------------------------------------------------------------------------


def test_maria_writes_on_sunday_night(office: BusinessHours) -> None:
    # María writes on Sunday 22:30 in Santiago: we are closed, the next opening is Monday
    # 09:00, and an email SLA of 60 business minutes is due Monday 10:00.
    sunday_night = santiago(2026, 11, 22, 22, 30)
    assert not office.is_open(sunday_night)
    assert office.next_opening(sunday_night) == santiago(2026, 11, 23, 9, 0)
    assert office.add_business_minutes(sunday_night, 60) == santiago(2026, 11, 23, 10, 0)
    assert office.add_business_minutes(sunday_night, 60).tzinfo is SANTIAGO


def test_doors_open_at_nine_and_close_at_seven(office: BusinessHours) -> None:
    assert not office.is_open(santiago(2026, 11, 23, 8, 59, 59))
    assert office.is_open(santiago(2026, 11, 23, 9, 0))
    assert office.is_open(santiago(2026, 11, 23, 18, 59, 59))
    assert not office.is_open(santiago(2026, 11, 23, 19, 0))
    # The same instant seen from Madrid and from UTC.
    assert office.is_open(datetime(2026, 11, 23, 12, 0, tzinfo=UTC))  # 09:00 in Santiago
    assert not office.is_open(madrid(2026, 11, 23, 12, 59))  # 08:59 in Santiago


def test_next_opening_and_closing_during_the_day(office: BusinessHours) -> None:
    ten = santiago(2026, 11, 23, 10, 0)
    assert office.next_opening(ten) == ten
    assert office.next_closing(ten) == santiago(2026, 11, 23, 19, 0)
    # Closed already: the next closing is "now", like next_opening while open.
    evening = santiago(2026, 11, 23, 20, 0)
    assert office.next_closing(evening) == evening
    assert office.next_opening(evening) == santiago(2026, 11, 24, 9, 0)
    # Asked from another zone, answered in the office's zone.
    answer = office.next_opening(datetime(2026, 11, 24, 0, 0, tzinfo=UTC))
    assert answer.tzinfo is SANTIAGO and answer == santiago(2026, 11, 24, 9, 0)


def test_friday_evening_message_is_due_monday_morning(office: BusinessHours) -> None:
    # Pedro writes Friday 18:30: 30 minutes left today, the other 30 on Monday.
    friday = santiago(2026, 11, 20, 18, 30)
    assert office.add_business_minutes(friday, 60) == santiago(2026, 11, 23, 9, 30)
    assert office.next_opening(santiago(2026, 11, 21, 12, 0)) == santiago(2026, 11, 23, 9, 0)
    # Exactly used up at closing time: due at 19:00, not Monday 09:00.
    assert office.add_business_minutes(friday, 30) == santiago(2026, 11, 20, 19, 0)


def test_zero_minutes(office: BusinessHours) -> None:
    open_now = santiago(2026, 11, 23, 11, 17, 3)
    assert office.add_business_minutes(open_now, 0) == open_now
    closed_now = santiago(2026, 11, 23, 19, 0)
    assert office.add_business_minutes(closed_now, 0) == office.next_opening(closed_now)
    assert office.add_business_minutes(closed_now, 0) == santiago(2026, 11, 24, 9, 0)


def test_late_night_message_spends_whole_days(office: BusinessHours) -> None:
    # A 15-hour SLA written Monday 23:00: Tuesday (10 h) plus 5 h on Wednesday.
    monday_night = santiago(2026, 11, 23, 23, 0)
    due = office.add_business_minutes(monday_night, 15 * 60)
    assert due == santiago(2026, 11, 25, 14, 0)
    assert office.business_minutes_between(monday_night, due) == 15 * 60


# -- the clock is consistent with itself ---------------------------------------------------


SCHEDULES = {
    "office": ("America/Santiago", WEEKDAYS, "CL"),
    "split": (
        "Europe/Madrid",
        {"mon": "09:00-13:00, 14:00-18:00", "wed": "01:00-05:00", "sun": "00:00-24:00"},
        "ES",
    ),
    "nights": ("America/Santiago", {"sat": "20:00-24:00", "sun": "00:00-02:00, 23:00-24:00"}, ""),
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_business_minutes_between_inverts_add_business_minutes(name: str) -> None:
    zone, week, country = SCHEDULES[name]
    hours = BusinessHours.parse(timezone=zone, week=week, holidays=country)
    tz = ZoneInfo(zone)
    durations = (0, 1, 15, 59, 60, 61, 240, 599, 600, 601, 1440, 4321)
    for base in (datetime(2026, 3, 27, tzinfo=tz), datetime(2026, 9, 3, tzinfo=tz)):
        for step in range(0, 60 * 24 * 5, 173):  # every 2 h 53 min for five days
            start = base + timedelta(minutes=step)
            previous = None
            for minutes in durations:
                due = hours.add_business_minutes(start, minutes)
                assert hours.business_minutes_between(start, due) == minutes, (start, minutes)
                assert utc(due) >= utc(start)
                if previous is not None:
                    assert utc(due) >= utc(previous)
                previous = due
            # And the other way round: the deadline of the open time in [start, b) is <= b.
            b = start + timedelta(hours=37)
            spent = hours.business_minutes_between(start, b)
            if spent:
                assert utc(hours.add_business_minutes(start, spent)) <= utc(b)


def test_business_minutes_between_matches_counting_minute_by_minute() -> None:
    hours = BusinessHours.parse(
        timezone="Europe/Madrid", week={"sat": "22:00-24:00", "sun": "01:00-05:00, 09:30-10:15"}
    )
    for sunday in (madrid(2026, 3, 29), madrid(2026, 10, 25)):
        start = utc(sunday) - timedelta(hours=5)
        counted = sum(hours.is_open(start + timedelta(minutes=k)) for k in range(30 * 60))
        assert hours.business_minutes_between(start, start + timedelta(hours=30)) == counted


def test_between_is_zero_backwards_and_fractional_minutes_work(office: BusinessHours) -> None:
    a, b = santiago(2026, 11, 23, 10, 0), santiago(2026, 11, 23, 9, 0)
    assert office.business_minutes_between(a, b) == 0
    assert office.business_minutes_between(a, a) == 0
    due = office.add_business_minutes(a, 0.5)
    assert due == santiago(2026, 11, 23, 10, 0, 30)
    assert office.business_minutes_between(a, due) == 0.5


def test_add_business_minutes_is_fast(office: BusinessHours) -> None:
    start = santiago(2026, 11, 2, 7, 13)
    office.add_business_minutes(start, 600)  # warm the caches
    calls = 2000
    began = time.perf_counter()
    for i in range(calls):
        office.add_business_minutes(start + timedelta(minutes=41 * i), 15 + i % 586)
    per_call = (time.perf_counter() - began) / calls
    assert per_call < 0.0005, f"{per_call * 1e6:.0f} µs per call"


# -- bad settings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"timezone": "America/Santiagoo"}, "hours.timezone: "),
        ({"timezone": ""}, "hours.timezone: "),
        ({"week": {"monday": "09:00-19:00"}}, "hours.week.monday: unknown weekday"),
        (
            {"week": {"mon": "9-19"}},
            "hours.week.mon: expected 'HH:MM-HH:MM' ranges separated by commas, got '9-19'",
        ),
        ({"week": {"tue": "19:00-09:00"}}, "hours.week.tue: "),
        ({"week": {"wed": "09:00-13:00, 12:00-18:00"}}, "hours.week.wed: ranges overlap"),
        ({"week": {"thu": "09:00-25:00"}}, "hours.week.thu: "),
        ({"week": {"fri": "24:00-24:00"}}, "hours.week.fri: "),
        ({"week": {"sat": "09:75-10:00"}}, "hours.week.sat: "),
        ({"week": {"sun": "09:00-12:00,"}}, "hours.week.sun: "),
        ({"holidays": "XX"}, "hours.holidays: "),
        ({"holidays": "ES", "holidays_subdiv": "ZZ"}, "hours.holidays: "),
        ({"holidays_subdiv": "MD"}, "hours.holidays: "),
        ({"closed": ["2026-12-24", "2026-13-01"]}, "hours.closed[1]: "),
        ({"closed": ["24/12/2026"]}, "hours.closed[0]: "),
        ({"closed": [datetime(2026, 12, 24, tzinfo=UTC)]}, "hours.closed[0]: "),
        ({"closed": "2026-12-24"}, "hours.closed: "),
    ],
)
def test_every_bad_setting_names_its_key(settings: dict[str, object], expected: str) -> None:
    arguments: dict[str, object] = {"timezone": "America/Santiago", "week": WEEKDAYS}
    arguments.update(settings)
    with pytest.raises(HoursError) as caught:
        BusinessHours.parse(**arguments)  # type: ignore[arg-type]
    assert str(caught.value).startswith(expected)
    assert isinstance(caught.value, ValueError)


def test_key_prefix_is_used_in_messages() -> None:
    with pytest.raises(HoursError, match=r"^support\.hours\.week\.mon: "):
        BusinessHours.parse(
            timezone="UTC", week={"mon": "nine to five"}, key_prefix="support.hours"
        )


def test_good_settings_in_their_friendlier_forms() -> None:
    hours = BusinessHours.parse(
        timezone="America/Santiago",
        week={"Mon": " 9:00 - 13:00 ,14:00-18:00 ", "tue": "Closed", "wed": "09:00–13:00"},
        closed=[date(2026, 12, 31), "2027-01-02"],
    )
    assert hours.week_table()[0] == ("lunes", "9:00–13:00, 14:00–18:00")
    assert hours.week_table()[1] == ("martes", "cerrado")
    assert hours.is_closed_day(date(2026, 12, 31)) and hours.is_closed_day(date(2027, 1, 2))
    touching = BusinessHours.parse(timezone="UTC", week={"mon": "09:00-13:00, 13:00-18:00"})
    assert touching.summary() == "lunes, de 9:00 a 18:00 hrs"


def test_naive_datetimes_are_refused(office: BusinessHours) -> None:
    naive = datetime(2026, 11, 23, 10, 0)
    for call in (
        lambda: office.is_open(naive),
        lambda: office.next_opening(naive),
        lambda: office.next_closing(naive),
        lambda: office.add_business_minutes(naive, 5),
        lambda: office.business_minutes_between(naive, santiago(2026, 11, 24)),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()
    with pytest.raises(ValueError, match="minutes"):
        office.add_business_minutes(santiago(2026, 11, 23, 10, 0), -5)


def test_hours_are_immutable_and_comparable(office: BusinessHours) -> None:
    with pytest.raises(AttributeError):
        office.tz = MADRID  # type: ignore[misc]
    again = BusinessHours.parse(
        timezone="America/Santiago", week=WEEKDAYS, holidays="CL", closed=["2026-12-24"]
    )
    office.is_open(santiago(2026, 11, 23, 10, 0))  # fills a cache; equality ignores caches
    assert again == office and hash(again) == hash(office)
    assert office.tz is SANTIAGO
