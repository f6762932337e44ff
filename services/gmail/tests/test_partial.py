"""Listed messages deleted before they are read: some give a partial warning, all fail the run."""

from __future__ import annotations

from typing import Any

from gmail_support import GmailSandbox
from zakaz_common.alerts import open_alerts
from zakaz_common.clickhouse import Warehouse
from zakaz_common.runs import RUN_FAILED, RUN_PARTIAL, RunRequest, RunSummary, execute
from zakaz_common.settings import CoreSettings
from zakaz_gmail.manifest import MANIFEST


def _run(wh: Warehouse, **request: Any) -> RunSummary:
    return execute(MANIFEST, RunRequest(**request), wh=wh, core=CoreSettings())


def test_a_message_gone_before_it_is_read_is_a_partial_warning_naming_it(
    gmail_env: GmailSandbox, wh: Warehouse
) -> None:
    listed = gmail_env.truth("from:qtickets")
    victim = listed[0]["id"]
    gmail_env.control("gmail/messages/delete", {"ids": [victim], "keep_listed": True})

    summary = _run(wh)

    assert summary.status == "success", summary.message
    assert summary.failed_parts == [
        f"1 of {len(listed)} new messages (deleted before they were read) failed: {victim}"
    ]
    [alert] = open_alerts(wh, "gmail")
    assert (alert.kind, alert.severity) == (RUN_PARTIAL, "warning") and victim in alert.message

    # Gmail stops listing a deleted message: the next run has every part, and says so.
    gmail_env.control("gmail/messages/delete", {"ids": [victim]})
    again = _run(wh)

    assert again.status == "success" and again.failed_parts == []
    assert open_alerts(wh, "gmail") == []


def test_every_new_message_gone_fails_the_run_naming_them(
    gmail_env: GmailSandbox, wh: Warehouse
) -> None:
    ids = [m["id"] for m in gmail_env.truth("from:qtickets")]
    gmail_env.control("gmail/messages/delete", {"ids": ids, "keep_listed": True})

    summary = _run(wh)

    assert summary.status == "error"
    assert f"all {len(ids)} new messages" in summary.message
    assert all(i in summary.message for i in ids[:5])
    assert [a.kind for a in open_alerts(wh, "gmail")] == [RUN_FAILED]
    assert wh.scalar("SELECT count() FROM gmail_loaded_messages") == 0
    assert wh.scalar("SELECT count() FROM v_sales_latest") == 0
