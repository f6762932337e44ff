"""`make soak`: a simulated day of `zakaz up` under faults, checked at the end (issue 19)."""
