"""The QTickets sandbox's world: the season's events, shows, seat maps and orders, as the REST API
v1 serves them (shared/upstream-apis.md §1), buyers' PII included.

Everything is built from `season(today)` and `rng("qtickets", today)`, so one reference day always
gives the same orders. Orders are plain JSON-ready dicts in the API's own shape; seat maps are
derived from the orders on every read, so a refund frees its seat the way the real box office does.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from zakaz_sandbox.season import Show, reference_day, rng, sales_days, season

#: The token the sandbox accepts until a test rotates it.
SANDBOX_TOKEN: Final = "qt-sandbox-5d1f0c9a7e3b"  # noqa: S105 - the stand-in's own test token

#: QTickets writes every timestamp with +03:00, whatever the city's zone (upstream-apis §1.4).
QT_OFFSET: Final = timezone(timedelta(hours=3))

#: The event whose one order is paid at 23:30 UTC; it has no other sales on that UTC day or the
#: Moscow day after, so the order alone decides which day the sale lands on.
LATE_EVENT_ID: Final = 24085

#: A second show of the Moscow stand-up the day after the first one (same hall).
EXTRA_SHOW_ID: Final = 152890
#: A cancelled (deleted) earlier show of the Kazan improv night: it must not set the event's date.
DELETED_SHOW_ID: Final = 152891

_MSK: Final = ZoneInfo("Europe/Moscow")
_FIRST_ORDER_ID: Final = 2051000
_FIRST_BASKET_ID: Final = 12570000
_FIXED_DISCOUNT: Final = Decimal("333.33")
_GA_VIP_PLACES: Final = 40

_CITY_IDS: Final = {
    "москва": (1, 55.7558, 37.6173),
    "санкт-петербург": (2, 59.9343, 30.3351),
    "екатеринбург": (3, 56.8389, 60.6057),
    "казань": (4, 55.7961, 49.1064),
    "новосибирск": (5, 55.0084, 82.9357),
    "нижний новгород": (6, 56.3269, 44.0059),
    "ростов-на-дону": (7, 47.2357, 39.7015),
}

# (name, is female); surnames are given in the male form and get the female ending when needed.
_FIRST_NAMES: Final = (
    ("Анна", True),
    ("Мария", True),
    ("Алёна", True),
    ("Ольга", True),
    ("Татьяна", True),
    ("Ксения", True),
    ("Дарья", True),
    ("Наталья", True),
    ("Дмитрий", False),
    ("Сергей", False),
    ("Фёдор", False),
    ("Михаил", False),
    ("Алексей", False),
    ("Константин", False),
    ("Григорий", False),
    ("Евгений", False),
)
_SURNAMES: Final = (
    "Смирнов",
    "Кузнецов",
    "Соловьёв",
    "Воробьёв",
    "Лебедев",
    "Козлов",
    "Новиков",
    "Морозов",
    "Ершов",
    "Белоусов",
    "Жуков",
    "Щербаков",
    "Королёв",
    "Тихонов",
)
_PATRONYMIC_ROOTS: Final = ("Сергеев", "Андреев", "Викторов", "Петров", "Олегов", "Артёмов")
_MAIL_DOMAINS: Final = ("yandex.ru", "mail.ru", "gmail.com", "bk.ru", "example.ru")
_LATIN: Final = "a|b|v|g|d|e|e|zh|z|i|y|k|l|m|n|o|p|r|s|t|u|f|kh|ts|ch|sh|sch||y||e|yu|ya"
_TRANSLIT: Final = dict(zip("абвгдеёжзийклмнопрстуфхцчшщъыьэюя", _LATIN.split("|"), strict=True))


@dataclass(frozen=True)
class Person:
    """A buyer or ticket holder: exactly the PII the sandbox serves."""

    client_id: int
    name: str
    surname: str
    middlename: str | None
    email: str
    phone: str


@dataclass
class QticketsWorld:
    """Events, shows and orders of one reference day; orders change through refunds and cancels."""

    today: date
    shows: list[Show] = field(default_factory=list)
    deleted_show_ids: set[int] = field(default_factory=set)
    events: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    people: list[Person] = field(default_factory=list)
    #: Ids of the orders tests look for by role (late, gift certificate, cancelled after payment).
    special: dict[str, int] = field(default_factory=dict)
    _seat_plans: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def build(cls, today: date | None = None) -> QticketsWorld:
        """The world of a reference day (today in Moscow unless given)."""
        world = cls(today=reference_day(today))
        world._build()
        return world

    # -- reading -------------------------------------------------------------------------------

    def show(self, show_id: int) -> Show | None:
        """A show by id (deleted shows included), or None."""
        return next((s for s in self.shows if s.show_id == show_id), None)

    def seat_map(self, show_id: int) -> dict[str, dict[str, Any]]:
        """Every seat of a show with its counters as of now, keyed by seat id."""
        taken = self._taken(show_id)
        seats: dict[str, dict[str, Any]] = {}
        for plan in self._seat_plans[show_id]:
            seat = {k: v for k, v in plan.items() if not k.startswith("_")}
            paid, held = taken["paid"][seat["root_id"]], taken["held"][seat["root_id"]]
            free = seat["max_quantity"] - paid - held
            seat.update(
                free_quantity=free,
                ordered_quantity=paid + held,
                payed_quantity=paid,
                in_basket_quantity=held,
                ordered=paid + held > 0,
                available=not seat["disabled"] and not plan["_blocked"] and free > 0,
            )
            seats[seat["id"]] = seat
        return seats

    def zones(self, show_id: int) -> dict[str, str]:
        """Zone id → zone name of a show's hall."""
        return {p["zone_id"]: p["_zone_name"] for p in self._seat_plans[show_id]}

    def pii(self) -> list[str]:
        """Every e-mail, phone, name and card number the sandbox serves (for leak searches)."""
        found: set[str] = set()
        for p in self.people:
            found.update({p.name, p.surname, p.email, p.phone})
            if p.middlename:
                found.add(p.middlename)
        found.update(o["payment_card_number"] for o in self.orders.values())
        return sorted(v for v in found if v)

    # -- changing ------------------------------------------------------------------------------

    def refund(self, order_id: int, basket_ids: list[int] | None, when: datetime) -> dict[str, Any]:
        """Refund some baskets of a paid order (all when `basket_ids` is None)."""
        order = self.orders[order_id]
        stamp = _qt(when)
        for basket in order["baskets"]:
            if basket_ids is not None and basket["id"] not in basket_ids:
                continue
            if basket["refunded_at"] is None:
                basket.update(refunded_at=stamp, updated_at=stamp, refunded_amount=basket["price"])
                basket["refunds"] = [
                    {"id": basket["id"] + 900000, "amount": basket["price"], "created_at": stamp}
                ]
        order["updated_at"] = stamp
        return order

    def cancel(self, order_id: int, when: datetime) -> dict[str, Any]:
        """Cancel (delete) an order, as the organiser's back office does."""
        order = self.orders[order_id]
        order.update(deleted_at=_qt(when), updated_at=_qt(when))
        return order

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        base = season(self.today)
        by_event = {s.event_id: s for s in base}
        moscow, kazan = by_event[24080], by_event[24083]
        extra = dataclasses.replace(
            moscow, show_id=EXTRA_SHOW_ID, show_date=moscow.show_date + timedelta(days=1)
        )
        deleted = dataclasses.replace(
            kazan, show_id=DELETED_SHOW_ID, show_date=kazan.show_date - timedelta(days=7)
        )
        self.shows = [*base, extra, deleted]
        self.deleted_show_ids = {DELETED_SHOW_ID}
        for show in self.shows:
            self._seat_plans[show.show_id] = _seat_plan(show)
        for show in self.shows:
            event = self.events.setdefault(show.event_id, _event(show))
            event["shows"].append(_show(show, deleted=show.show_id in self.deleted_show_ids))
        gen = rng("qtickets", self.today)
        self.people = [_person(gen, 1180000 + i) for i in range(160)]
        self._orders(gen)

    def _live_shows(self) -> Iterator[Show]:
        return (s for s in self.shows if s.show_id not in self.deleted_show_ids)

    def _orders(self, gen: random.Random) -> None:
        late_days = {self.today - timedelta(days=2), self.today - timedelta(days=1)}
        drafts: list[tuple[datetime, Show, str]] = []
        for day in sales_days(self.today):
            for show in self._live_shows():
                if day > show.show_date or (show.event_id == LATE_EVENT_ID and day in late_days):
                    continue
                for _ in range(gen.choices((0, 1, 2, 3, 4), weights=(25, 30, 25, 13, 7))[0]):
                    moment = datetime.combine(day, time(9), _MSK) + timedelta(
                        seconds=gen.randrange(14 * 3600 + 1800)
                    )
                    drafts.append((moment, show, _status(gen, day, self.today)))
        late = datetime.combine(self.today - timedelta(days=2), time(23, 26, 10), UTC)
        gift = datetime.combine(self.today - timedelta(days=3), time(12, 5), _MSK)
        by_event = {s.event_id: s for s in self._live_shows()}
        drafts += [(late, by_event[LATE_EVENT_ID], "late"), (gift, by_event[24084], "gift")]
        drafts.sort(key=lambda d: d[0])
        # Every kind of order is there whatever the dice said: a few drafts get a fixed fate.
        for index, fate in (
            (10, "paid_then_cancelled"),
            (20, "full_refund"),
            (30, "partial_refund"),
        ):
            moment, show, status = drafts[index]
            if status not in {"late", "gift"}:
                drafts[index] = (moment, show, fate)
        pools = {s.show_id: _sellable(self._seat_plans[s.show_id]) for s in self._live_shows()}
        for n, (moment, show, status) in enumerate(drafts):
            order_id = _FIRST_ORDER_ID + n
            order = self._order(gen, order_id, moment, show, status, pools[show.show_id])
            if order is None:
                continue
            self.orders[order_id] = order
            if status in {"late", "gift", "paid_then_cancelled"}:
                self.special.setdefault(status, order_id)

    def _order(
        self,
        gen: random.Random,
        order_id: int,
        created: datetime,
        show: Show,
        status: str,
        pool: list[dict[str, Any]],
    ) -> dict[str, Any] | None:
        discount = "fixed" if gen.random() < 0.15 else ("promo" if gen.random() < 0.1 else "")
        seats: list[dict[str, Any]]
        if status == "gift":
            # A gift certificate: paid, but for no event and no show.
            seats = [{"root_id": None, "name": None, "price": Decimal(3000)}]
        elif status == "late":
            # Fixed numbers: 1000 + (2000 - 333.33) = 2666.67, checked to the kopeck by tests.
            seats = [_take(pool, "DANCE-1;1"), _take(pool, "VIP-1;1")]
            discount = "fixed"
        else:
            count = gen.choices((1, 2, 3, 4), weights=(40, 35, 15, 10))[0]
            seats = [pool.pop(gen.randrange(len(pool))) for _ in range(min(count, len(pool)))]
        if not seats:
            return None
        buyer = gen.choice(self.people)
        payed = status not in {"cancelled", "pending"}
        payed_at = None
        if payed:
            payed_at = created + timedelta(seconds=gen.randrange(40, 400))
        if status == "late":
            payed_at = datetime.combine(created.date(), time(23, 30), UTC)
        baskets = []
        for i, seat in enumerate(seats):
            holder = buyer if i == 0 or gen.random() < 0.8 else gen.choice(self.people)
            original = seat["price"]
            price = original
            if discount == "fixed" and i == len(seats) - 1:
                price = original - _FIXED_DISCOUNT
            elif discount == "promo":
                price = (original * Decimal("0.9")).quantize(Decimal(1))
            basket = _basket(_FIRST_BASKET_ID + (order_id - _FIRST_ORDER_ID) * 8 + i, order_id)
            basket.update(
                show_id=None if status == "gift" else show.show_id,
                seat_id=seat["root_id"],
                seat_name=seat["name"],
                original_price=_num(original),
                ticket_original_price=_num(original),
                discount_value=_num(original - price) if price != original else None,
                price=_num(price),
                ticket_amount=_num(price),
                created_at=_qt(created),
                updated_at=_qt(payed_at or created),
                **_holder(holder),
            )
            baskets.append(basket)
        order = _order_shell(gen, order_id, created, payed_at, buyer)
        order.update(
            event_id=None if status == "gift" else _event_ref(gen, show.event_id),
            price=_num(sum((Decimal(str(b["price"])) for b in baskets), Decimal(0))),
            original_price=_num(
                sum((Decimal(str(b["original_price"])) for b in baskets), Decimal(0))
            ),
            utm=_utm(gen, show),
            baskets=baskets,
        )
        if status == "late":
            order["utm"] = {
                "utm_source": "vk",
                "utm_medium": "cpc",
                "utm_content": show.utm_content,
            }
        _apply_status(gen, order, status)
        return order

    def _taken(self, show_id: int) -> dict[str, Counter[str]]:
        paid: Counter[str] = Counter()
        held: Counter[str] = Counter()
        for order in self.orders.values():
            if order["deleted_at"] is not None:
                continue
            for basket in order["baskets"]:
                if basket["show_id"] != show_id or basket["seat_id"] is None:
                    continue
                if basket["deleted_at"] is not None or basket["refunded_at"] is not None:
                    continue
                target = paid if order["payed"] else held
                target[basket["seat_id"]] += int(basket["quantity"])
        return {"paid": paid, "held": held}


def _status(gen: random.Random, day: date, today: date) -> str:
    roll = gen.random()
    if roll < 0.76:
        return "paid"
    if roll < 0.82:
        return "partial_refund"
    if roll < 0.84:
        return "full_refund"
    if roll < 0.85:
        return "paid_then_cancelled"
    if roll < 0.93 or day < today - timedelta(days=1):
        return "cancelled"
    return "pending"


def _apply_status(gen: random.Random, order: dict[str, Any], status: str) -> None:
    payed_at = order["payed_at"]
    if status in {"partial_refund", "full_refund"}:
        when = datetime.fromisoformat(payed_at) + timedelta(minutes=gen.randrange(10, 180))
        baskets = order["baskets"] if status == "full_refund" else order["baskets"][-1:]
        for basket in baskets:
            stamp = _qt(when)
            basket.update(refunded_at=stamp, updated_at=stamp, refunded_amount=basket["price"])
        order["updated_at"] = _qt(when)
    elif status == "paid_then_cancelled":
        stamp = _qt(datetime.fromisoformat(payed_at) + timedelta(hours=3))
        order.update(deleted_at=stamp, updated_at=stamp)
    elif status == "cancelled":
        stamp = _qt(datetime.fromisoformat(order["created_at"]) + timedelta(minutes=30))
        order.update(deleted_at=stamp, updated_at=stamp, reserved=False)
        for basket in order["baskets"]:
            basket.update(deleted_at=stamp, updated_at=stamp)
    elif status == "pending":
        order["reserved"] = True


def _event_ref(gen: random.Random, event_id: int) -> int | str:
    # PHP serialises some ids as strings; clients must read both.
    return str(event_id) if gen.random() < 0.1 else event_id


def _utm(gen: random.Random, show: Show) -> dict[str, str] | list[Any]:
    roll = gen.random()
    if roll < 0.45:
        return []
    if roll < 0.75:
        return {
            "utm_source": "vk",
            "utm_medium": "cpc",
            "utm_campaign": f"{show.slug}_stendap" if "Стендап" in show.name else show.slug,
            "utm_content": show.utm_content,
        }
    if roll < 0.95:
        return {
            "utm_source": "yandex",
            "utm_medium": "cpc",
            "utm_campaign": str(62384000 + show.event_id % 100),
            "utm_content": str(10766679600 + show.show_id % 1000),
            "utm_term": f"{show.name.split(':')[0].lower()} {show.city_display.strip().lower()}",
        }
    return {"utm_source": "telegram", "utm_medium": "post", "utm_campaign": "анонс"}


def _order_shell(
    gen: random.Random, order_id: int, created: datetime, payed_at: datetime | None, buyer: Person
) -> dict[str, Any]:
    uniq = "".join(
        gen.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789") for _ in range(10)
    )
    card_prefix = gen.choice(("220220", "427600", "553691"))
    return {
        "id": order_id,
        "uniqid": uniq,
        "payed": payed_at is not None,
        "payed_at": _qt(payed_at),
        "created_at": _qt(created),
        "updated_at": _qt(payed_at or created),
        "deleted_at": None,
        "client_id": buyer.client_id,
        "client": {
            "id": buyer.client_id,
            "email": buyer.email,
            "details": {
                "id": buyer.client_id - 250000,
                "name": buyer.name,
                "middlename": buyer.middlename,
                "surname": buyer.surname,
                "phone": buyer.phone,
                "vk_id": "",
                "facebook_id": "",
            },
        },
        "site_id": 1356,
        "site": {"id": 1356, "host": "example-events.ru"},
        "payment_id": 12133,
        "payment_type_id": gen.choice(("card", "bankcard", "12")),
        "payment_card_number": f"{card_prefix}******{gen.randrange(10000):04d}",
        "payment_url": f"https://qtickets.ru/pay/{uniq}",
        "cancel_url": f"https://qtickets.ru/cancel-order/{uniq}/{gen.getrandbits(128):032x}",
        "basket_user_id": 5100000 + order_id % 100000,
        "backend_user_id": None,
        "access_code_id": None,
        "discount_id": None,
        "promo_code_id": None,
        "reserved": False,
        "reserved_to": _qt(created + timedelta(days=1)),
        "reserve_extended": False,
        "currency_id": "RUB",
        "custom": "" if gen.random() < 0.85 else {"Откуда узнали": "Из рассылки"},
        "fields": [],
        "refunds": [],
        "integrations": [] if gen.random() < 0.9 else {"roistat": {"roistat_visit": "418762"}},
    }


def _basket(basket_id: int, order_id: int) -> dict[str, Any]:
    return {
        "id": basket_id,
        "series": f"88{order_id % 10000000:07d}",
        "barcode": f"8764{basket_id:08d}",
        "multiprice_code": None,
        "service_fee_amount": 0,
        "quantity": 1,
        "organization_name": None,
        "legal_name": None,
        "work_position": None,
        "inn": None,
        "kpp": None,
        "comment": None,
        "pdf_url": f"https://qtickets.ru/ticket/pdf/{basket_id:x}",
        "passbook_url": f"https://qtickets.ru/ticket/passbook/{basket_id:x}",
        "related_baskets": [],
        "services": [],
        "checked_at": None,
        "deleted_at": None,
        "refunded_at": None,
        "refunded_amount": None,
        "refunded_deduction_amount": None,
        "refunds": [],
    }


def _take(pool: list[dict[str, Any]], root_id: str) -> dict[str, Any]:
    index = next(i for i, seat in enumerate(pool) if seat["root_id"] == root_id)
    return pool.pop(index)


def _holder(person: Person) -> dict[str, Any]:
    return {
        "client_email": person.email,
        "client_phone": person.phone,
        "client_name": person.name,
        "client_surname": person.surname,
        "client_middlename": person.middlename,
    }


def _person(gen: random.Random, client_id: int) -> Person:
    name, female = gen.choice(_FIRST_NAMES)
    surname = gen.choice(_SURNAMES) + ("а" if female else "")
    root = gen.choice(_PATRONYMIC_ROOTS)
    middlename = root + ("на" if female else "ич") if gen.random() < 0.5 else None
    login = f"{_latin(name)}.{_latin(surname)}{gen.randrange(10, 99)}"
    digits = f"9{gen.randrange(10**9):09d}"
    phone = (
        f"+7{digits}"
        if gen.random() < 0.7
        else f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"
    )
    return Person(
        client_id, name, surname, middlename, f"{login}@{gen.choice(_MAIL_DOMAINS)}", phone
    )


def _latin(text: str) -> str:
    return "".join(_TRANSLIT.get(c, c) for c in text.lower())


def _event(show: Show) -> dict[str, Any]:
    city_id, lat, lon = _CITY_IDS[show.city]
    created = datetime.combine(show.show_date - timedelta(days=90), time(11), _MSK)
    return {
        "id": show.event_id,
        "is_active": 1,
        "name": show.name,
        "scheme_id": 4000 + show.event_id % 1000,
        "currency_id": "RUB",
        "place_name": show.venue,
        "place_address": f"{show.city_display.strip()}, {show.venue}",
        "place_description": "",
        "city_id": city_id,
        "description": f"<p>{show.name}. Возрастное ограничение 18+.</p>",
        "site_url": f"https://example-events.ru/{show.slug}",
        "external_id": None,
        "ticket_id": None,
        "mail_template_id": None,
        "age": "18+",
        "shows": [],
        "payments": [],
        "poster": {
            "id": 77000 + show.event_id % 1000,
            "content_type": "image/jpeg",
            "file_size": 348211,
            "url": f"https://qtickets.ru/uploads/posters/{show.event_id}.jpg",
        },
        "event_type_id": 1,
        "city": {"id": city_id, "name": show.city_display, "timezone": show.timezone},
        "ticket": None,
        "mail_template": None,
        "slug": f"{show.slug}-{show.event_id}",
        "place_coordinates": [lat, lon],
        "url": f"https://qtickets.ru/event/{show.event_id}",
        "created_at": _qt(created),
        "updated_at": _qt(created + timedelta(days=3)),
        "deleted_at": None,
    }


def _show(show: Show, *, deleted: bool) -> dict[str, Any]:
    start = datetime.combine(show.show_date, time(show.start_hour), ZoneInfo(show.timezone))
    prices = sorted({Decimal(str(p["price"])) for p in _seat_plan(show) if not p["disabled"]})
    created = start - timedelta(days=90)
    return {
        "id": show.show_id,
        "name": "",
        "is_active": 0 if deleted else 1,
        "sale_start_date": _qt(created),
        "sale_finish_date": _qt(start),
        "open_date": _qt(start - timedelta(hours=1)),
        "start_date": _qt(start),
        "finish_date": _qt(start + timedelta(hours=2)),
        "scheme_properties": {"width": 1200, "height": 800, "zones": ["PARTERRE", "BALCONY"]}
        if show.seated
        else {"width": 600, "height": 400, "zones": ["DANCE", "VIP"]},
        "prices": [
            {"id": 900000 + show.show_id % 1000 * 10 + i, "default_price": _num(p)}
            | {"color_theme": i + 1, "modifiers": []}
            for i, p in enumerate(prices)
        ],
        "min_price": _num(prices[0]),
        "max_price": _num(prices[-1]),
        "created_at": _qt(created),
        "updated_at": _qt(created),
        "deleted_at": _qt(start - timedelta(days=20)) if deleted else None,
    }


def _seat_plan(show: Show) -> list[dict[str, Any]]:
    """Static seats of a show: rows and places of a hall, or general-admission zones."""
    if not show.seated:
        zones = (
            ("DANCE", "Танцпартер", show.capacity - _GA_VIP_PLACES, show.base_price),
            ("VIP", "VIP-зона", _GA_VIP_PLACES, show.base_price * 2),
        )
        return [
            _seat(zone, name, 1, 1, price, capacity=cap, admission=True)
            for zone, name, cap, price in zones
        ]
    places = 30 if show.capacity % 30 == 0 else 25
    rows = show.capacity // places
    parterre = rows * 2 // 3
    seats = []
    for row in range(1, rows + 1):
        zone, name, zone_row = ("PARTERRE", "Партер", row)
        price = show.base_price
        if row > parterre:
            zone, name, zone_row = ("BALCONY", "Балкон", row - parterre)
            price = (show.base_price * Decimal("0.8")).quantize(Decimal(1))
        for place in range(1, places + 1):
            # The sound desk takes two seats of row 1; the organiser holds four of row 2.
            disabled = zone == "PARTERRE" and zone_row == 1 and place <= 2
            blocked = zone == "PARTERRE" and zone_row == 2 and place <= 4
            seats.append(
                _seat(zone, name, zone_row, place, price, disabled=disabled, blocked=blocked)
            )
    return seats


def _seat(
    zone: str,
    zone_name: str,
    row: int,
    place: int,
    price: Decimal,
    *,
    capacity: int = 1,
    admission: bool = False,
    disabled: bool = False,
    blocked: bool = False,
) -> dict[str, Any]:
    root = f"{zone}-{row};{place}"
    return {
        "id": f"full_{root}",
        "root_id": root,
        "name": zone_name if admission else f"{zone_name}: Ряд {row}, Место {place}",
        "zone_id": f"full_{zone}",
        "zone_root_id": zone,
        "_zone_name": zone_name,
        "short_seat_id": f"{row};{place}",
        "admission": admission,
        "row": str(row),
        "place": str(place),
        "max_quantity": capacity,
        "disabled": disabled,
        "price": _num(price),
        "currency_id": "RUB",
        "_blocked": blocked,
        "_capacity": capacity,
    }


def _sellable(plan: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What orders can take: each seated seat once, a GA zone as many times as its capacity."""
    pool = []
    for seat in plan:
        if seat["disabled"] or seat["_blocked"]:
            continue
        entry = {
            "root_id": seat["root_id"],
            "name": seat["name"],
            "price": Decimal(str(seat["price"])),
        }
        pool.extend([entry] * seat["_capacity"])
    return pool


def _num(value: Decimal) -> int | float:
    """Money as QTickets writes it: a JSON integer when whole, else a number with kopecks."""
    return int(value) if value == value.to_integral_value() else float(value)


def _qt(moment: datetime | None) -> str | None:
    """A timestamp as QTickets writes it: ISO 8601 with +03:00 (UTC ones keep their offset)."""
    if moment is None:
        return None
    if moment.utcoffset() == timedelta(0):
        return moment.isoformat()
    return moment.astimezone(QT_OFFSET).isoformat()
