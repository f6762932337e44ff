"""The report zakaz asks Direct for, and reading its TSV body back into records (pure, no I/O)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any, Final

from zakaz_common.errors import StructuralError

#: Columns of the AD_PERFORMANCE_REPORT zakaz reads, one row per day and ad.
FIELDS: Final = (
    "Date",
    "CampaignId",
    "CampaignName",
    "AdGroupId",
    "AdId",
    "Impressions",
    "Clicks",
    "Cost",
)

REPORT_TYPE: Final = "AD_PERFORMANCE_REPORT"

#: Headers every report request carries: money in rubles (not micros), no title or total line,
#: and let Direct choose online or offline (the client supports both).
REPORT_HEADERS: Final = {
    "processingMode": "auto",
    "returnMoneyInMicros": "false",
    "skipReportHeader": "true",
    "skipReportSummary": "true",
}

#: Key of a record whose line did not split into as many cells as the header has.
MALFORMED: Final = "_line"

_TOTAL: Final = re.compile(r"Total rows:\s*(\d+)", re.IGNORECASE)


@dataclass(frozen=True)
class ReportRequest:
    """One report request body and its name; re-sending the same body polls the same report."""

    name: str
    body: dict[str, Any]


def report_request(
    *, login: str, since: date, to: date, include_vat: bool, run_key: str
) -> ReportRequest:
    """The body for `since`..`to`, named deterministically for (login, window, fields, run).

    Direct keeps a finished offline report for hours and answers an identical body with it,
    so the name also carries `run_key` (the run id): polls and retries of one run find their
    report again, while a later run is never handed an earlier run's stale numbers.
    """
    vat = "YES" if include_vat else "NO"
    identity = json.dumps(
        [login, since.isoformat(), to.isoformat(), REPORT_TYPE, list(FIELDS), vat, run_key],
        separators=(",", ":"),
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    name = f"zakaz_ad_perf_{since:%Y%m%d}_{to:%Y%m%d}_{digest}"
    body = {
        "params": {
            "SelectionCriteria": {"DateFrom": since.isoformat(), "DateTo": to.isoformat()},
            "FieldNames": list(FIELDS),
            "ReportName": name,
            "ReportType": REPORT_TYPE,
            "DateRangeType": "CUSTOM_DATE",
            "Format": "TSV",
            "IncludeVAT": vat,
        }
    }
    return ReportRequest(name=name, body=body)


def parse_tsv(text: str, fields: tuple[str, ...] = FIELDS) -> list[dict[str, str]]:
    """Records of a TSV report keyed by column name; tolerant of a title and a total line.

    We ask Direct to skip both, but a report read from a proxy or an older API answer may
    still carry them: line 1 `"name (from - to)"` without a tab, and a last `Total rows: N`
    that must match the rows read (a mismatch means the body was cut short).
    """
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if lines and "\t" not in lines[0] and lines[0].lstrip().startswith('"'):
        lines = lines[1:]
    total: int | None = None
    if lines and (match := _TOTAL.fullmatch(lines[-1].strip())):
        total = int(match[1])
        lines = lines[:-1]
    if not lines:
        if total:
            raise StructuralError(f"Direct report says {total} rows but has no column header")
        return []
    header = lines[0].split("\t")
    missing = [f for f in fields if f not in header]
    if missing:
        raise StructuralError(
            f"Direct report lacks the columns {', '.join(missing)} (header: {lines[0][:200]!r})"
        )
    records: list[dict[str, str]] = []
    for line in lines[1:]:
        cells = line.split("\t")
        if len(cells) != len(header):
            records.append({MALFORMED: line})
            continue
        records.append(dict(zip(header, cells, strict=True)))
    if total is not None and total != len(records):
        raise StructuralError(
            f"Direct report says {total} rows but {len(records)} arrived; the body was cut short"
        )
    return records
