"""Business hours around public holidays and the office's own closed dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest

from gateway.core import hours as hours_module
from gateway.core.hours import BusinessHours
from tests.business_hours import WEEKDAYS, santiago, santiago_office


@pytest.fixture
def office() -> BusinessHours:
    """Santiago office: Mon–Fri 09:00–19:00, Chilean holidays, closed Christmas Eve."""
    return santiago_office()


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
