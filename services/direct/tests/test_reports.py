"""reports: the request body and its deterministic name; reading TSV bodies back."""

from __future__ import annotations

from datetime import date

import pytest
from zakaz_common.errors import StructuralError
from zakaz_direct.reports import FIELDS, MALFORMED, parse_tsv, report_request

HEADER = "\t".join(FIELDS)
LINE = "2025-06-01\t62384014\tКонцерт СПб\t5012233441\t10766679603\t1843\t57\t2137.45"


def request(**changes: object) -> tuple[str, dict[str, object]]:
    args: dict[str, object] = {
        "login": "zakaz-events",
        "since": date(2025, 6, 1),
        "to": date(2025, 6, 4),
        "include_vat": True,
        "run_key": "run-1",
    }
    args.update(changes)
    built = report_request(**args)  # type: ignore[arg-type]
    return built.name, built.body


def test_the_body_asks_for_the_ad_report_in_tsv_for_the_window() -> None:
    name, body = request()

    params = body["params"]
    assert params == {
        "SelectionCriteria": {"DateFrom": "2025-06-01", "DateTo": "2025-06-04"},
        "FieldNames": list(FIELDS),
        "ReportName": name,
        "ReportType": "AD_PERFORMANCE_REPORT",
        "DateRangeType": "CUSTOM_DATE",
        "Format": "TSV",
        "IncludeVAT": "YES",
    }
    assert request(include_vat=False)[1]["params"]["IncludeVAT"] == "NO"  # type: ignore[index]


def test_the_name_is_deterministic_and_changes_with_each_part() -> None:
    name, _ = request()

    assert request()[0] == name
    assert name.startswith("zakaz_ad_perf_20250601_20250604_")
    others = {
        request(login="other")[0],
        request(since=date(2025, 6, 2))[0],
        request(to=date(2025, 6, 5))[0],
        request(include_vat=False)[0],
        request(run_key="run-2")[0],
    }
    assert name not in others and len(others) == 5


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"{HEADER}\n{LINE}\n", id="skipped_title_and_total"),
        pytest.param(f'"r (2025-06-01 - 2025-06-04)"\n{HEADER}\n{LINE}\nTotal rows: 1\n', id="all"),
        pytest.param(f"{HEADER}\r\n{LINE}\r\n\r\n", id="crlf_and_blank_lines"),
    ],
)
def test_tsv_records_by_column(text: str) -> None:
    records = parse_tsv(text)

    assert records == [dict(zip(FIELDS, LINE.split("\t"), strict=True))]
    assert records[0]["CampaignName"] == "Концерт СПб"


def test_columns_in_any_order_and_extra_columns() -> None:
    header = "Cost\tConversions\t" + "\t".join(f for f in FIELDS if f != "Cost")
    line = "10.00\t--\t2025-06-01\t1\tC\t2\t3\t4\t5"

    (record,) = parse_tsv(f"{header}\n{line}\n")

    assert (record["Cost"], record["Conversions"], record["AdId"]) == ("10.00", "--", "3")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("Date\tCampaignId\n2025-06-01\t1\n", "lacks the columns", id="missing_cols"),
        pytest.param(f"{HEADER}\n{LINE}\nTotal rows: 2\n", "cut short", id="total_mismatch"),
        pytest.param("Total rows: 3\n", "no column header", id="total_without_header"),
    ],
)
def test_structural_problems_fail(text: str, problem: str) -> None:
    with pytest.raises(StructuralError, match=problem):
        parse_tsv(text)


def test_an_empty_report_has_no_records() -> None:
    assert parse_tsv("") == []
    assert parse_tsv(f"{HEADER}\n") == []
    assert parse_tsv(f"{HEADER}\nTotal rows: 0\n") == []


def test_a_short_line_is_kept_for_the_rejects() -> None:
    records = parse_tsv(f"{HEADER}\n2025-06-01\t1\n{LINE}\n")

    assert records[0] == {MALFORMED: "2025-06-01\t1"}
    assert records[1]["AdId"] == "10766679603"
