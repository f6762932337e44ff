"""zakaz source `qtickets_sheets`."""
