"""Seat maps failing: all of them fail the run and change nothing, some give a partial warning."""

from __future__ import annotations

import json

from qtickets_support import Sandbox, run, view_sales
from zakaz_common.alerts import open_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RUN_FAILED, RUN_PARTIAL, get_run

#: Shows of the sandbox's season that have a seat map (every event's shows).
SHOWS = 9

#: Attempts the client makes per seat map before it gives the show up (client.ATTEMPTS).
ATTEMPTS = 4


def _published(wh: Warehouse) -> dict[str, int]:
    """Rows of every table but staging (a failed run's staged rows expire; nothing reads them)."""
    tables = wh.rows(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine != 'View' "
        "AND NOT startsWith(name, 'stg_') AND NOT startsWith(name, 'mv_') "
        "AND name NOT IN ('meta_job_runs_log', 'schema_migrations')",
        {"db": wh.database},
    )
    return {t: int(wh.scalar(f"SELECT count() FROM `{t}`")) for (t,) in tables}


def _inventory(wh: Warehouse) -> dict[str, tuple[int, int]]:
    rows = wh.rows("SELECT event_id, tickets_total, tickets_left FROM v_inventory")
    return {str(e): (int(t), int(left)) for e, t, left in rows}


def _fail_seats(sandbox: Sandbox, path: str, shows: int) -> None:
    # Retry-After 0 keeps the client's retries instant; every attempt of every show fails.
    sandbox.control(
        "faults", {"status": 500, "count": shows * ATTEMPTS, "path": path, "retry_after": 0}
    )


def test_every_seat_map_failing_fails_the_run_and_changes_nothing(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    assert run(wh).status == "success"
    facts, stock, sales = _published(wh), _inventory(wh), view_sales(wh)
    paid = next(o for o in qt_env.orders() if o["payed"] and o["deleted_at"] is None)
    qt_env.control(f"orders/{paid['id']}/refund")
    _fail_seats(qt_env, "/shows/", SHOWS)

    summary = run(wh)

    assert summary.status == "error"
    assert f"all {SHOWS} seat maps of shows failed" in summary.message
    assert "152881" in summary.message and "500" in summary.message
    row = get_run(wh, summary.run_id)
    assert row is not None and row["status"] == "error" and "152881" in row["message"]
    after = _published(wh)
    assert after.pop("alerts") == facts.pop("alerts") + 1
    assert after == facts
    assert _inventory(wh) == stock
    assert view_sales(wh) == sales  # the refund is not published either: nothing was
    [alert] = open_alerts(wh, "qtickets_api")
    assert (alert.kind, alert.severity) == (RUN_FAILED, "error")
    assert "seat maps" in alert.message


def test_some_seat_maps_failing_is_a_success_with_a_warning_naming_the_shows(
    wh: Warehouse, qt_env: Sandbox
) -> None:
    _fail_seats(qt_env, "/shows/152881/", 1)

    summary = run(wh)

    assert summary.status == "success", summary.message
    assert summary.failed_parts == [f"1 of {SHOWS} seat maps of shows failed: 152881"]
    [alert] = open_alerts(wh, "qtickets_api")
    assert (alert.kind, alert.severity) == (RUN_PARTIAL, "warning")
    assert "152881" in alert.message and summary.run_id in alert.message
    row = get_run(wh, summary.run_id)
    assert row is not None and json.loads(row["metrics"])["failed_parts"] == summary.failed_parts
    assert "partial: 1 of 9 seat maps" in row["message"]

    again = run(wh)

    assert again.status == "success" and again.failed_parts == []
    assert open_alerts(wh, "qtickets_api") == []
