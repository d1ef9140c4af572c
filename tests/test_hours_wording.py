"""The schedule in words, as customers and the admin page read it (es, en and Babel's
other locales)."""

from __future__ import annotations

import pytest

from gateway.core.hours import BusinessHours, HoursError
from tests.business_hours import ALL_DAYS, WEEKDAYS, santiago, santiago_office


@pytest.fixture
def office() -> BusinessHours:
    """Santiago office: Mon–Fri 09:00–19:00, Chilean holidays, closed Christmas Eve."""
    return santiago_office()


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
