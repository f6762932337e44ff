"""Quality checks: each detects its problem and passes on clean data."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal

from factrows import load, vk_row
from zakaz_common.checks import (
    check_freshness,
    check_unparsed_spend,
    check_view_duplicates,
    run_checks,
)
from zakaz_common.clickhouse import Warehouse
from zakaz_common.facts import VK_ADS as VK
from zakaz_common.load import Scope
from zakaz_common.manifest import SourceManifest
from zakaz_common.runs import record_run
from zakaz_common.timeutil import today_msk


def _manifest(name: str, budget: timedelta, enabled: bool = True) -> SourceManifest:
    return SourceManifest(
        name=name,
        title=name,
        load="x:y",
        schedule="0 0 * * *",
        tables=(),
        freshness_budget=budget,
        enabled_by_default=enabled,
    )


def test_every_check_passes_on_an_empty_warehouse(wh: Warehouse) -> None:
    results = run_checks(wh, [_manifest("vk_ads", timedelta(days=2))])

    assert results
    assert not [r for r in results if r.fails_command]
    assert all(r.ok for r in results)


def test_unparsed_spend_is_reported_with_its_amount(wh: Warehouse) -> None:
    yesterday = today_msk() - timedelta(days=1)
    load(
        wh,
        VK,
        [
            vk_row(yesterday, "b1", "123.45", "", None),
            vk_row(yesterday, "b2", "10", "москва", None),
        ],
        Scope(),
    )

    (result,) = check_unparsed_spend(wh)

    assert not result.ok
    assert result.severity == "warning"
    assert "vk: 123.45 ₽ in 1 rows" in result.message
    assert not result.fails_command


def test_freshness_compares_the_last_success_with_the_budget(wh: Warehouse) -> None:
    now = time.time()
    record_run(
        wh,
        run_id="a",
        job="vk_ads",
        status="success",
        started_at=now - 3 * 86400,
        finished_at=now - 3 * 86400,
    )
    record_run(
        wh,
        run_id="b",
        job="direct",
        status="success",
        started_at=now - 3600,
        finished_at=now - 3600,
    )
    manifests = [
        _manifest("vk_ads", timedelta(days=2)),
        _manifest("direct", timedelta(days=2)),
        _manifest("qtickets_api", timedelta(minutes=30)),
        _manifest("gmail", timedelta(hours=8), False),
    ]

    results = {r.name: r for r in check_freshness(wh, manifests, now=now)}

    assert results["freshness:vk_ads"].ok is False
    assert "72.0 h ago" in results["freshness:vk_ads"].message
    assert results["freshness:direct"].ok is True
    assert (
        results["freshness:qtickets_api"].severity,
        results["freshness:qtickets_api"].message,
    ) == ("info", "never ran yet")
    assert "freshness:gmail" not in results


def test_duplicate_check_reads_each_view(wh: Warehouse) -> None:
    load(wh, VK, [vk_row(today_msk(), "b1", "1", "москва", None)], Scope())

    results = {r.name: r for r in check_view_duplicates(wh)}

    assert results["duplicates:v_marketing_daily"].ok
    assert results["duplicates:v_marketing_daily"].message == "1 rows, keys unique"
    assert Decimal(wh.scalar("SELECT sum(spend) FROM v_marketing_daily")) == Decimal("1.00")
