"""infra/prometheus and infra/grafana: valid for their tools, and every metric a panel or a rule
names is exported by exactly one service's /metrics (the real apps, scraped over HTTP)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from health_support import Runs
from prometheus_client.parser import text_string_to_metric_families
from ruamel.yaml import YAML
from zakaz_common.clickhouse import Warehouse
from zakaz_common.manifest import CONTRACT_SOURCES, get_manifest
from zakaz_common.service import create_app as source_app
from zakaz_common.testing import serving
from zakaz_health.app import create_app as health_app

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "infra" / "prometheus"
GRAFANA = ROOT / "infra" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "zakaz.json"
#: Series Prometheus makes itself for every target; no service exports them.
PROMETHEUS_OWN = {"up"}
#: PromQL words that look like names: keywords, and the modifiers whose parentheses hold labels.
KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2"}
LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
NAME = re.compile(r"(?<![\w.:])[a-zA-Z_:][a-zA-Z0-9_:]*")


def promtool(*args: str, stdin: str | None = None) -> str:
    """Run promtool (failing, never skipping, when it is missing); its output."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed; `make test` installs it "
            "(apt-get install -y prometheus), or install it yourself",
            pytrace=False,
        )
    done = subprocess.run(
        [binary, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    return output


def test_promtool_accepts_the_scrape_config() -> None:
    assert "SUCCESS" in promtool("check", "config", "infra/prometheus/prometheus.yml")


def test_promtool_accepts_the_alert_rules() -> None:
    assert "SUCCESS" in promtool("check", "rules", "infra/prometheus/alerts.yml")


def test_the_alert_rules_fire_as_their_unit_tests_expect() -> None:
    assert "SUCCESS" in promtool("test", "rules", "infra/prometheus/alerts_test.yml")


def test_prometheus_scrapes_health_and_every_source_service() -> None:
    text = (PROMETHEUS / "prometheus.yml").read_text()

    assert '"health:8000"' in text
    for source in CONTRACT_SOURCES:
        assert f'"{source}:8000"' in text


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not its functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = LABEL_LISTS.sub(" ", text)
    names = set()
    for match in NAME.finditer(text):
        word = match.group()
        if word in KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # a keyword, or a function or aggregation called here
        names.add(word)
    return names


def panel_queries() -> Iterator[tuple[str, str]]:
    """`(where, PromQL)` of every panel's targets and of the dashboard's variables."""

    def walk(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for panel in panels:
            yield panel
            yield from walk(panel.get("panels", []))

    dashboard = json.loads(DASHBOARD.read_text())
    for panel in walk(dashboard["panels"]):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"]
        # Grafana's label_values(metric, label) is not PromQL; its metric is a selector.
        shown = re.fullmatch(r"label_values\((.+),\s*\w+\)", query)
        yield f"variable {variable['name']!r}", shown.group(1) if shown else query


def rule_queries() -> Iterator[tuple[str, str]]:
    """`(where, PromQL)` of every alert rule."""
    rules = YAML(typ="safe", pure=True).load((PROMETHEUS / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"rule {rule['alert']}", rule["expr"]


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('zakaz_a{source=~"$source"} / on (source) zakaz_b', {"zakaz_a", "zakaz_b"}),
        ('sum by (source, status) (increase(zakaz_c_total{x="rate(y)"}[1h]))', {"zakaz_c_total"}),
        ("delta(zakaz_d[1h]) > 0 and on (source) zakaz_e == 1", {"zakaz_d", "zakaz_e"}),
        ('up{job="zakaz_health"} == 0', {"up"}),
        ("zakaz_f * 1000 offset 5m", {"zakaz_f"}),
    ],
)
def test_metric_names_are_read_from_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def scrape(app: object) -> list[tuple[str, dict[str, str]]]:
    """`(sample name, labels)` of every sample the app's /metrics answers with, once
    `promtool check metrics` has found nothing to say about the exposition's names and types."""
    with serving(app) as base_url:
        response = httpx.get(f"{base_url}/metrics", timeout=30)
    assert response.status_code == 200, response.text
    promtool("check", "metrics", stdin=response.text)
    return [
        (sample.name, sample.labels)
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


@pytest.fixture
def exported(wh: Warehouse, redis_url: str) -> dict[str, dict[str, set[str]]]:
    """`{metric: {source label: services exporting it}}` from the health service and the five
    source services, run as their containers run them, on one warehouse with runs recorded."""
    runs = Runs(wh)
    for source in CONTRACT_SOURCES:
        runs.add(source, "success", finished_ago=3600, took=3, rows=10, rejected=1)
        runs.add(source, "error", finished_ago=600, took=1, message="upstream said 401")
    runs.add("vk_ads", "dry_run", finished_ago=60, rows=5)
    apps: dict[str, object] = {"health": health_app(redis_url=redis_url, warehouse=wh)}
    for source in CONTRACT_SOURCES:
        apps[source] = source_app(get_manifest(source), redis_url=redis_url, warehouse=wh)
    owners: dict[str, dict[str, set[str]]] = {}
    for service, app in apps.items():
        for name, labels in scrape(app):
            owners.setdefault(name, {}).setdefault(labels.get("source", ""), set()).add(service)
    return owners


def test_every_metric_of_the_dashboard_and_the_rules_has_exactly_one_exporter(
    exported: dict[str, dict[str, set[str]]],
) -> None:
    used: dict[str, set[str]] = {}
    for where, expr in [*panel_queries(), *rule_queries()]:
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)

    for name in sorted(set(used) - PROMETHEUS_OWN):
        assert name in exported, f"{name} ({', '.join(sorted(used[name]))}) is exported by none"
        for source, services in exported[name].items():
            assert len(services) == 1, f"{name}{{source={source!r}}} is exported by {services}"
        # One kind of exporter per metric: the health service alone, or each source its own.
        kinds = {
            "health" if s == "health" else "source" for ss in exported[name].values() for s in ss
        }
        assert len(kinds) == 1, f"{name} is exported by the health service and by sources"
        assert set(exported[name]) >= set(CONTRACT_SOURCES), f"{name}: not every source"
    # One set of names: whatever is exported is shown or alerted on, under that one name.
    assert set(exported) == set(used) - PROMETHEUS_OWN


def test_a_source_service_exports_only_its_own_runs(
    exported: dict[str, dict[str, set[str]]],
) -> None:
    by_source = {
        name: sources
        for name, sources in exported.items()
        if "health" not in set().union(*sources.values())
    }

    assert set(by_source) == {"zakaz_job_runs_total"}
    for source, services in by_source["zakaz_job_runs_total"].items():
        assert services == {source}


def test_the_dashboard_is_well_formed_and_points_at_the_provisioned_datasource() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "zakaz.json").read_text())
    datasource = (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    provider = (GRAFANA / "provisioning" / "dashboards" / "zakaz.yml").read_text()
    uid = re.search(r"uid: (\S+)", datasource)

    assert uid is not None
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid.group(1)
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
    assert dashboard["uid"] == "zakaz-sources"
    assert "path: /var/lib/grafana/dashboards" in provider
