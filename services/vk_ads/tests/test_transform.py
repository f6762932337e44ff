"""Pure transforms: landing URL, UTM tags with the ad group's fallback, statistics rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from zakaz_common.cities import CityDirectory
from zakaz_common.load import Reject
from zakaz_common.utm import Utm
from zakaz_vk_ads.transform import (
    BannerInfo,
    banner_info,
    banner_utm,
    item_rows,
    landing_url,
    object_id,
    stat_row,
)

CITIES = CityDirectory.bundled()
STAT_DATE = date(2025, 11, 20)


def _info(content: str) -> BannerInfo:
    return BannerInfo("228500001", "146700001", "Группа", "9120001", "План", Utm(content=content))


def _row(**base: Any) -> dict[str, Any]:
    metrics: dict[str, Any] = {"shows": 4665, "clicks": 5, "spent": "544.64"}
    metrics.update(base)
    return {"date": "2025-11-20", "base": metrics}


@pytest.mark.parametrize(
    ("banner", "url"),
    [
        pytest.param(
            {"urls": {"primary": {"url": " https://x.ru/?utm_content=msk_02_12 "}}},
            "https://x.ru/?utm_content=msk_02_12",
            id="primary_trimmed",
        ),
        pytest.param(
            {"urls": {"primary": {"url": ""}, "secondary": {"url": "https://y.ru/"}}},
            "https://y.ru/",
            id="empty_primary_falls_to_other_slot",
        ),
        pytest.param({"urls": {}}, "", id="no_slots"),
        pytest.param({"urls": []}, "", id="urls_as_empty_list"),
        pytest.param({}, "", id="no_urls_field"),
        pytest.param({"urls": {"primary": {"url": None}}}, "", id="null_url"),
    ],
)
def test_landing_url(banner: dict[str, Any], url: str) -> None:
    assert landing_url(banner) == url


@pytest.mark.parametrize(
    ("url", "group_utm", "expected"),
    [
        pytest.param(
            "https://x.ru/a?utm_source=vk&utm_medium=cpc&utm_content=msk_02_12",
            "utm_source=group&utm_content=spb_04_12&utm_term=t",
            Utm("vk", "cpc", "", "msk_02_12", "t"),
            id="link_tags_win_group_fills_the_rest",
        ),
        pytest.param(
            "https://x.ru/a",
            "utm_source=vk&utm_medium=paid_social&utm_content=kzn_29_11",
            Utm("vk", "paid_social", "", "kzn_29_11", ""),
            id="no_tags_in_link_group_text",
        ),
        pytest.param(
            "https://x.ru/a?utm_source=vk&utm_campaign={{campaign_id}}&b={{banner_id}}",
            "",
            Utm("vk", "", "146700001", "", ""),
            id="template_filled_from_ids",
        ),
        pytest.param(
            "https://x.ru/a?utm_campaign=%7B%7Bad_plan_id%7D%7D_%7B%7Bbanner_id%7D%7D",
            None,
            Utm(campaign="9120001_228500001"),
            id="percent_encoded_template",
        ),
        pytest.param(
            "https://x.ru/a?utm_content={{geo}}_x",
            "",
            Utm(content="{{geo}}_x"),
            id="unknown_placeholder_kept",
        ),
        pytest.param(
            "https://x.ru/a?utm_source=vk&amp;utm_term=%D1%81%D1%82%D0%B5%D0%BD%D0%B4%D0%B0%D0%BF#t",
            "",
            Utm(source="vk", term="стендап"),
            id="html_amp_and_cyrillic_term",
        ),
        pytest.param("https://vk.com/club1", "", Utm(), id="community_link_no_tags"),
        pytest.param("http://[", 42, Utm(), id="junk_url_and_non_text_group_utm"),
    ],
)
def test_banner_utm(url: str, group_utm: object, expected: Utm) -> None:
    values = {"banner_id": "228500001", "campaign_id": "146700001", "ad_plan_id": "9120001"}
    assert banner_utm(url, group_utm, values) == expected


def test_banner_info_resolves_group_plan_and_tags() -> None:
    banner = {
        "id": 228500001,
        "ad_group_id": 146700001,
        "urls": {"primary": {"url": "https://x.ru/?utm_campaign={{campaign_name}}"}},
    }
    groups = {"146700001": {"id": 146700001, "name": "Ёлки & гирлянды", "ad_plan_id": 9120001}}
    plans = {"9120001": {"id": 9120001, "name": "Лекция  «Ёлки»"}}

    info = banner_info(banner, groups, plans)

    assert info == BannerInfo(
        "228500001",
        "146700001",
        "Ёлки & гирлянды",
        "9120001",
        "Лекция «Ёлки»",
        Utm(campaign="Ёлки & гирлянды"),
    )


def test_banner_info_of_a_banner_whose_group_is_unknown_keeps_empty_names() -> None:
    info = banner_info({"id": "7", "ad_group_id": 1}, {}, {})
    assert (info.banner_id, info.ad_group_id, info.ad_group_name, info.ad_plan_id) == (
        "7",
        "1",
        "",
        "",
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param({"id": 228500001}, "228500001", id="int"),
        pytest.param({"id": " 42 "}, "42", id="text_with_spaces"),
        pytest.param({"id": True}, "", id="bool"),
        pytest.param({"id": 1.5}, "", id="float"),
        pytest.param({"id": "x1"}, "", id="not_digits"),
        pytest.param({}, "", id="missing"),
    ],
)
def test_object_id(raw: dict[str, Any], expected: str) -> None:
    assert object_id(raw) == expected


@pytest.mark.parametrize(
    ("content", "city", "event_date"),
    [
        pytest.param("msk_02_12", "москва", date(2025, 12, 2), id="slug_resolved"),
        pytest.param("MSK-2-12", "москва", date(2025, 12, 2), id="case_dash_no_zeros"),
        pytest.param("moscow_23_12", "москва", date(2025, 12, 23), id="alias_slug"),
        pytest.param("spb_15_01", "санкт-петербург", date(2026, 1, 15), id="next_year_nearest"),
        pytest.param("rnd_20_06", "ростов-на-дону", date(2025, 6, 20), id="past_show_same_year"),
        pytest.param("ekb_31_02", "", None, id="impossible_date_unparsed"),
        pytest.param("unknown_12_12", "unknown", date(2025, 12, 12), id="unknown_slug_kept"),
        pytest.param("promo_winter", "", None, id="wrong_shape"),
        pytest.param("", "", None, id="no_content"),
        pytest.param("12_12", "", None, id="no_city_part"),
    ],
)
def test_stat_row_city_and_show_from_utm_content(
    content: str, city: str, event_date: date | None
) -> None:
    row = stat_row(_row(), _info(content), "own", CITIES)

    assert isinstance(row, dict)
    assert (row["city"], row["event_date"]) == (city, event_date)
    assert row["spend"] == Decimal("544.64")


def test_stat_row_has_exactly_the_fact_columns() -> None:
    from zakaz_common.facts import VK_ADS

    row = stat_row(_row(), _info("msk_02_12"), "own", CITIES)

    assert isinstance(row, dict)
    assert set(row) == set(VK_ADS.columns)
    assert row["stat_date"] == STAT_DATE and row["account"] == "own"
    assert (row["impressions"], row["clicks"]) == (4665, 5)


@pytest.mark.parametrize(
    ("base", "spend", "shows"),
    [
        pytest.param({"spent": "0.10"}, Decimal("0.10"), 4665, id="kopecks"),
        pytest.param({"spent": 12}, Decimal("12.00"), 4665, id="spent_as_int"),
        pytest.param({"spent": 0.1}, Decimal("0.10"), 4665, id="spent_as_float_no_noise"),
        pytest.param({"spent": "12.345"}, Decimal("12.35"), 4665, id="three_decimals_half_up"),
        pytest.param({"spent": "1 234,50"}, Decimal("1234.50"), 4665, id="russian_format"),
        pytest.param({"shows": "4665"}, Decimal("544.64"), 4665, id="shows_as_text"),
        pytest.param({"shows": 0, "clicks": 0}, Decimal("544.64"), 0, id="spend_without_shows"),
    ],
)
def test_stat_row_reads_money_and_counts(base: dict[str, Any], spend: Decimal, shows: int) -> None:
    row = stat_row(_row(**base), _info("msk_02_12"), "own", CITIES)

    assert isinstance(row, dict)
    assert (row["spend"], row["impressions"]) == (spend, shows)


def test_an_all_zero_day_is_skipped() -> None:
    zero = _row(shows=0, clicks=0, spent="0")
    assert stat_row(zero, _info("msk_02_12"), "own", CITIES) is None


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        pytest.param(_row(spent="n/a"), "not a number", id="spent_not_a_number"),
        pytest.param(_row(spent=None), "`spent` is missing", id="spent_missing"),
        pytest.param(_row(spent="-5.00"), "`spent` is negative", id="negative_spend"),
        pytest.param(_row(clicks=-1), "`clicks` is negative", id="negative_clicks"),
        pytest.param(_row(shows=1.5), "not a whole number", id="fractional_shows"),
        pytest.param(_row(shows=True), "not a whole number", id="bool_shows"),
        pytest.param({**_row(), "date": "20.11.2025"}, "not YYYY-MM-DD", id="dotted_date"),
        pytest.param({**_row(), "date": None}, "not text", id="no_date"),
        pytest.param({"date": "2025-11-20"}, "no `base`", id="no_base"),
    ],
)
def test_unreadable_rows_are_rejected_with_a_reason(row: dict[str, Any], reason: str) -> None:
    result = stat_row(row, _info("msk_02_12"), "own", CITIES)

    assert isinstance(result, Reject)
    assert reason in result.reason
    assert result.entity == "banner_day"
    assert isinstance(result.raw, dict) and result.raw["banner_id"] == "228500001"


def test_item_rows_yield_each_day_and_reject_items_not_asked_for() -> None:
    banners = {"228500001": _info("msk_02_12")}
    item = {"id": 228500001, "rows": [_row(), _row(shows=0, clicks=0, spent="0"), "junk"]}

    results = list(item_rows(item, banners, "own", CITIES))
    stranger = list(item_rows({"id": 999, "rows": []}, banners, "own", CITIES))
    no_rows = list(item_rows({"id": 228500001}, banners, "own", CITIES))

    assert isinstance(results[0], dict) and results[1] is None and isinstance(results[2], Reject)
    assert len(stranger) == 1 and isinstance(stranger[0], Reject)
    assert "not asked for" in stranger[0].reason
    assert len(no_rows) == 1 and isinstance(no_rows[0], Reject)
