"""Workspace-wide pytest set-up: the shared fixtures live in `zakaz_common.testing`."""

pytest_plugins = ["zakaz_common.testing"]
