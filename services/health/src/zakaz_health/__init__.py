"""The zakaz health service: status, freshness, alerts and metrics of every source."""
