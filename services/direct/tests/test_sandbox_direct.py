"""The Direct sandbox speaks the real protocol: raw HTTP against its router, no client of ours."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from direct_support import DirectSandbox
from zakaz_common.timeutil import today_msk
from zakaz_sandbox.direct_data import CLIENT_LOGIN, TOKEN

SKIP_ALL = {"skipReportHeader": "true", "skipReportSummary": "true"}
RUBLES = {"returnMoneyInMicros": "false"}


def body(name: str = "r1", *, fields: list[str] | None = None, vat: str = "YES") -> dict[str, Any]:
    day = today_msk() - timedelta(days=2)
    return {
        "params": {
            "SelectionCriteria": {"DateFrom": day.isoformat(), "DateTo": day.isoformat()},
            "FieldNames": fields or ["Date", "CampaignId", "AdId", "Clicks", "Cost"],
            "ReportName": name,
            "ReportType": "AD_PERFORMANCE_REPORT",
            "DateRangeType": "CUSTOM_DATE",
            "Format": "TSV",
            "IncludeVAT": vat,
        }
    }


def ready(sandbox: DirectSandbox, request: dict[str, Any], headers: dict[str, str]) -> str:
    """Poll a report to its 200, checking the offline cycle's headers on the way."""
    statuses = []
    for _ in range(5):
        response = sandbox.raw_report(request, headers)
        statuses.append(response.status_code)
        if response.status_code == 200:
            assert response.headers["content-type"].startswith("text/tab-separated-values")
            return response.text
        assert response.text == ""
        assert int(response.headers["retryIn"]) >= 0
        assert int(response.headers["reportsInQueue"]) >= 1
    raise AssertionError(f"never ready: {statuses}")


def test_offline_cycle_is_201_then_202_then_200(sandbox: DirectSandbox) -> None:
    statuses = [sandbox.raw_report(body(), SKIP_ALL).status_code for _ in range(4)]

    assert statuses == [201, 202, 200, 200]


def test_online_mode_answers_at_once(sandbox: DirectSandbox) -> None:
    response = sandbox.raw_report(body(), {"processingMode": "online", **SKIP_ALL, **RUBLES})

    assert response.status_code == 200
    assert response.text.startswith("Date\tCampaignId\tAdId\tClicks\tCost\n")


def test_money_is_in_micros_unless_asked_otherwise(sandbox: DirectSandbox) -> None:
    micros = ready(sandbox, body("micros"), SKIP_ALL).splitlines()[1:]
    rubles = ready(sandbox, body("rubles"), {**SKIP_ALL, **RUBLES}).splitlines()[1:]

    assert len(micros) == len(rubles) > 10
    for m, r in zip(micros, rubles, strict=True):
        cost_m, cost_r = m.split("\t")[-1], r.split("\t")[-1]
        assert cost_m.isdigit()
        assert Decimal(cost_m) == Decimal(cost_r) * 1_000_000
        assert len(cost_r.partition(".")[2]) == 2


def test_vat_changes_the_cost(sandbox: DirectSandbox) -> None:
    fields = ["AdId", "Cost"]
    with_vat = ready(sandbox, body("y", fields=fields), {**SKIP_ALL, **RUBLES}).splitlines()[1:]
    net = ready(sandbox, body("n", fields=fields, vat="NO"), {**SKIP_ALL, **RUBLES}).splitlines()[
        1:
    ]

    gross = {line.split("\t")[0]: Decimal(line.split("\t")[1]) for line in with_vat}
    for line in net:
        ad, cost = line.split("\t")
        assert abs(Decimal(cost) * Decimal("1.2") - gross[ad]) <= Decimal("0.01")


def test_title_header_and_total_lines_follow_the_skip_headers(sandbox: DirectSandbox) -> None:
    full = ready(sandbox, body("full"), RUBLES).splitlines()
    bare = ready(sandbox, body("bare"), {"skipColumnHeader": "true", **SKIP_ALL}).splitlines()

    day = (today_msk() - timedelta(days=2)).isoformat()
    assert full[0] == f'"full ({day} - {day})"'
    assert full[1] == "Date\tCampaignId\tAdId\tClicks\tCost"
    assert full[-1] == f"Total rows: {len(full) - 3}"
    assert len(bare) == len(full) - 3 and bare[0].startswith(day)


def test_undefined_values_are_double_dashes(sandbox: DirectSandbox) -> None:
    fields = ["AdId", "Clicks", "AvgCpc", "Conversions"]
    lines = ready(sandbox, body(fields=fields), {**SKIP_ALL, **RUBLES}).splitlines()[1:]

    cells = [line.split("\t") for line in lines]
    assert all(c[3] == "--" for c in cells)
    assert all((c[2] == "--") == (c[1] == "0") for c in cells)
    assert any(c[1] == "0" for c in cells), "the sandbox has rows with impressions and no clicks"


def test_a_finished_report_is_kept_with_its_numbers(sandbox: DirectSandbox) -> None:
    first = ready(sandbox, body("kept"), SKIP_ALL)
    sandbox.control("revise", {"date": (today_msk() - timedelta(days=2)).isoformat(), "factor": 2})

    again = sandbox.raw_report(body("kept"), SKIP_ALL)
    fresh = ready(sandbox, body("fresh"), SKIP_ALL)

    assert again.status_code == 200 and again.text == first
    assert fresh != first


def test_a_name_reused_with_other_parameters_is_error_4000(sandbox: DirectSandbox) -> None:
    sandbox.raw_report(body("same"), SKIP_ALL)

    response = sandbox.raw_report(body("same", vat="NO"), {"Accept-Language": "en"})

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["error_code"], error["error_string"]) == ("4000", "Invalid request parameters")
    assert "same" in error["error_detail"]


def test_at_most_five_reports_are_queued(sandbox: DirectSandbox) -> None:
    answers = [sandbox.raw_report(body(f"q{n}"), {"Accept-Language": "ru"}) for n in range(6)]

    assert [a.status_code for a in answers] == [201] * 5 + [400]
    assert [a.headers["reportsInQueue"] for a in answers[:5]] == ["1", "2", "3", "4", "5"]
    error = answers[5].json()["error"]
    assert error["error_code"] == "9000"
    assert "очеред" in error["error_string"]
    # A finished report frees its slot.
    for _ in range(2):
        sandbox.raw_report(body("q0"), {})
    assert sandbox.raw_report(body("q6"), {}).status_code == 201


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        pytest.param({"Authorization": "Bearer wrong"}, "53", id="bad_token"),
        pytest.param({"Authorization": ""}, "53", id="no_token"),
        pytest.param({"Client-Login": "drugoy-reklamodatel"}, "54", id="not_a_client"),
        pytest.param({"Client-Login": "nobody-here"}, "8800", id="unknown_login"),
        pytest.param({"Client-Login": ""}, "8000", id="agency_without_login"),
    ],
)
def test_auth_errors_of_reports(sandbox: DirectSandbox, headers: dict[str, str], code: str) -> None:
    response = sandbox.raw_report(body(), headers)

    assert response.status_code == 400
    assert response.json()["error"]["error_code"] == code
    assert response.headers["RequestId"]


def test_required_report_parameters(sandbox: DirectSandbox) -> None:
    request = body()
    del request["params"]["ReportName"]

    response = sandbox.raw_report(request, {})

    assert response.status_code == 400
    assert response.json()["error"]["error_code"] == "8000"


def post(
    sandbox: DirectSandbox, service: str, payload: dict[str, Any], **extra: str
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {TOKEN}", "Client-Login": CLIENT_LOGIN, **extra}
    return httpx.post(f"{sandbox.api_url}/{service}", json=payload, headers=headers)


def test_campaigns_get_pages_and_spends_units(sandbox: DirectSandbox) -> None:
    query: dict[str, Any] = {
        "method": "get",
        "params": {"SelectionCriteria": {}, "FieldNames": ["Id", "Name", "Currency"]},
    }
    everything = post(sandbox, "campaigns", query)
    query["params"]["Page"] = {"Limit": 5, "Offset": 0}
    first = post(sandbox, "campaigns", query)

    campaigns = everything.json()["result"]["Campaigns"]
    assert len(campaigns) == 13 and "LimitedBy" not in everything.json()["result"]
    assert set(campaigns[0]) == {"Id", "Name", "Currency"}
    assert any("Ёлки" in c["Name"] for c in campaigns)
    assert first.json()["result"]["LimitedBy"] == 5
    spent, remaining, limit = (int(x) for x in first.headers["Units"].split("/"))
    assert (spent, limit) == (15, 64_000) and remaining == 64_000 - 23 - 15


def test_ads_get_needs_a_selection_and_answers_errors_at_200(sandbox: DirectSandbox) -> None:
    no_selection = post(
        sandbox, "ads", {"method": "get", "params": {"SelectionCriteria": {}, "FieldNames": ["Id"]}}
    )
    bad_token = post(
        sandbox,
        "ads",
        {"method": "get", "params": {"SelectionCriteria": {"Ids": [1]}, "FieldNames": ["Id"]}},
        Authorization="Bearer nope",
    )

    assert no_selection.status_code == bad_token.status_code == 200
    assert no_selection.json()["error"]["error_code"] == 4001
    assert bad_token.json()["error"]["error_code"] == 53


def test_ads_get_returns_only_the_asked_fields(sandbox: DirectSandbox) -> None:
    ads = sandbox.ads()
    ids = [int(a["id"]) for a in ads]
    answer = post(
        sandbox,
        "ads",
        {
            "method": "get",
            "params": {
                "SelectionCriteria": {"Ids": ids},
                "FieldNames": ["Id", "Type"],
                "TextAdFieldNames": ["Href"],
            },
        },
    ).json()["result"]["Ads"]

    text_ads = [a for a in answer if a["Type"] == "TEXT_AD"]
    assert len(answer) == len(ads)
    assert all(set(a) == {"Id", "Type", "TextAd"} for a in text_ads)
    assert all(set(a) == {"Id", "Type"} for a in answer if a["Type"] != "TEXT_AD")
    hrefs = [a["TextAd"]["Href"] for a in text_ads]
    assert None in hrefs
    assert any("{ad_id}" in (h or "") for h in hrefs)


def test_the_season_drives_the_links(sandbox: DirectSandbox) -> None:
    ads = sandbox.ads()
    shows = {(a["expected_city"], a["expected_event_date"]) for a in ads if a["expected_city"]}

    assert ("москва", (today_msk() + timedelta(days=9)).isoformat()) in shows
    assert len({a["link"] for a in ads if a["link"]}) > 20
    unattributed = [a for a in ads if not a["expected_city"]]
    assert len(unattributed) == 4  # the brand campaign's three links and one ad without a link


def test_history_is_deterministic_for_a_reference_day() -> None:
    from zakaz_sandbox.direct_data import Account

    day = date(2025, 12, 1)
    one, two = Account.build(day), Account.build(day)

    rows = one.rows(day - timedelta(days=5), day)
    assert rows == two.rows(day - timedelta(days=5), day)
    assert rows and all(r.stat.impressions > 0 for r in rows)
    assert one.rows(day - timedelta(days=400), day - timedelta(days=399)) == []
