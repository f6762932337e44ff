"""zakaz source `qtickets_api`."""
