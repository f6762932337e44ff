"""The spreadsheet the Sheets sandbox serves: cells that render as a ru_RU Google Sheet does.

`build_workbook(today)` lays out the season (`season.py`) in three tabs the way a marketing team
keeps them by hand: Russian headers in `Events` and `Sales`, English ones in another order in
`Inventory`; dates as date cells, date-times, typed text (`15.01.2025`, `2025-01-15`) and a
column of bare serial numbers; money as `1 800,00 ₽` (no-break spaces), `12 600 руб.` or plain
numbers; blank rows, ragged rows, a duplicated sale row, and a few rows nobody can read.
`SheetTruth` is what a correct reader must conclude from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Final, Literal

from zakaz_sandbox.season import Show, rng, sales_days, season

Kind = Literal["text", "number", "grouped", "money", "date", "datetime", "serial"]
CellValue = str | int | Decimal | date

NBSP: Final = "\u00a0"
"""ru_RU groups thousands with a no-break space."""

_EPOCH: Final = date(1899, 12, 30)
"""Day 0 of spreadsheet serial dates."""

SPREADSHEET_ID: Final = "1qTkSaLeS7zAkAz-d3mo_Sh33tR9uVwXyZ0aBcDeFgHi"
"""The id of the sandbox's spreadsheet (44 characters, like a real one)."""


@dataclass(frozen=True)
class Cell:
    """One non-empty cell: its value and the number format it is displayed with."""

    value: CellValue
    kind: Kind = "text"

    def formatted(self) -> str:
        """What FORMATTED_VALUE returns: the text a ru_RU sheet shows."""
        v = self.value
        if self.kind == "text" or isinstance(v, str):
            return str(v)
        if self.kind in ("date", "datetime") and isinstance(v, date):
            return v.strftime("%d.%m.%Y %H:%M" if isinstance(v, datetime) else "%d.%m.%Y")
        number = serial(v) if isinstance(v, date) else v
        if self.kind == "money":
            return f"{number:,.2f}".replace(",", NBSP).replace(".", ",") + f"{NBSP}₽"
        if self.kind == "grouped":
            return f"{number:,}".replace(",", NBSP).replace(".", ",")
        return str(number).replace(".", ",")

    def unformatted(self, *, dates_as_strings: bool = False) -> str | int | float:
        """What UNFORMATTED_VALUE returns: numbers as numbers, dates as serials."""
        v = self.value
        if isinstance(v, str):
            return v
        if self.kind in ("date", "datetime") and dates_as_strings:
            return self.formatted()
        number = serial(v) if isinstance(v, date) else v
        if isinstance(number, Decimal):
            return int(number) if number == number.to_integral_value() else float(number)
        return number


def serial(value: date) -> int | Decimal:
    """The spreadsheet serial number of a date or date-time."""
    days = (value.date() if isinstance(value, datetime) else value) - _EPOCH
    if not isinstance(value, datetime):
        return days.days
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return Decimal(days.days) + Decimal(seconds) / Decimal(86400)


Row = list[Cell | None]


@dataclass
class Tab:
    """One worksheet: its title, id and rows (None is an empty cell)."""

    title: str
    sheet_id: int
    rows: list[Row]

    @property
    def row_count(self) -> int:
        """Grid rows, as `gridProperties.rowCount` reports them (a new sheet has 1000)."""
        return max(1000, len(self.rows))

    @property
    def column_count(self) -> int:
        """Grid columns (a new sheet has 26)."""
        return max(26, max((len(r) for r in self.rows), default=0))


@dataclass
class SheetTruth:
    """What the sheet says once read correctly (bad rows left out, duplicates added up)."""

    events: dict[str, tuple[str, date, str]] = field(default_factory=dict)
    inventory: dict[str, tuple[int, int, date, str]] = field(default_factory=dict)
    sales: dict[tuple[date, str], tuple[int, Decimal]] = field(default_factory=dict)
    #: Sheet row numbers (1-based) of the rows of each sales key.
    sales_rows: dict[tuple[date, str], list[int]] = field(default_factory=dict)
    #: (tab, row number) of the rows a reader must reject.
    bad_rows: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class Workbook:
    """A spreadsheet: properties and tabs by title."""

    spreadsheet_id: str
    title: str
    tabs: dict[str, Tab]
    truth: SheetTruth
    locale: str = "ru_RU"
    time_zone: str = "Europe/Moscow"


def _t(value: str) -> Cell:
    return Cell(value, "text")


def build_workbook(today: date | None = None) -> Workbook:
    """The sandbox spreadsheet for a reference day (the same day gives the same sheet)."""
    shows = season(today)
    truth = SheetTruth()
    sales = _sales_tab(shows, today, truth)
    events = _events_tab(shows, truth)
    inventory = _inventory_tab(shows, truth)
    return Workbook(
        SPREADSHEET_ID,
        "Продажи QTickets — сезон",
        {tab.title: tab for tab in (events, inventory, sales)},
        truth,
    )


def _events_tab(shows: list[Show], truth: SheetTruth) -> Tab:
    header = [" ID мероприятия ", "Название", "Дата мероприятия", "ГОРОД", "Площадка"]
    rows: list[Row] = [[_t(h) for h in header]]
    for i, show in enumerate(shows):
        start = datetime.combine(show.show_date, datetime.min.time()) + timedelta(
            hours=show.start_hour
        )
        when: Cell = Cell(show.show_date, "date")
        if i == 2:
            when = _t(show.show_date.isoformat())
        elif i == 4:
            when = Cell(start, "datetime")
        event_id = _t(str(show.event_id)) if i == 3 else Cell(show.event_id, "number")
        rows.append([event_id, _t(show.name), when, _t(show.city_display), _t(show.venue)])
        truth.events[str(show.event_id)] = (show.name, show.show_date, show.city)
        if i == 3:
            rows.append([])
    rows.append([None, _t("Резерв площадки (без id)"), _t("уточняется"), _t("Москва")])
    truth.bad_rows.append(("Events", len(rows)))
    return Tab("Events", 0, rows)


def _inventory_tab(shows: list[Show], truth: SheetTruth) -> Tab:
    header = ["City", "event_id", "Event_Date", "tickets_total", "Tickets_Left", "comment"]
    rows: list[Row] = [[_t(h) for h in header]]
    sold: dict[str, int] = {}
    for (_, event_id), (tickets, _) in truth.sales.items():
        sold[event_id] = sold.get(event_id, 0) + tickets
    for i, show in enumerate(shows):
        event_id = str(show.event_id)
        left = show.capacity - sold.get(event_id, 0)
        row: Row = [
            _t(show.city_display),
            Cell(show.event_id, "number"),
            Cell(show.show_date, "serial"),
            Cell(show.capacity, "grouped"),
            Cell(left, "grouped"),
        ]
        if i == 1:
            row.append(_t("добавили приставные места"))
        rows.append(row)
        truth.inventory[event_id] = (show.capacity, left, show.show_date, show.city)
    rows.append([_t("Москва"), Cell(24099, "number"), None, Cell(100, "grouped"), _t("много")])
    truth.bad_rows.append(("Inventory", len(rows)))
    return Tab("Inventory", 1, rows)


_CITY_SPELLINGS: Final = {
    "spb": ("Санкт-Петербург", "СПб", "Питер"),
    "msk": ("Москва", "МОСКВА", "мск"),
    "nnov": ("Нижний Новгород", f"Нижний{NBSP}Новгород"),
    "ekb": ("Екатеринбург", "Екб"),
}


def _sales_tab(shows: list[Show], today: date | None, truth: SheetTruth) -> Tab:
    header = ["Дата", "ID мероприятия", "Город", "Продано билетов", "Выручка", "Название"]
    rows: list[Row] = [[_t(h) for h in [*header, "Комментарий"]]]
    rand = rng("sheets", today)
    days = sales_days(today)

    def add(day: date, show: Show, tickets: int, revenue: Decimal, comment: str = "") -> None:
        spellings = _CITY_SPELLINGS.get(show.slug, (show.city_display,))
        when = rand.choices(("date", "datetime", "dotted", "iso"), (7, 1, 1, 1))[0]
        when_cell = {
            "date": Cell(day, "date"),
            "datetime": Cell(
                datetime.combine(day, datetime.min.time()) + timedelta(hours=14, minutes=30),
                "datetime",
            ),
            "dotted": _t(day.strftime("%d.%m.%Y")),
            "iso": _t(day.isoformat()),
        }[when]
        money = rand.choices(("money", "rub", "plain", "text"), (7, 1, 1, 1))[0]
        amount = f"{revenue:,.2f}".replace(",", " ").replace(".", ",")
        money_cell = {
            "money": Cell(revenue, "money"),
            "rub": _t(amount.removesuffix(",00") + " руб."),
            "plain": Cell(revenue, "number"),
            "text": _t(amount.replace(" ", "")),
        }[money]
        row: Row = [
            when_cell,
            Cell(show.event_id, "number"),
            _t(rand.choice(spellings)),
            _t(str(tickets)) if rand.random() < 0.2 else Cell(tickets, "grouped"),
            money_cell,
        ]
        if rand.random() < 0.5 or comment:
            row.append(_t(show.name) if rand.random() < 0.8 else None)
        if comment:
            row.append(_t(comment))
        rows.append(row)
        key = (day, str(show.event_id))
        sold, total = truth.sales.get(key, (0, Decimal(0)))
        truth.sales[key] = (sold + tickets, total + revenue)
        truth.sales_rows.setdefault(key, []).append(len(rows))

    for d, day in enumerate(days):
        for show in shows:
            if day > show.show_date:
                continue
            tickets = rand.randint(0, max(1, show.capacity // 30))
            if tickets == 0:
                continue
            discount = Decimal(rand.choice((0, 0, 0, 100, 250))) + rand.choice(
                (Decimal(0), Decimal(0), Decimal("0.50"))
            )
            revenue = show.base_price * tickets - min(discount, show.base_price / 2)
            if tickets > 1 and rand.random() < 0.2:
                box = rand.randint(1, tickets - 1)
                box_revenue = show.base_price * box
                add(day, show, tickets - box, revenue - box_revenue, "сайт")
                add(day, show, box, box_revenue, "касса")
            else:
                add(day, show, tickets, revenue)
        if d == 5:
            rows.append([])
            rows.append([None, None, _t("   ")])
        if d == 12:
            # A record typed twice: each sheet row is a sale, so both count.
            key = max(truth.sales_rows)
            show = next(s for s in shows if str(s.event_id) == key[1])
            add(key[0], show, 1, show.base_price)
            rows.append(list(rows[-1]))
            sold, total = truth.sales[key]
            truth.sales[key] = (sold + 1, total + show.base_price)
            truth.sales_rows[key].append(len(rows))
    first = shows[0]
    for cells in (
        # Unreadable revenue, an impossible date, a row without its event; a buyer in a comment.
        [
            Cell(days[-1], "date"),
            Cell(first.event_id, "number"),
            _t("Москва"),
            Cell(2, "grouped"),
            _t("н/д"),
            None,
            _t("вернуть: Смирнова Анна, +7 916 555-12-34, anna.smirnova@example.ru"),
        ],
        [
            _t(f"31.02.{days[-1].year}"),
            Cell(first.event_id, "number"),
            _t("Москва"),
            Cell(1, "grouped"),
            Cell(Decimal(2500), "money"),
        ],
        [
            Cell(days[-1], "date"),
            None,
            _t("Казань"),
            Cell(3, "grouped"),
            Cell(Decimal(3600), "money"),
        ],
    ):
        rows.append(list(cells))
        truth.bad_rows.append(("Sales", len(rows)))
    rows.append([])
    return Tab("Sales", 2, rows)
