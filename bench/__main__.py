"""`make bench`: ingest, no-op re-run and BI latency, each against a baseline measured in the
same run; prints the ratios and writes docs/performance.md. Never part of `make test`."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import time
from pathlib import Path

from zakaz_common.clickhouse import open_warehouse
from zakaz_common.marts import refresh_marts
from zakaz_common.migrate import migrate
from zakaz_common.settings import CoreSettings, WarehouseSettings

from bench import bi_latency, ingest

REPO = Path(__file__).resolve().parent.parent

#: What the tables above measure and why the numbers are what they are (no figures: those
#: are in the tables, measured in the run that wrote this file).
HOW = """
## How the numbers come about

**Ingest.** The pipeline is the `qtickets_api` source's own code, minus HTTP. The orders are
generated into a file first (not timed, so that the engine cannot work while the generator
makes the next page); the pipeline reads it a page at a time. `read_page` hashes each page
(XXH3-128) and reads its `paging` from the tail; each full page goes at once to ClickHouse
(`zakaz_qtickets_api.engine.PageFeed`): one query per 384 MB of pages reads them from a named
pipe while they are written, parses them itself (the buyer's fields are never parsed) and
applies the CONTRACT §5 rules in one `INSERT … SELECT` into a `Null` table, whose materialized
views stage the sales for both facts and count each page's orders in the same pass (the columns
whose values repeat, events, UTM tags and page digests, are `LowCardinality`); then both facts
are published, which groups each fact's staged rows twice (sums, staged keys). Pages outside
the SQL's strict shapes would be fetched again and read by the Python reader (none are here).
The baseline inserts rows that are already flat, from Python lists, so it does none of the work
of reading JSON. The last row of the ingest table is
that work alone: ClickHouse parsing the same pages from a file, with no transform and no
insert. Most of the pipeline's time is that parse (skipping the buyers' fields costs about as
much as reading the rest); then come the SQL transform, the staging inserts and publishing.
The row above it reads every order in Python instead (decode, PII whitelist, `read_order`,
stage). Memory stays flat: Python keeps no page, and each read by the engine is bounded (the
memory the engine freed is returned to the system when a read ends).

**No-op re-run.** Every page hashes to the digest recorded by the last run over the same
window, and the events are unchanged, and nothing wrote the window since: that run's publish
stands, so the re-run fetches, hashes and stops. When some pages changed, only those are read
and the others' staged rows are copied forward (not measured here; see the qtickets_api tests).

**BI latency.** `v_sales_14d`, `v_marketing_daily`, `v_romi_kpi`, `v_inventory` and
`v_data_freshness` read marts holding exactly their rows, rebuilt after every run and swapped
in atomically (`EXCHANGE TABLES`); their queries cost what the baseline's do, plus the view.
`v_sales_latest` and `v_campaign_performance` read the facts with partition-aligned `FINAL`.
"""


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB RAM, Python {platform.python_version()}"
    )


def main() -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--sales-rows", type=int, default=bi_latency.SALES_ROWS)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--data-dir", type=Path, default=REPO / "data" / "bench")
    parser.add_argument(
        "--no-write", action="store_true", help="do not rewrite docs/performance.md"
    )
    args = parser.parse_args()
    bi_latency.SALES_ROWS = args.sales_rows

    shutil.rmtree(args.data_dir, ignore_errors=True)
    core = CoreSettings(ZAKAZ_DATA_DIR=args.data_dir)
    wh = open_warehouse(WarehouseSettings(), core, database="bench_ingest")
    migrate(wh)
    idle = ingest.rss_mb()

    print(f"generating {args.orders:,} orders …", flush=True)
    t0 = time.perf_counter()
    source = ingest.write_pages(args.orders, args.data_dir / "orders-pages.jsonl")
    generate_seconds = time.perf_counter() - t0
    print("ingest …", flush=True)
    first = ingest.pipeline(wh, source, "bench-1")
    peak_extra = ingest.peak_rss_mb() - idle
    base_seconds = ingest.baseline(wh, first.rows)
    base_rate = first.rows / base_seconds
    ratio = first.rows_per_second / base_rate
    print("no-op re-run …", flush=True)
    again = ingest.pipeline(wh, source, "bench-2")
    print("the Python reader alone …", flush=True)
    python = ingest.pipeline(wh, source, "bench-3", engine=False, remember=False)
    print("the engine's JSON parse alone …", flush=True)
    parse = ingest.engine_parse_seconds(wh, source, args.orders)
    source.path.unlink()
    ceiling = (first.rows / parse) / base_rate

    print(
        f"BI latency: {bi_latency.SALES_ROWS:,} sales rows, {bi_latency.AD_ROWS:,} ad rows …",
        flush=True,
    )
    bi = open_warehouse(WarehouseSettings(), core, database="bench_bi")
    migrate(bi)
    t0 = time.perf_counter()
    bi_latency.generate(bi)
    refresh = refresh_marts(bi)
    bi_latency.materialise_baselines(bi)
    setup = time.perf_counter() - t0
    latencies = bi_latency.measure(bi, repeats=args.repeats)

    lines = [
        "# Performance",
        "",
        f"Machine: {_machine()}. Command: `make bench` (`python -m bench`). Embedded ClickHouse (chDB).",
        f"Measured {time.strftime('%Y-%m-%d')}; every ratio compares with a baseline measured in the same run.",
        "",
        "## Ingest (goal: ≥ 0.5 of the baseline's rows/s; ≤ 400 MB peak RSS above idle)",
        "",
        "| what | value |",
        "| --- | --- |",
        "| orders, as JSON pages of 100 through read_page → OrderStream (engine) → publish | "
        f"{first.orders:,} in {first.pages:,} pages → {first.rows:,} flattened rows "
        "(sales and sales by UTM) |",
        f"| pipeline | {first.seconds:.1f} s, {first.rows_per_second:,.0f} rows/s "
        f"({first.orders / first.seconds:,.0f} orders/s) |",
        f"| baseline: the same {first.rows:,} flattened rows, one insert per 100k | "
        f"{base_seconds:.1f} s, {base_rate:,.0f} rows/s |",
        f"| ratio (pipeline / baseline) | **{ratio:.2f}** |",
        f"| peak RSS above idle ({idle:.0f} MB idle) | **{peak_extra:.0f} MB** |",
        f"| generating the orders into a file first (left out of both) | {generate_seconds:.1f} s |",
        f"| the same pipeline with every page read by the Python reader (as a dry run does) | "
        f"{python.seconds:.1f} s, {python.rows_per_second:,.0f} rows/s: "
        f"ratio {python.rows_per_second / base_rate:.2f} |",
        f"| ClickHouse parsing the same pages, nothing else (`file(…, JSONEachRow)`) | "
        f"{parse:.1f} s: a pipeline that did only this would reach **{ceiling:.2f}** |",
        "",
        "## No-op re-run (goal: ≤ 0.2 of the first load; 0 new fact rows)",
        "",
        "| what | value |",
        "| --- | --- |",
        f"| first load / re-run | {first.seconds:.1f} s / {again.seconds:.1f} s |",
        f"| pages the re-run did not decode (unchanged digest) | {again.pages_unchanged:,} of "
        f"{again.pages:,} |",
        f"| fraction | **{again.seconds / first.seconds:.2f}** |",
        f"| new fact rows written by the re-run | **{again.fact_rows_written}** |",
        "",
        f"## BI latency (goal: p95 ≤ 3× baseline and ≤ 300 ms; {args.repeats} runs each)",
        "",
        f"{bi_latency.SALES_ROWS:,} sales fact rows (19 % superseded versions, 1 % tombstones) and "
        f"{bi_latency.AD_ROWS:,} ad rows; set-up {setup:.0f} s, mart refresh {refresh.duration_ms} ms "
        "(paid once per run). Baseline: the same query on a plain MergeTree copy of the view's output.",
        "",
        "| view | p50 ms | p95 ms | baseline p50 ms | baseline p95 ms | p95 ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in latencies:
        lines.append(
            f"| {r.view} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.base_p50_ms:.1f} | "
            f"{r.base_p95_ms:.1f} | {r.ratio:.1f} |"
        )
    text = "\n".join(lines) + "\n" + HOW
    print(text)
    if not args.no_write:
        (REPO / "docs" / "performance.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
