"""The season every sandbox serves: one list of shows, so that sales (Sheets, QTickets, Gmail)
and ad spend (VK, Direct) name the same cities and dates, and ROMI joins in the demo.

Dates are relative to a reference day (today in Moscow by default): the same reference gives
the same season, so numbers are reproducible for a given day and tests pass any day.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

#: Seed of every sandbox's random data: the same reference day always gives the same numbers.
DEFAULT_SEED = 20251123


@dataclass(frozen=True)
class Show:
    """One show of the season as the organiser sells it."""

    event_id: int
    show_id: int
    name: str
    city: str
    #: How the city is spelled in the ticketing system (not always canonical).
    city_display: str
    #: The Latin slug ads use in utm_content (`<slug>_<dd>_<mm>`).
    slug: str
    venue: str
    show_date: date
    start_hour: int
    capacity: int
    #: Seats of a seated hall (rows × places); 0 for a general-admission show.
    seated: bool
    base_price: Decimal
    #: IANA zone of the city (QTickets still returns +03:00 timestamps).
    timezone: str

    @property
    def utm_content(self) -> str:
        """What an ad for this show carries in utm_content, e.g. `msk_14_12`."""
        return f"{self.slug}_{self.show_date.day:02d}_{self.show_date.month:02d}"


# (name, canonical city, display spelling, slug, venue, day offset, hour, capacity, seated, price, tz)
_PLAN: tuple[tuple[str, str, str, str, str, int, int, int, bool, str, str], ...] = (
    (
        "Стендап: Большой сольный концерт",
        "москва",
        "Москва",
        "msk",
        "ДК Горбунова",
        9,
        19,
        1200,
        True,
        "2500",
        "Europe/Moscow",
    ),
    (
        "Стендап: Большой сольный концерт",
        "санкт-петербург",
        "Санкт-Петербург",
        "spb",
        "Крокус Холл СПб",
        11,
        20,
        900,
        True,
        "2200",
        "Europe/Moscow",
    ),
    (
        "Лекция «Ёлки и их история»",
        "екатеринбург",
        "Екатеринбург",
        "ekb",
        "Ельцин Центр",
        14,
        19,
        350,
        True,
        "1500",
        "Asia/Yekaterinburg",
    ),
    (
        "Импровизация: Вечер без сценария",
        "казань",
        "Казань",
        "kzn",
        "Кремлёвская, 15",
        6,
        19,
        500,
        False,
        "1200",
        "Europe/Moscow",
    ),
    (
        "Импровизация: Вечер без сценария",
        "новосибирск",
        "Новосибирск",
        "nsk",
        "Подземка",
        18,
        20,
        600,
        False,
        "1300",
        "Asia/Novosibirsk",
    ),
    (
        "Квартирник под гитару",
        "нижний новгород",
        "Нижний Новгород",
        "nnov",
        "Мануфактура",
        21,
        19,
        250,
        False,
        "1000",
        "Europe/Moscow",
    ),
    (
        "Стендап: Проверка материала",
        "ростов-на-дону",
        "Ростов-на-Дону",
        "rnd",
        "Театр Пушкина",
        -3,
        20,
        400,
        True,
        "1800",
        "Europe/Moscow",
    ),
    (
        "Лекция «Ёлки и их история»",
        "москва",
        "москва ",
        "moscow",
        "Лекторий Политеха",
        30,
        19,
        300,
        True,
        "1600",
        "Europe/Moscow",
    ),
)


def reference_day(today: date | None = None) -> date:
    """The day the season is built around (today in Moscow unless given)."""
    if today is not None:
        return today
    from zakaz_common.timeutil import today_msk

    return today_msk()


def season(today: date | None = None) -> list[Show]:
    """The shows of the season around `today`."""
    ref = reference_day(today)
    shows = []
    for i, (name, city, display, slug, venue, offset, hour, cap, seated, price, tz) in enumerate(
        _PLAN
    ):
        shows.append(
            Show(
                event_id=24080 + i,
                show_id=152880 + i,
                name=name,
                city=city,
                city_display=display,
                slug=slug,
                venue=venue,
                show_date=ref + timedelta(days=offset),
                start_hour=hour,
                capacity=cap,
                seated=seated,
                base_price=Decimal(price),
                timezone=tz,
            )
        )
    return shows


def sales_days(today: date | None = None, days: int = 21) -> list[date]:
    """The days with sales: the `days` days up to and including the reference day."""
    ref = reference_day(today)
    return [ref - timedelta(days=n) for n in range(days - 1, -1, -1)]


def rng(name: str, today: date | None = None, seed: int = DEFAULT_SEED) -> random.Random:
    """A deterministic random generator for one sandbox and reference day."""
    ref = reference_day(today)
    return random.Random(f"{seed}:{name}:{ref.isoformat()}")  # noqa: S311 - test data, not security
