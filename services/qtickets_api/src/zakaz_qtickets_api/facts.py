"""The fact this source adds to the contract's: sales by the UTM tags of the buying visit."""

from __future__ import annotations

from zakaz_common.load import FactSpec

#: The five UTM tags as stored (empty string when the order had none).
UTM_COLUMNS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")

#: Paid tickets and revenue per (sale_date, event_id, UTM tags), for attribution (migration 0005).
SALES_UTM = FactSpec(
    fact="fact_qtickets_sales_utm_daily",
    staging="stg_qtickets_sales_utm",
    key=("source", "sale_date", "event_id", *UTM_COLUMNS),
    summed=("tickets_sold", "revenue"),
    date_column="sale_date",
)
