"""infra/prometheus and infra/grafana: valid for their tools, and only names /metrics exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from zakaz_common.manifest import CONTRACT_SOURCES
from zakaz_health.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "infra" / "prometheus"
GRAFANA = ROOT / "infra" / "grafana"
METRIC_RE = re.compile(r"\bzakaz_[a-z_]+\b")
#: Scrape job names of prometheus.yml, which look like metric names to METRIC_RE.
JOB_NAMES = {"zakaz_health", "zakaz_sources"}


def promtool(*args: str) -> str:
    """Run promtool (failing, never skipping, when it is missing); its output."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail(
            "promtool is not installed; `make test` installs it "
            "(apt-get install -y prometheus), or install it yourself",
            pytrace=False,
        )
    done = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
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


def test_rules_and_dashboard_use_only_exported_metrics() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "zakaz.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = set(METRIC_RE.findall((PROMETHEUS / "alerts.yml").read_text()))
    used |= {name for expr in exprs for name in METRIC_RE.findall(expr)}

    used -= JOB_NAMES
    assert used <= set(METRIC_NAMES), used - set(METRIC_NAMES)
    # The six metrics of issue 3 each have a panel.
    for name in METRIC_NAMES[:6]:
        assert any(name in expr for expr in exprs), name


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
