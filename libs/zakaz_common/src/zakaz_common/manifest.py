"""`SourceManifest`: a source declared once, for the CLI, the service runtime and health to share.

A source package exposes its manifest through the `zakaz.sources` entry-point group, so adding
a source means one new folder: nothing else in the tree lists the sources.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Literal

from zakaz_common.errors import ConfigError

if TYPE_CHECKING:
    from zakaz_common.runs import LoadOutcome, RunContext

log = logging.getLogger(__name__)

#: Entry-point group under which source packages publish their manifests.
ENTRY_POINT_GROUP = "zakaz.sources"

#: Time RQ's hard kill (`job_timeout`) must leave after a run's deadline: to publish what was
#: read just before it, record the run, raise the alert and refresh the marts.
FINISH_MARGIN = timedelta(minutes=2)

#: Every source the contract names, in sales-priority order where it matters.
CONTRACT_SOURCES = ("qtickets_sheets", "qtickets_api", "vk_ads", "direct", "gmail")

LoadFn = Callable[["RunContext"], "LoadOutcome"]


@dataclass(frozen=True)
class SourceManifest:
    """Everything the platform needs to know about one source."""

    name: str
    title: str
    #: Dotted path `package.module:function` of the load; resolved lazily so that listing
    #: manifests never imports a source's heavy dependencies.
    load: str
    #: Cron expression (minute hour day month weekday) in the business time zone.
    schedule: str
    #: Warehouse tables the source writes.
    tables: tuple[str, ...]
    #: How old the source's last success may get before it is stale.
    freshness_budget: timedelta
    #: Which business date `last_data_date` means for this source.
    data_date: Literal["sale_date", "stat_date"] = "sale_date"
    enabled_by_default: bool = True
    #: Longest a run may wait on its upstream: no request outlives it, no retry starts after it,
    #: and a run that reaches it fails cleanly (`zakaz_common.deadline`). Operators override it
    #: with `ZAKAZ_DEADLINE_<SOURCE>_SECONDS`.
    deadline: timedelta = timedelta(minutes=20)
    #: RQ's hard kill of one attempt: a backstop at least `FINISH_MARGIN` after the deadline.
    job_timeout: timedelta = timedelta(minutes=30)
    #: Days per chunk for `zakaz backfill`.
    backfill_chunk_days: int = 1
    #: Settings classes (import paths) whose env vars the source reads, for docs and checks.
    settings: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.deadline <= timedelta(0):
            raise ConfigError(f"source {self.name}: the deadline must be positive")
        if self.deadline > self.latest_deadline():
            raise ConfigError(
                f"source {self.name}: job_timeout {self.job_timeout} must exceed the deadline "
                f"{self.deadline} by at least {FINISH_MARGIN}"
            )

    def latest_deadline(self) -> timedelta:
        """The longest deadline the job timeout allows (it leaves `FINISH_MARGIN` after it)."""
        return self.job_timeout - FINISH_MARGIN

    def load_function(self) -> LoadFn:
        """Import and return the source's load function."""
        module_name, _, attr = self.load.partition(":")
        try:
            module = importlib.import_module(module_name)
            fn = getattr(module, attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"source {self.name}: cannot import {self.load}: {exc}") from exc
        if not callable(fn):
            raise ConfigError(f"source {self.name}: {self.load} is not callable")
        return fn  # type: ignore[no-any-return]


_registered: dict[str, SourceManifest] = {}


def register(manifest: SourceManifest) -> None:
    """Add a manifest by hand (entry points are the normal way)."""
    _registered[manifest.name] = manifest


def unregister(name: str) -> None:
    """Remove a manifest added by `register`."""
    _registered.pop(name, None)


def manifests() -> dict[str, SourceManifest]:
    """Every installed source's manifest, by name, in contract order then by name."""
    found: dict[str, SourceManifest] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            manifest = ep.load()
        except Exception as exc:  # a broken source must not hide the others
            log.warning("source entry point %s failed to load and is skipped: %s", ep.name, exc)
            continue
        if not isinstance(manifest, SourceManifest):
            log.warning("entry point %s is not a SourceManifest and is skipped", ep.name)
            continue
        found[manifest.name] = manifest
    found.update(_registered)
    order = {n: i for i, n in enumerate(CONTRACT_SOURCES)}
    return dict(sorted(found.items(), key=lambda kv: (order.get(kv[0], 99), kv[0])))


def get_manifest(name: str) -> SourceManifest:
    """The manifest of one source, or a ConfigError saying what is installed."""
    found = manifests()
    if name not in found:
        known = ", ".join(found) or "none"
        hint = " (not installed in this environment)" if name in CONTRACT_SOURCES else ""
        raise ConfigError(f"unknown source {name!r}{hint}; installed sources: {known}")
    return found[name]
