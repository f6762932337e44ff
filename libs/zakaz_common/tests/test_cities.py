"""Canonical city keys and the bundled alias table."""

from __future__ import annotations

import csv
import io
import re
from importlib import resources

import pytest
from zakaz_common.cities import CityDirectory, canonical_city, normalize_city

MILLION_PLUS = {
    "москва",
    "санкт-петербург",
    "новосибирск",
    "екатеринбург",
    "казань",
    "нижний новгород",
    "красноярск",
    "челябинск",
    "самара",
    "уфа",
    "ростов-на-дону",
    "краснодар",
    "омск",
    "воронеж",
    "пермь",
    "волгоград",
}


def bundled_csv_rows() -> list[list[str]]:
    text = resources.files("zakaz_common").joinpath("data/cities.csv").read_text("utf-8")
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Москва", "москва", id="capital_letter"),
        pytest.param("  МОСКВА  ", "москва", id="upper_and_padded"),
        pytest.param("Нижний\u00a0\u00a0Новгород", "нижний новгород", id="nbsp_inside"),
        pytest.param("Нижний \t Новгород", "нижний новгород", id="tab_inside"),
        pytest.param("Орёл", "орел", id="yo_folded"),
        pytest.param("ЁЛКИНО", "елкино", id="capital_yo_folded"),
        pytest.param("Tver_Old", "tver_old", id="underscore_kept"),
        pytest.param(None, "", id="none"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalize_city(raw: object, expected: str) -> None:
    assert normalize_city(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("москва", "москва", id="canonical_itself"),
        pytest.param("Москва", "москва", id="canonical_capitalised"),
        pytest.param("msk", "москва", id="msk"),
        pytest.param("MSK", "москва", id="msk_upper"),
        pytest.param("moscow", "москва", id="moscow"),
        pytest.param("moskva", "москва", id="moskva"),
        pytest.param("мск", "москва", id="msk_cyrillic"),
        pytest.param("spb", "санкт-петербург", id="spb"),
        pytest.param("Питер", "санкт-петербург", id="piter_cyrillic"),
        pytest.param("piter", "санкт-петербург", id="piter"),
        pytest.param("СПб", "санкт-петербург", id="spb_cyrillic_mixed_case"),
        pytest.param("saint-petersburg", "санкт-петербург", id="saint_petersburg"),
        pytest.param("sankt_peterburg", "санкт-петербург", id="underscore_for_hyphen"),
        pytest.param("санкт петербург", "санкт-петербург", id="space_for_hyphen"),
        pytest.param("Санкт\u00a0-\u00a0Петербург", "санкт-петербург", id="nbsp_around_hyphen"),
        pytest.param("ekb", "екатеринбург", id="ekb"),
        pytest.param("yekaterinburg", "екатеринбург", id="yekaterinburg"),
        pytest.param("Ебург", "екатеринбург", id="eburg_cyrillic"),
        pytest.param("Е-бург", "екатеринбург", id="e_hyphen_burg"),
        pytest.param("nsk", "новосибирск", id="nsk"),
        pytest.param("Новосиб", "новосибирск", id="novosib_cyrillic"),
        pytest.param("nizhniy_novgorod", "нижний новгород", id="nizhniy_underscore"),
        pytest.param("nizhny-novgorod", "нижний новгород", id="nizhny_hyphen"),
        pytest.param("Нижний-Новгород", "нижний новгород", id="hyphen_for_space"),
        pytest.param("Нижний", "нижний новгород", id="nizhniy_nickname"),
        pytest.param("NN", "нижний новгород", id="nn"),
        pytest.param("Н.Новгород", "нижний новгород", id="abbreviated_with_dot"),
        pytest.param("kzn", "казань", id="kzn"),
        pytest.param("rnd", "ростов-на-дону", id="rnd"),
        pytest.param("rostov", "ростов-на-дону", id="rostov"),
        pytest.param("Ростов", "ростов-на-дону", id="rostov_cyrillic"),
        pytest.param("rostov_na_donu", "ростов-на-дону", id="rostov_underscores"),
        pytest.param("Ростов на Дону", "ростов-на-дону", id="rostov_spaces"),
        pytest.param("Орёл", "орел", id="yo_in_canonical"),
        pytest.param("tagil", "нижний тагил", id="tagil"),
        pytest.param("  Казань ", "казань", id="padded"),
        pytest.param("Tver_Old", "tver_old", id="unknown_kept_normalised"),
        pytest.param("  Урюпинск ", "урюпинск", id="unknown_cyrillic_trimmed"),
        pytest.param("Ёлкино", "елкино", id="unknown_yo_folded"),
        pytest.param("", "", id="empty"),
        pytest.param(None, "", id="none"),
    ],
)
def test_canonical(raw: object, expected: str) -> None:
    assert CityDirectory.bundled().canonical(raw) == expected
    assert canonical_city(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("msk", True, id="alias"),
        pytest.param("Санкт-Петербург", True, id="canonical"),
        pytest.param("nizhniy_novgorod", True, id="underscore_variant"),
        pytest.param("Орёл", True, id="yo_variant"),
        pytest.param("tver_old", False, id="unknown"),
        pytest.param("", False, id="empty"),
        pytest.param("_", False, id="only_separator"),
    ],
)
def test_is_known(raw: object, expected: bool) -> None:
    assert CityDirectory.bundled().is_known(raw) is expected


def test_bundled_is_read_once() -> None:
    assert CityDirectory.bundled() is CityDirectory.bundled()


def test_bundled_covers_the_touring_cities() -> None:
    cities = CityDirectory.bundled().cities()
    assert len(cities) >= 60
    assert cities >= MILLION_PLUS


def test_bundled_csv_is_written_canonically() -> None:
    header, *rows = bundled_csv_rows()
    assert header == ["alias", "city"]
    assert all(len(row) == 2 for row in rows)
    cities = {city for _, city in rows}
    # What the CSV says must be what lands in dim_city, with no normalisation in between.
    assert {city for city in cities if normalize_city(city) != city} == set()
    assert {city for city in cities if [city, city] not in rows} == set()
    # Every city needs a Latin slug, since UTM tags are written in Latin.
    latin = {city for alias, city in rows if re.fullmatch(r"[a-z0-9_.-]+", alias)}
    assert cities - latin == set()


def test_bundled_csv_has_no_repeated_alias() -> None:
    aliases = [re.sub(r"[\s_-]+", " ", normalize_city(alias)) for alias, _ in bundled_csv_rows()]
    assert len(aliases) == len(set(aliases))


def test_alias_rows_are_normalised_sorted_and_complete() -> None:
    directory = CityDirectory.from_rows(
        [(" MSK ", "Москва"), ("Питер", "Санкт-Петербург"), ("Орёл", "ОРЁЛ")]
    )
    assert directory.alias_rows() == [
        ("msk", "москва"),
        ("москва", "москва"),
        ("орел", "орел"),
        ("питер", "санкт-петербург"),
        ("санкт-петербург", "санкт-петербург"),
    ]
    assert directory.cities() == frozenset({"москва", "санкт-петербург", "орел"})


def test_bundled_alias_rows_resolve_to_themselves() -> None:
    directory = CityDirectory.bundled()
    rows = directory.alias_rows()
    assert rows == sorted(rows)
    assert ("msk", "москва") in rows
    assert ("санкт-петербург", "санкт-петербург") in rows
    assert [(a, c) for a, c in rows if directory.canonical(a) != c] == []


def test_directory_from_rows_is_used_alone() -> None:
    directory = CityDirectory.from_rows([("tver", "Тверь")])
    assert directory.canonical("TVER") == "тверь"
    assert directory.canonical("msk") == "msk"
    assert directory.is_known("msk") is False


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param([("nn", "нижний новгород"), ("nn", "нижний тагил")], id="same_alias"),
        pytest.param([("NN", "нижний новгород"), ("nn", "нижний тагил")], id="alias_case"),
        pytest.param([("n-n", "нижний новгород"), ("n_n", "нижний тагил")], id="separators"),
        pytest.param(
            [("ростов", "ростов-на-дону"), ("rostov-veliky", "ростов")], id="alias_is_a_city"
        ),
        pytest.param([("орёл", "орел"), ("орел", "орлов")], id="yo_variant"),
    ],
)
def test_an_alias_never_maps_to_two_cities(rows: list[tuple[str, str]]) -> None:
    with pytest.raises(ValueError, match="maps to both"):
        CityDirectory.from_rows(rows)


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(("", "москва"), id="empty_alias"),
        pytest.param(("msk", " "), id="blank_city"),
    ],
)
def test_empty_rows_are_refused(row: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="empty alias or city"):
        CityDirectory.from_rows([row])


def test_repeated_identical_rows_are_fine() -> None:
    directory = CityDirectory.from_rows([("msk", "москва"), ("MSK", "Москва")])
    assert directory.alias_rows() == [("msk", "москва"), ("москва", "москва")]
