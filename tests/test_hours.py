"""Business hours and the SLA clock, told as the situations the support desk meets."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest

from gateway.core import hours as hours_module
from gateway.core.hours import BusinessHours, HoursError

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


@pytest.fixture
def office() -> BusinessHours:
    """Santiago office: Mon–Fri 09:00–19:00, Chilean holidays, closed Christmas Eve."""
    return BusinessHours.parse(
        timezone="America/Santiago", week=WEEKDAYS, holidays="CL", closed=["2026-12-24"]
    )


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


# -- holidays and closed dates -------------------------------------------------------------


def test_chilean_calendar_has_the_holidays_we_rely_on() -> None:
    cl = holidays.country_holidays("CL", years=2026)
    assert date(2026, 12, 8) in cl
    assert date(2026, 12, 25) in cl
    assert date(2026, 12, 24) not in cl


def test_immaculate_conception_is_closed(office: BusinessHours) -> None:
    tuesday = date(2026, 12, 8)
    assert office.is_closed_day(tuesday)
    assert office.holiday_name(tuesday) == "La Inmaculada Concepción"
    assert not office.is_open(santiago(2026, 12, 8, 10, 0))
    # Monday 18:30, one hour SLA: 30 minutes Monday, 30 minutes Wednesday.
    assert office.add_business_minutes(santiago(2026, 12, 7, 18, 30), 60) == santiago(
        2026, 12, 9, 9, 30
    )
    assert office.next_opening(santiago(2026, 12, 7, 19, 0)) == santiago(2026, 12, 9, 9, 0)
    assert office.next_opening(santiago(2026, 12, 8, 10, 0)) == santiago(2026, 12, 9, 9, 0)
    # A datetime is looked up by its local date, not silently missed.
    assert office.is_closed_day(datetime(2026, 12, 8, 14, 0, tzinfo=UTC))


def test_christmas_eve_and_christmas(office: BusinessHours) -> None:
    assert office.is_closed_day(date(2026, 12, 24))
    assert office.holiday_name(date(2026, 12, 24)) is None  # our own closed date
    assert office.holiday_name(date(2026, 12, 25)) == "Navidad"
    assert not office.is_closed_day(date(2026, 12, 23))
    # Wednesday 23rd 18:00, two-hour SLA: one hour Wednesday, then Thursday (closed),
    # Friday (Christmas), the weekend, and the second hour on Monday the 28th.
    wednesday = santiago(2026, 12, 23, 18, 0)
    assert office.add_business_minutes(wednesday, 120) == santiago(2026, 12, 28, 10, 0)
    assert office.next_opening(santiago(2026, 12, 23, 19, 0)) == santiago(2026, 12, 28, 9, 0)
    assert office.next_opening(santiago(2026, 12, 25, 12, 0)) == santiago(2026, 12, 28, 9, 0)
    assert office.business_minutes_between(wednesday, santiago(2026, 12, 29, 0, 0)) == 660


def test_holiday_calendar_is_built_once_per_year(
    office: BusinessHours, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    real = hours_module.holidays_lib.country_holidays

    def counting(*args: object, **kwargs: object) -> object:
        built.append(kwargs.get("years"))
        return real(*args, **kwargs)

    monkeypatch.setattr(hours_module.holidays_lib, "country_holidays", counting)
    start = santiago(2026, 11, 2, 9, 0)  # eleven weeks of traffic, into January
    for i in range(800):
        office.add_business_minutes(start + timedelta(minutes=137 * i), 15 + i % 586)
    assert sorted(built) == [2026, 2027]


def test_holiday_names_do_not_depend_on_the_process_language(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LANGUAGE", "en_US")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    hours = BusinessHours.parse(timezone="America/Santiago", week=WEEKDAYS, holidays="CL")
    assert hours.holiday_name(date(2026, 9, 18)) == "Día de la Independencia"


def test_regional_holidays() -> None:
    madrid_office = BusinessHours.parse(
        timezone="Europe/Madrid", week=WEEKDAYS, holidays="ES", holidays_subdiv="MD"
    )
    barcelona_office = BusinessHours.parse(
        timezone="Europe/Madrid", week=WEEKDAYS, holidays="ES", holidays_subdiv="CT"
    )
    assert madrid_office.holiday_name(date(2026, 5, 2)) == "Fiesta de la Comunidad de Madrid"
    assert madrid_office.is_closed_day(date(2026, 5, 2))
    assert not barcelona_office.is_closed_day(date(2026, 5, 2))
    assert barcelona_office.is_closed_day(date(2026, 5, 1))  # national: Labour Day


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


# -- the schedule in words -----------------------------------------------------------------


def test_default_schedule_in_spanish_and_english(office: BusinessHours) -> None:
    es = office.summary()
    assert es == "lunes a viernes, de 9:00 a 19:00 hrs"
    assert f"Nuestro horario de atención es de {es}" == (
        "Nuestro horario de atención es de lunes a viernes, de 9:00 a 19:00 hrs"
    )
    assert office.summary("en") == "Monday to Friday, 9:00 AM to 7:00 PM"


def test_split_days_and_saturday_mornings() -> None:
    split = BusinessHours.parse(
        timezone="America/Santiago",
        week={d: "09:00-13:00, 14:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")},
    )
    assert split.summary() == "lunes a viernes, de 9:00 a 13:00 y de 14:00 a 18:00 hrs"
    assert split.summary("en") == "Monday to Friday, 9:00 AM to 1:00 PM and 2:00 PM to 6:00 PM"
    with_saturday = BusinessHours.parse(
        timezone="America/Santiago", week={**WEEKDAYS, "sat": "10:00-14:00"}
    )
    assert with_saturday.summary() == (
        "lunes a viernes, de 9:00 a 19:00 hrs; sábado, de 10:00 a 14:00 hrs"
    )
    assert with_saturday.summary("en") == (
        "Monday to Friday, 9:00 AM to 7:00 PM; Saturday, 10:00 AM to 2:00 PM"
    )


def test_days_that_are_not_next_to_each_other() -> None:
    alternate = BusinessHours.parse(
        timezone="Europe/Madrid",
        week={"mon": "10:00-14:00", "wed": "10:00-14:00", "fri": "10:00-14:00"},
    )
    assert alternate.summary() == "lunes, miércoles y viernes, de 10:00 a 14:00 hrs"
    assert alternate.summary("en") == "Monday, Wednesday and Friday, 10:00 AM to 2:00 PM"
    weekend = BusinessHours.parse(
        timezone="Europe/Madrid", week={"sat": "10:00-14:00", "sun": "10:00-14:00"}
    )
    assert weekend.summary() == "sábado y domingo, de 10:00 a 14:00 hrs"


def test_always_and_never_open() -> None:
    always = BusinessHours.parse(
        timezone="America/Santiago", week=dict.fromkeys(ALL_DAYS, "00:00-24:00")
    )
    assert always.summary() == "todos los días, las 24 horas"
    assert always.summary("en") == "every day, 24 hours"
    assert always.next_closing(santiago(2026, 11, 23, 3, 0)) is None
    assert always.add_business_minutes(santiago(2026, 9, 5, 23, 0), 120) == santiago(
        2026, 9, 6, 2, 0
    )  # 23:00 -04 plus two real hours is 02:00 -03
    every_day = BusinessHours.parse(
        timezone="America/Santiago", week=dict.fromkeys(ALL_DAYS, "08:00-20:00")
    )
    assert every_day.summary() == "todos los días, de 8:00 a 20:00 hrs"
    never = BusinessHours.parse(timezone="America/Santiago", week={"mon": "closed", "tue": ""})
    assert never.summary() == "sin horario de atención"
    assert never.summary("en") == "no opening hours"
    assert not never.is_open(santiago(2026, 11, 23, 12, 0))
    with pytest.raises(HoursError, match="never open"):
        never.next_opening(santiago(2026, 11, 23, 12, 0))
    with pytest.raises(HoursError, match="never open"):
        never.add_business_minutes(santiago(2026, 11, 23, 12, 0), 15)
    far = santiago(2029, 1, 1)
    assert never.business_minutes_between(santiago(2026, 11, 23), far) == 0


def test_other_locales_use_babel_names() -> None:
    hours = BusinessHours.parse(timezone="Europe/Madrid", week=WEEKDAYS)
    assert hours.summary("de") == "Montag to Freitag, 09:00 to 19:00"
    assert hours.summary("es_CL") == "lunes a viernes, de 9:00 a 19:00 hrs"


def test_week_table_for_the_admin_page() -> None:
    hours = BusinessHours.parse(
        timezone="America/Santiago",
        week={**WEEKDAYS, "wed": "09:00-13:00, 14:00-18:00", "sun": "00:00-24:00"},
    )
    assert hours.week_table() == [
        ("lunes", "9:00–19:00"),
        ("martes", "9:00–19:00"),
        ("miércoles", "9:00–13:00, 14:00–18:00"),
        ("jueves", "9:00–19:00"),
        ("viernes", "9:00–19:00"),
        ("sábado", "cerrado"),
        ("domingo", "24 horas"),
    ]
    english = hours.week_table("en")
    assert english[0] == ("Monday", "9:00 AM–7:00 PM")
    assert english[5:] == [("Saturday", "closed"), ("Sunday", "24 hours")]


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
