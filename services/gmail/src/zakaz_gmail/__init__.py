"""zakaz source `gmail`."""
