"""zakaz source `direct`."""
