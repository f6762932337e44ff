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
        pytest.param(_row(spent=None), "spent: missing", id="spent_missing"),
        pytest.param(_row(spent="-5.00"), "spent: cannot be negative", id="negative_spend"),
        pytest.param(_row(clicks=-1), "clicks: cannot be negative", id="negative_clicks"),
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


VK_KEY = {"account": "own", "stat_date": STAT_DATE, "banner_id": "228500001"}


@pytest.mark.parametrize(
    ("row", "reason", "key"),
    [
        pytest.param(_row(spent="1e300"), "spent: not a number: '1e300'", VK_KEY, id="1e300"),
        pytest.param(_row(spent=1e300), "spent: number too large", VK_KEY, id="1e300_float"),
        pytest.param(_row(spent=10**20), "spent: number too large", VK_KEY, id="10**20_spend"),
        pytest.param(_row(shows=10**20), "shows: out of range for UInt64", VK_KEY, id="10**20"),
        pytest.param(
            _row(clicks="99999999999999999999"),
            "clicks: out of range for UInt64",
            VK_KEY,
            id="20_nines",
        ),
        pytest.param(_row(spent="9" * (10 << 20)), "spent: too long", VK_KEY, id="10_MB"),
        pytest.param(_row(spent="\u2212100 ₽"), "spent: cannot be negative", VK_KEY, id="-100"),
        pytest.param(_row(shows=-5), "shows: cannot be negative", VK_KEY, id="-5"),
        pytest.param(_row(shows="1,5"), "shows: not a whole number: '1,5'", VK_KEY, id="1,5"),
        pytest.param(_row(spent=float("nan")), "spent: not a finite number", VK_KEY, id="NaN"),
        pytest.param(_row(spent=float("inf")), "spent: not a finite number", VK_KEY, id="Inf"),
        pytest.param(_row(clicks=True), "clicks: not a whole number", VK_KEY, id="bool"),
        pytest.param(
            {"date": "2025-11-20", "base": [1, 2]},
            "no `base` metrics",
            VK_KEY,
            id="base_as_a_list",
        ),
        pytest.param(
            {**_row(), "date": "20251120"},
            "date: statistics date is not YYYY-MM-DD",
            {"account": "own", "banner_id": "228500001"},
            id="basic_iso_date",
        ),
    ],
)
def test_ugly_values_are_rejects_naming_the_field_with_key_and_facts(
    row: dict[str, Any], reason: str, key: dict[str, Any]
) -> None:
    result = stat_row(row, _info("msk_02_12"), "own", CITIES)

    assert isinstance(result, Reject)
    assert result.reason.startswith(reason)
    assert result.key == key
    assert result.facts == ("fact_vk_ads_daily",)


@pytest.mark.parametrize(
    ("banner", "group", "reason"),
    [
        pytest.param(
            {"urls": [{"url": "https://x.ru/?utm_content=msk_02_12"}]},
            {},
            "urls: list",
            id="urls_as_a_list",
        ),
        pytest.param({"urls": "https://x.ru/"}, {}, "urls: str", id="urls_as_text"),
        pytest.param(
            {"urls": {"primary": {"url": "https://x.ru/?utm_content=msk%00%1b"}}},
            {},
            "utm_content: control character U+0000",
            id="control_chars_in_utm",
        ),
        pytest.param(
            {"urls": {"primary": {"url": "https://x.ru/?utm_term=" + "a" * 600}}},
            {},
            "utm_term: longer than 500 characters",
            id="long_utm",
        ),
        pytest.param({}, {"name": "Г" * 10_485_760}, "ad_group_name: longer than 500", id="name"),
        pytest.param({}, {"name": "Группа\x1b[31m"}, "ad_group_name: control", id="ctl_name"),
        pytest.param({}, {"utm": ["utm_source=vk"]}, "ad group utm: list", id="group_utm_list"),
    ],
)
def test_a_banner_whose_fields_cannot_be_staged_rejects_its_days(
    banner: dict[str, Any], group: dict[str, Any], reason: str
) -> None:
    info = banner_info(
        {"id": 228500001, "ad_group_id": 146700001, **banner}, {"146700001": group}, {}
    )
    result = stat_row(_row(), info, "own", CITIES)

    assert isinstance(result, Reject)
    assert result.reason.startswith(f"banner 228500001: {reason}")
    assert result.key == VK_KEY
    assert result.facts == ("fact_vk_ads_daily",)


def test_item_rejects_carry_the_account_and_banner() -> None:
    banners = {"228500001": _info("msk_02_12")}
    [stranger] = item_rows({"id": 999, "rows": []}, banners, "own", CITIES)
    [no_rows] = item_rows({"id": 228500001, "rows": {"0": _row()}}, banners, "own", CITIES)

    assert isinstance(stranger, Reject) and isinstance(no_rows, Reject)
    assert stranger.key == {"account": "own", "banner_id": "999"}
    assert no_rows.key == {"account": "own", "banner_id": "228500001"}
    assert no_rows.reason == "statistics item without a rows list"
    assert stranger.facts == no_rows.facts == ("fact_vk_ads_daily",)
