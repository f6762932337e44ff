"""Canonical city keys: one spelling per city, whatever a sheet, an API or a UTM tag calls it."""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable
from importlib import resources
from typing import Final

from zakaz_common.normalize import clean_text

_BUNDLED: Final = "data/cities.csv"
"""The alias table shipped with the package; also what `dim_city` is seeded from."""

_SEPARATORS: Final = re.compile(r"[\s_-]+")
"""UTM slugs use `_` or `-` where people type a space; lookups treat all three alike."""


def normalize_city(raw: object) -> str:
    """Trimmed, lower-cased, inner whitespace (NBSP too) collapsed, `ё` folded to `е`."""
    return clean_text(raw).lower().replace("ё", "е")


def _lookup_key(raw: object) -> str:
    return _SEPARATORS.sub(" ", normalize_city(raw)).strip()


class CityDirectory:
    """Aliases resolved to canonical city names."""

    def __init__(self, rows: Iterable[tuple[str, str]]) -> None:
        """Build from `(alias, city)` pairs; every city is also an alias of itself."""
        self._by_key: dict[str, str] = {}
        normalised: set[tuple[str, str]] = set()
        for raw_alias, raw_city in rows:
            alias, city = normalize_city(raw_alias), normalize_city(raw_city)
            if not alias or not city:
                raise ValueError(f"empty alias or city in row {(raw_alias, raw_city)!r}")
            for name in (alias, city):
                known = self._by_key.setdefault(_lookup_key(name), city)
                if known != city:
                    raise ValueError(f"alias {name!r} maps to both {known!r} and {city!r}")
            normalised.update({(alias, city), (city, city)})
        self._rows = sorted(normalised)

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[str, str]]) -> CityDirectory:
        """Build from `(alias, city)` pairs, e.g. the CSV's rows or `dim_city`'s."""
        return cls(rows)

    @classmethod
    def bundled(cls) -> CityDirectory:
        """The directory from the CSV shipped with zakaz_common (read once per process)."""
        return _bundled()

    def canonical(self, raw: object) -> str:
        """The canonical city for an alias; an unknown one comes back as `normalize_city(raw)`."""
        return self._by_key.get(_lookup_key(raw)) or normalize_city(raw)

    def is_known(self, raw: object) -> bool:
        """Whether the value is a known alias or city name."""
        return _lookup_key(raw) in self._by_key

    def cities(self) -> frozenset[str]:
        """Every canonical city name."""
        return frozenset(self._by_key.values())

    def alias_rows(self) -> list[tuple[str, str]]:
        """Normalised `(alias, city)` pairs, sorted: the rows seeded into `dim_city`."""
        return list(self._rows)


def canonical_city(raw: object) -> str:
    """The canonical city for an alias, using the bundled directory."""
    return CityDirectory.bundled().canonical(raw)


@functools.cache
def _bundled() -> CityDirectory:
    text = resources.files("zakaz_common").joinpath(_BUNDLED).read_text(encoding="utf-8")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, [])
    if header != ["alias", "city"]:
        raise ValueError(f"{_BUNDLED} must start with the header alias,city, not {header!r}")
    rows: list[tuple[str, str]] = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != 2:
            raise ValueError(f"{_BUNDLED}:{line}: expected alias,city, got {row!r}")
        rows.append((row[0], row[1]))
    return CityDirectory.from_rows(rows)
