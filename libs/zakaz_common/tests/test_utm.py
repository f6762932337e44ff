"""UTM tags of ad links and the show an ad's `utm_content` names (CONTRACT §4, UTM → show)."""

from __future__ import annotations

from datetime import date

import pytest
from zakaz_common.cities import CityDirectory
from zakaz_common.utm import Utm, fill_template, parse_show_key, parse_utm


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            "https://example.ru/show?utm_source=vk&utm_medium=cpc&utm_campaign=spring"
            "&utm_content=msk_12_05&utm_term=balet",
            Utm("vk", "cpc", "spring", "msk_12_05", "balet"),
            id="all_five",
        ),
        pytest.param(
            "example.ru/show?utm_source=yandex&utm_content=spb_1_6",
            Utm(source="yandex", content="spb_1_6"),
            id="missing_scheme",
        ),
        pytest.param(
            "utm_source=vk&utm_content=msk_12_05",
            Utm(source="vk", content="msk_12_05"),
            id="bare_query_text",
        ),
        pytest.param("?utm_source=vk", Utm(source="vk"), id="bare_query_with_mark"),
        pytest.param(
            "https://x.ru/?utm_content=%D0%BC%D1%81%D0%BA_12_05",
            Utm(content="мск_12_05"),
            id="percent_encoded_cyrillic",
        ),
        pytest.param(
            "https://x.ru/?utm_content=%EC%F1%EA_12_05",
            Utm(content="мск_12_05"),
            id="percent_encoded_cp1251",
        ),
        pytest.param(
            "https://x.ru/?utm_content=мск_12_05", Utm(content="мск_12_05"), id="raw_cyrillic"
        ),
        pytest.param(
            "https://x.ru/?utm_campaign=spring+sale%2B2025",
            Utm(campaign="spring sale+2025"),
            id="plus_is_space_encoded_plus_kept",
        ),
        pytest.param(
            "https://x.ru/?UTM_Source=VK&Utm_Content=MSK_12_05",
            Utm(source="VK", content="MSK_12_05"),
            id="keys_case_insensitive_values_kept",
        ),
        pytest.param(
            "https://x.ru/?utm_source=first&utm_source=second",
            Utm(source="first"),
            id="first_value_wins",
        ),
        pytest.param(
            "https://x.ru/?utm_content=&utm_content=msk_12_05",
            Utm(content="msk_12_05"),
            id="blank_first_value_is_absent",
        ),
        pytest.param(
            "https://x.ru/?utm_source=%20vk%20&%20utm_medium%20=+cpc+",
            Utm(source="vk", medium="cpc"),
            id="whitespace_trimmed",
        ),
        pytest.param(
            "  https://x.ru/?utm_source=vk  ", Utm(source="vk"), id="url_padded_with_spaces"
        ),
        pytest.param(
            "https://x.ru/?utm_source=vk&amp;utm_content=msk_12_05",
            Utm(source="vk", content="msk_12_05"),
            id="html_escaped_ampersand",
        ),
        pytest.param(
            "https://x.ru/?utm_source=vk#utm_content=msk_12_05",
            Utm(source="vk"),
            id="fragment_ignored",
        ),
        pytest.param(
            "https://x.ru/#/afisha?utm_source=vk",
            Utm(source="vk"),
            id="spa_route_before_query",
        ),
        pytest.param(
            "https://x.ru/?utm_content=a=b&utm_term",
            Utm(content="a=b"),
            id="equals_in_value_key_without_value",
        ),
        pytest.param("https://x.ru/?utm_source=%ZZ", Utm(source="%ZZ"), id="bad_percent_kept"),
        pytest.param("https://x.ru/show", Utm(), id="no_query"),
        pytest.param("http://[::1?utm_source", Utm(), id="broken_ipv6_host"),
        pytest.param("?&&==&", Utm(), id="only_punctuation"),
        pytest.param("%%%", Utm(), id="percent_junk"),
        pytest.param("", Utm(), id="empty"),
        pytest.param(None, Utm(), id="none"),
    ],
)
def test_parse_utm(url: str | None, expected: Utm) -> None:
    assert parse_utm(url) == expected


def test_utm_defaults_to_empty_strings() -> None:
    assert Utm() == Utm(source="", medium="", campaign="", content="", term="")


@pytest.mark.parametrize(
    ("url", "values", "expected"),
    [
        pytest.param(
            "https://x.ru/?utm_campaign={campaign_id}&utm_content={ad_id}",
            {"campaign_id": "123", "ad_id": "456"},
            "https://x.ru/?utm_campaign=123&utm_content=456",
            id="direct_placeholders",
        ),
        pytest.param(
            "https://x.ru/?utm_campaign={{campaign_id}}&utm_content={{banner_id}}",
            {"campaign_id": "7", "banner_id": "8"},
            "https://x.ru/?utm_campaign=7&utm_content=8",
            id="vk_double_braces",
        ),
        pytest.param(
            "https://x.ru/?utm_term={keyword}&utm_content={ad_id}",
            {"ad_id": "456"},
            "https://x.ru/?utm_term={keyword}&utm_content=456",
            id="unknown_left_as_is",
        ),
        pytest.param(
            "https://x.ru/?a={{unknown}}", {}, "https://x.ru/?a={{unknown}}", id="unknown_double"
        ),
        pytest.param(
            "https://x.ru/?a={ad_id}&b={ad_id}",
            {"ad_id": "1"},
            "https://x.ru/?a=1&b=1",
            id="repeated_placeholder",
        ),
        pytest.param(
            "https://x.ru/?a={AD_ID}",
            {"ad_id": "1"},
            "https://x.ru/?a={AD_ID}",
            id="case_sensitive",
        ),
        pytest.param(
            "https://x.ru/?a={ad id}&b={}",
            {"ad id": "1"},
            "https://x.ru/?a={ad id}&b={}",
            id="not_a_placeholder_name",
        ),
        pytest.param(
            "https://x.ru/?a={ad_id}", {"ad_id": "{ad_id}"}, "https://x.ru/?a={ad_id}", id="no_loop"
        ),
        pytest.param("", {"ad_id": "1"}, "", id="empty"),
    ],
)
def test_fill_template(url: str, values: dict[str, str], expected: str) -> None:
    assert fill_template(url, values) == expected


@pytest.mark.parametrize(
    ("content", "stat_date", "expected"),
    [
        pytest.param("msk_12_05", date(2025, 5, 1), ("москва", date(2025, 5, 12)), id="plain"),
        pytest.param("MSK_12_05", date(2025, 5, 1), ("москва", date(2025, 5, 12)), id="upper"),
        pytest.param("msk_1_5", date(2025, 5, 1), ("москва", date(2025, 5, 1)), id="no_zeros"),
        pytest.param("msk_01_5", date(2025, 5, 1), ("москва", date(2025, 5, 1)), id="mixed_zeros"),
        pytest.param("msk-12-05", date(2025, 5, 1), ("москва", date(2025, 5, 12)), id="hyphens"),
        pytest.param("msk-12_05", date(2025, 5, 1), ("москва", date(2025, 5, 12)), id="mixed_seps"),
        pytest.param(
            "  spb_12_05\u00a0", date(2025, 5, 1), ("санкт-петербург", date(2025, 5, 12)), id="pad"
        ),
        pytest.param(
            "nizhniy_novgorod_12_05",
            date(2025, 5, 1),
            ("нижний новгород", date(2025, 5, 12)),
            id="city_with_underscore",
        ),
        pytest.param(
            "rostov-na-donu-1-9",
            date(2025, 8, 20),
            ("ростов-на-дону", date(2025, 9, 1)),
            id="city_with_hyphens",
        ),
        pytest.param(
            "Sankt_Peterburg-3-11",
            date(2025, 10, 1),
            ("санкт-петербург", date(2025, 11, 3)),
            id="city_underscore_date_hyphens",
        ),
        pytest.param("екб_7_3", date(2025, 3, 1), ("екатеринбург", date(2025, 3, 7)), id="cyr"),
        pytest.param(
            "Tver_Old_12_05", date(2025, 5, 1), ("tver_old", date(2025, 5, 12)), id="unknown_slug"
        ),
        pytest.param("msk__12_05", date(2025, 5, 1), ("москва", date(2025, 5, 12)), id="dbl_sep"),
        # The year nearest stat_date: ads run around the turn of the year.
        pytest.param("msk_05_01", date(2025, 12, 20), ("москва", date(2026, 1, 5)), id="next_year"),
        pytest.param(
            "msk_20_12", date(2026, 1, 10), ("москва", date(2025, 12, 20)), id="previous_year"
        ),
        pytest.param(
            "msk_01_01", date(2024, 7, 1), ("москва", date(2024, 1, 1)), id="just_before_midpoint"
        ),
        pytest.param("msk_01_01", date(2024, 7, 2), ("москва", date(2025, 1, 1)), id="tie_later"),
        pytest.param(
            "msk_01_01", date(2024, 7, 3), ("москва", date(2025, 1, 1)), id="just_after_midpoint"
        ),
        # 29.02: only leap years among stat_date.year - 1 .. + 1 are candidates.
        pytest.param(
            "msk_29_02", date(2024, 3, 10), ("москва", date(2024, 2, 29)), id="feb29_same_year"
        ),
        pytest.param(
            "msk_29_02", date(2025, 1, 15), ("москва", date(2024, 2, 29)), id="feb29_year_before"
        ),
        pytest.param(
            "msk_29_02", date(2023, 3, 1), ("москва", date(2024, 2, 29)), id="feb29_year_after"
        ),
        pytest.param(
            "msk_29_02", date(2028, 2, 28), ("москва", date(2028, 2, 29)), id="feb29_next_day"
        ),
        pytest.param("msk_29_02", date(2026, 6, 1), ("", None), id="feb29_no_leap_in_window"),
        pytest.param("msk_28_02", date(2026, 6, 1), ("москва", date(2026, 2, 28)), id="feb28"),
        # Impossible or wrongly shaped: the ad keeps its numbers, unattributed.
        pytest.param("ekb_31_02", date(2025, 2, 1), ("", None), id="feb_31"),
        pytest.param("msk_31_04", date(2025, 4, 1), ("", None), id="april_31"),
        pytest.param("msk_00_05", date(2025, 5, 1), ("", None), id="day_zero"),
        pytest.param("msk_12_13", date(2025, 5, 1), ("", None), id="month_13"),
        pytest.param("msk_12_00", date(2025, 5, 1), ("", None), id="month_zero"),
        pytest.param("msk_123_05", date(2025, 5, 1), ("", None), id="three_digit_day"),
        pytest.param("msk_12_05_v2", date(2025, 5, 1), ("", None), id="trailing_suffix"),
        pytest.param("msk_12", date(2025, 5, 1), ("", None), id="no_month"),
        pytest.param("msk 12 05", date(2025, 5, 1), ("", None), id="spaces_not_separators"),
        pytest.param("msk.12.05", date(2025, 5, 1), ("", None), id="dots_not_separators"),
        pytest.param("_12_05", date(2025, 5, 1), ("", None), id="empty_city"),
        pytest.param("__12_05", date(2025, 5, 1), ("", None), id="separator_only_city"),
        pytest.param("2025_12_05", date(2025, 5, 1), ("", None), id="digits_only_city"),
        pytest.param("12_05", date(2025, 5, 1), ("", None), id="date_without_city"),
        pytest.param("msk_١٢_٠٥", date(2025, 5, 1), ("", None), id="arabic_indic_digits"),
        pytest.param("{ad_id}", date(2025, 5, 1), ("", None), id="unfilled_placeholder"),
        pytest.param("", date(2025, 5, 1), ("", None), id="empty"),
    ],
)
def test_parse_show_key(content: str, stat_date: date, expected: tuple[str, date | None]) -> None:
    assert parse_show_key(content, stat_date) == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param("tver_1_6", ("тверь", date(2025, 6, 1)), id="directory_alias"),
        pytest.param("msk_1_6", ("msk", date(2025, 6, 1)), id="unknown_to_that_directory"),
    ],
)
def test_parse_show_key_uses_the_given_directory(
    content: str, expected: tuple[str, date | None]
) -> None:
    directory = CityDirectory.from_rows([("tver", "тверь")])
    assert parse_show_key(content, date(2025, 5, 20), directory) == expected


@pytest.mark.parametrize(
    ("content", "stat_date", "expected"),
    [
        pytest.param("msk_31_12", date(1, 1, 5), date(1, 12, 31), id="year_zero_skipped"),
        pytest.param("msk_01_01", date(9999, 12, 20), date(9999, 1, 1), id="year_10000_skipped"),
    ],
)
def test_parse_show_key_at_the_ends_of_the_calendar(
    content: str, stat_date: date, expected: date
) -> None:
    assert parse_show_key(content, stat_date) == ("москва", expected)
