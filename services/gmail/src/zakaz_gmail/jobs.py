"""The load of `gmail`: search the mailbox, read each new report once, land its sales.

A run lists the messages matching `GMAIL_QUERY` (or the run's dates, `query.py`), skips those
loaded before (`gmail_loaded_messages`), reads the others and parses their sales tables. The
rows are kept per message (`stg_gmail_sales`); then, for every (sale_date, event_id) the run's
messages name, the rows of the most recent message that has the key, over all messages ever
loaded, are published into the sales fact with `source = 'gmail'`.

Publishing never retracts: each message is loaded once, so a run speaks only for the keys of
its own messages, and a key absent from them is not gone upstream (an earlier report still
says it). A later message replaces a key's numbers; an earlier one arriving late does not.

A listed message deleted before it could be read is skipped with a `partial` warning naming it;
when every new message listed is gone, the run fails (nothing was read).
"""

from __future__ import annotations

from typing import Any

from zakaz_common.cities import CityDirectory
from zakaz_common.facts import SALES
from zakaz_common.load import Reject, Scope
from zakaz_common.parts import PartTally
from zakaz_common.runs import LoadOutcome, RunContext

from zakaz_gmail.client import GmailClient, MessageGone
from zakaz_gmail.query import in_window, search_query
from zakaz_gmail.settings import get_settings
from zakaz_gmail.store import candidates, loaded_ids, record_loaded, stage_messages
from zakaz_gmail.transform import SOURCE, MessageSales, message_sales, winning_rows


def read_new_messages(ctx: RunContext) -> tuple[list[MessageSales], dict[str, Any], list[str]]:
    """Search, skip what was loaded, read and parse the rest: messages, counts, failed parts."""
    settings = get_settings()
    window = ctx.request.window(ctx.today, None)
    cities = CityDirectory.bundled()
    parsed: list[MessageSales] = []
    outside = 0
    reads = PartTally("new messages (deleted before they were read)")
    with GmailClient(settings, ctx.deadline) as client:
        listed = list(dict.fromkeys(client.message_ids(search_query(settings.query, window))))
        done = loaded_ids(ctx.wh, listed)
        for msg_id in (i for i in listed if i not in done):
            try:
                message = client.message(msg_id)
            except MessageGone as exc:
                reads.failure(msg_id, exc)
                ctx.log.warning("gmail: message %s was deleted before it could be read", msg_id)
                continue
            reads.loaded()
            if not in_window(message.internal_date_ms, window):
                outside += 1
                continue
            parsed.append(message_sales(message, cities))
        counts: dict[str, Any] = {
            "window": f"{window[0]}..{window[1]}" if window else "GMAIL_QUERY",
            "messages_listed": len(listed),
            "messages_already_loaded": len(done),
            "messages_gone": len(reads.failed),
            "messages_outside_window": outside,
            "messages_read": len(parsed),
            **client.stats.as_counts(client.token.refreshes),
        }
    counts.update(
        messages_with_sales=sum(1 for m in parsed if m.outcome == "sales"),
        messages_without_data=sum(1 for m in parsed if m.outcome == "no_data"),
        messages_rejected=sum(1 for m in parsed if m.outcome == "rejected"),
        attachments_ignored=sum(m.ignored_attachments for m in parsed),
        sales_rows=sum(len(m.rows) for m in parsed),
        rows_skipped=sum(m.skipped_rows for m in parsed),
    )
    return parsed, counts, reads.settle()


def load(ctx: RunContext) -> LoadOutcome:
    """One run: every new report message read once, its sales landed (most recent wins)."""
    messages, counts, failed_parts = read_new_messages(ctx)
    rejects: list[Reject] = [r for m in messages for r in m.rejects]
    processed, rejected = counts["sales_rows"], len(rejects)
    if ctx.request.dry_run:
        return LoadOutcome(
            processed, rejected, counts, _message(counts, rejected, None), failed_parts
        )

    stage_messages(ctx.wh, ctx.run_id, ctx.loaded_at, messages)
    keys = {(row["sale_date"], row["event_id"]) for m in messages for row in m.rows}
    winners = winning_rows(candidates(ctx.wh, keys))
    ctx.stage(SALES, winners)
    ctx.reject(rejects)
    published = ctx.publish(SALES, Scope(equals={"source": [SOURCE]}), retract=False)
    record_loaded(ctx.wh, ctx.run_id, ctx.loaded_at, messages)
    counts.update(
        keys_touched=len(keys),
        winning_rows=len(winners),
        upserted_sales=published.upserted,
        fact_rows_written=published.written,
    )
    message = _message(counts, rejected, published.written)
    ctx.log.info("gmail: %s", message)
    return LoadOutcome(processed, rejected, counts, message, failed_parts)


def _message(counts: dict[str, Any], rejected: int, written: int | None) -> str:
    read = (
        f"{counts['messages_read']} new of {counts['messages_listed']} messages listed "
        f"({counts['messages_already_loaded']} loaded before): {counts['sales_rows']} sales rows "
        f"from {counts['messages_with_sales']}, {counts['messages_without_data']} without sales, "
        f"{counts['messages_rejected']} rejected; {rejected} rejects"
    )
    if written is None:
        return f"dry run: {read}; nothing written"
    return f"{read}; {written} fact rows written"
