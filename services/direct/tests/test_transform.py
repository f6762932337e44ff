"""transform: report records and ads' links → fact rows, table-driven over the ugly cases."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from zakaz_common.facts import DIRECT
from zakaz_common.load import Reject
from zakaz_direct.reports import MALFORMED
from zakaz_direct.transform import ad_link, template_values, to_row

AD = "10766679603"

BASE: dict[str, str] = {
    "Date": "2025-06-01",
    "CampaignId": "62384014",
    "CampaignName": "Концерт СПб — поиск",
    "AdGroupId": "5012233441",
    "AdId": AD,
    "Impressions": "1843",
    "Clicks": "57",
    "Cost": "2137.45",
}

LINK = (
    "https://example-events.ru/c?utm_source=yandex&utm_medium=cpc&utm_campaign={campaign_id}"
    "&utm_content=spb_14_06&utm_term={ad_id}"
)


def record(**changes: str) -> dict[str, str]:
    return {**BASE, **changes}


def row(rec: dict[str, str], link: str | None = LINK, **options: Any) -> dict[str, Any]:
    out = to_row(rec, account="zakaz-events", include_vat=True, links={AD: link}, **options)
    assert not isinstance(out, Reject), out
    return out


@pytest.mark.parametrize(
    ("cost", "micros", "spend"),
    [
        pytest.param("2137.45", False, Decimal("2137.45"), id="rubles_two_places"),
        pytest.param("0", False, Decimal("0.00"), id="zero"),
        pytest.param("--", False, Decimal("0.00"), id="undefined_is_zero"),
        pytest.param("", False, Decimal("0.00"), id="empty_is_zero"),
        pytest.param("12.345", False, Decimal("12.35"), id="third_place_rounds_half_up"),
        pytest.param("2137450000", True, Decimal("2137.45"), id="micros"),
        pytest.param("2137455000", True, Decimal("2137.46"), id="micros_half_up"),
        pytest.param("--", True, Decimal("0.00"), id="micros_undefined"),
    ],
)
def test_cost_is_rubles_to_the_kopeck(cost: str, micros: bool, spend: Decimal) -> None:
    assert row(record(Cost=cost), money_in_micros=micros)["spend"] == spend


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"Date": "01.06.2025"}, "Date is not YYYY-MM-DD", id="russian_date"),
        pytest.param({"Date": "2025-02-30"}, "impossible Date", id="impossible_date"),
        pytest.param({"Date": "--"}, "Date is not YYYY-MM-DD", id="undefined_date"),
        pytest.param({"CampaignId": "--"}, "CampaignId is missing", id="undefined_campaign"),
        pytest.param({"CampaignId": "62 384"}, "CampaignId is not a number", id="campaign_spaces"),
        pytest.param({"AdId": "abc"}, "AdId is not a number", id="ad_letters"),
        pytest.param({"Clicks": "-3"}, "Clicks is not a whole", id="negative_clicks"),
        pytest.param({"Impressions": "1.5"}, "Impressions is not a whole", id="fractional_shows"),
        pytest.param({"Cost": "1 234,50"}, "Cost is not an amount", id="russian_decimal_cost"),
        pytest.param({"Cost": "-10.00"}, "Cost is not an amount", id="negative_cost"),
        pytest.param({"Cost": "1e5"}, "Cost is not an amount", id="exponent_cost"),
    ],
)
def test_unreadable_records_are_rejected_with_a_reason(
    changes: dict[str, str], reason: str
) -> None:
    out = to_row(record(**changes), account="a", include_vat=True, links={})

    assert isinstance(out, Reject)
    assert reason in out.reason
    assert out.raw == record(**changes)


def test_a_line_with_the_wrong_cell_count_is_rejected() -> None:
    out = to_row({MALFORMED: "2025-06-01\t1"}, account="a", include_vat=True, links={})

    assert isinstance(out, Reject)
    assert "wrong number of cells" in out.reason
    # Its cells may be misplaced: only the account is held back (no key of it is retracted).
    assert out.key == {"account": "a"}
    assert out.facts == ("fact_direct_daily",)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param({"Clicks": "--"}, {"clicks": 0}, id="undefined_clicks"),
        pytest.param({"Impressions": ""}, {"impressions": 0}, id="empty_impressions"),
        pytest.param({"AdGroupId": "--"}, {"ad_group_id": ""}, id="undefined_group"),
        pytest.param({"CampaignName": "--"}, {"campaign_name": ""}, id="undefined_name"),
        pytest.param(
            {"CampaignName": "  Ёлки\u00a0 — РСЯ "}, {"campaign_name": "Ёлки — РСЯ"}, id="nbsp_name"
        ),
    ],
)
def test_undefined_values_read_as_empty_or_zero(
    changes: dict[str, str], expected: dict[str, Any]
) -> None:
    out = row(record(**changes))

    assert {k: out[k] for k in expected} == expected


def test_a_row_has_exactly_the_fact_columns() -> None:
    out = row(record())

    assert set(out) == set(DIRECT.columns)
    assert out["account"] == "zakaz-events"
    assert out["include_vat"] is True
    assert (out["stat_date"], out["impressions"], out["clicks"]) == (date(2025, 6, 1), 1843, 57)


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        pytest.param(
            LINK,
            {
                "utm_campaign": "62384014",
                "utm_term": AD,
                "city": "санкт-петербург",
                "event_date": date(2025, 6, 14),
            },
            id="templates_filled",
        ),
        pytest.param(
            "https://x.ru/?utm_content={ad_id}",
            {"utm_content": AD, "city": "", "event_date": None},
            id="content_template_is_no_show",
        ),
        pytest.param(
            "https://x.ru/?utm_content={gbid}-{campaign_id}&utm_term={keyword}",
            {"utm_content": "5012233441-62384014", "utm_term": "{keyword}", "city": ""},
            id="unknown_template_stays",
        ),
        pytest.param(
            "https://x.ru/?utm_campaign={campaign_name}",
            {"utm_campaign": "Концерт СПб — поиск"},
            id="cyrillic_name_encoded_and_decoded",
        ),
        pytest.param(
            "https://x.ru/?utm_medium=cpc&amp;utm_content=EKB-5-1",
            {"utm_medium": "cpc", "city": "екатеринбург", "event_date": date(2026, 1, 5)},
            id="html_amp_dash_no_zeros_next_year",
        ),
        pytest.param(
            "https://x.ru/?utm_content=ekb_31_02",
            {"utm_content": "ekb_31_02", "city": "", "event_date": None},
            id="impossible_show_date",
        ),
        pytest.param(
            "https://x.ru/?utm_content=atlantida_10_06",
            {"city": "atlantida", "event_date": date(2025, 6, 10)},
            id="unknown_city_keeps_slug",
        ),
        pytest.param(None, {"utm_source": "", "city": "", "event_date": None}, id="no_link"),
        pytest.param("http://[", {"utm_content": "", "city": ""}, id="junk_link"),
    ],
)
def test_link_to_utm_and_show(link: str | None, expected: dict[str, Any]) -> None:
    out = row(record(Date="2025-12-20") if "EKB" in (link or "") else record(), link=link)

    assert {k: out[k] for k in expected} == expected


def test_an_ad_missing_from_the_links_has_no_show() -> None:
    out = to_row(record(), account="a", include_vat=False, links={})

    assert not isinstance(out, Reject)
    assert (out["city"], out["event_date"], out["include_vat"]) == ("", None, False)


def test_template_values_skip_undefined_and_encode() -> None:
    values = template_values(record(AdGroupId="--", CampaignName="Ёлки & Co"))

    assert values == {
        "ad_id": AD,
        "banner_id": AD,
        "campaign_id": "62384014",
        "campaign_name": "%D0%81%D0%BB%D0%BA%D0%B8%20%26%20Co",
    }


@pytest.mark.parametrize(
    ("ad", "link"),
    [
        pytest.param({"TextAd": {"Href": " https://a.ru/?x=1 "}}, "https://a.ru/?x=1", id="text"),
        pytest.param({"TextImageAd": {"Href": "https://b.ru"}}, "https://b.ru", id="text_image"),
        pytest.param({"CpcVideoAdBuilderAd": {"Href": "https://c.ru"}}, "https://c.ru", id="video"),
        pytest.param({"MobileAppAd": {"TrackingUrl": "https://d.ru"}}, "https://d.ru", id="app"),
        pytest.param({"TextAd": {"Href": None}}, None, id="turbo_page_no_href"),
        pytest.param({"TextAd": {"Href": "  "}}, None, id="blank_href"),
        pytest.param({"DynamicTextAd": {"Text": "x"}}, None, id="dynamic_has_no_link"),
        pytest.param({"Id": 1}, None, id="no_subobject"),
    ],
)
def test_ad_link_of_each_type(ad: dict[str, Any], link: str | None) -> None:
    assert ad_link(ad) == link


DIRECT_KEY = {
    "account": "a",
    "stat_date": date(2025, 6, 1),
    "campaign_id": "62384014",
    "ad_group_id": "5012233441",
    "ad_id": AD,
}


@pytest.mark.parametrize(
    ("changes", "link", "reason", "key"),
    [
        pytest.param(
            {"Impressions": "99999999999999999999"},
            None,
            "Impressions: out of range for UInt64",
            DIRECT_KEY,
            id="20_nines",
        ),
        pytest.param({"Cost": "1e300"}, None, "Cost is not an amount", DIRECT_KEY, id="1e300"),
        pytest.param(
            {"Cost": "9" * (10 << 20)}, None, "Cost is too long", DIRECT_KEY, id="10_MB_cost"
        ),
        pytest.param(
            {"Cost": "10000000000000000"}, None, "Cost too large", DIRECT_KEY, id="10**16"
        ),
        pytest.param({"Clicks": "-5"}, None, "Clicks is not a whole", DIRECT_KEY, id="-5"),
        pytest.param(
            {"CampaignName": "Кампания\x00\x1b[31m"},
            None,
            "CampaignName: control character U+0000",
            DIRECT_KEY,
            id="control_chars_in_name",
        ),
        pytest.param(
            {"CampaignName": "К" * 10_485_760},
            None,
            "CampaignName: longer than 500 characters",
            DIRECT_KEY,
            id="10_485_760_char_name",
        ),
        pytest.param(
            {"AdId": "1" * 65},
            None,
            "AdId is not a number",
            {k: v for k, v in DIRECT_KEY.items() if k != "ad_id"},
            id="ad_id_too_long",
        ),
        pytest.param(
            {},
            "https://x.ru/?utm_content=spb%00_14_06",
            "utm_content: control character U+0000",
            DIRECT_KEY,
            id="control_chars_in_utm",
        ),
        pytest.param(
            {"Date": "01.06.2025"},
            None,
            "Date is not YYYY-MM-DD",
            {k: v for k, v in DIRECT_KEY.items() if k != "stat_date"},
            id="bad_date_keeps_the_rest_of_the_key",
        ),
    ],
)
def test_ugly_values_are_rejects_naming_the_field_with_key_and_facts(
    changes: dict[str, str], link: str | None, reason: str, key: dict[str, Any]
) -> None:
    out = to_row(record(**changes), account="a", include_vat=True, links={AD: link})

    assert isinstance(out, Reject)
    assert out.reason.startswith(reason)
    assert out.key == key
    assert out.facts == (DIRECT.fact,)
    assert len(str(out.raw)) < 2000
