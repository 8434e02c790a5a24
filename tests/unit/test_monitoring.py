"""The Grafana dashboard queries only metrics the services export, and docker compose
provisions it beside Prometheus, which scrapes every service."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docker" / "grafana" / "dashboards" / "ml-connector.json"
METRIC = re.compile(r"\b(mlc_[a-z_]+)\b")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}
# The modules whose import registers the services' metrics, as each service's start does.
METRICS_MODULES = (
    "audit_store.consumer",
    "basware_writer.metrics",
    "mlconnector.lag",
    "visma_reader.metrics",
    "webhook_gateway.metrics",
)


def exported() -> set[str]:
    """Every series name the registered mlc_ metrics can have."""
    for module in METRICS_MODULES:
        importlib.import_module(module)
    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("mlc_")
        for suffix in SUFFIXES[family.type]
    }


def queried(dashboard: dict[str, Any]) -> set[str]:
    return {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in METRIC.findall(target["expr"])
    }


def test_every_metric_the_dashboard_queries_is_exported() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    asked = queried(dashboard)
    assert len(asked) >= 15
    assert asked <= exported(), sorted(asked - exported())


def test_the_check_catches_a_metric_nobody_exports() -> None:
    made_up = {"panels": [{"targets": [{"expr": "rate(mlc_writer_resultz_total[5m])"}]}]}
    assert not queried(made_up) <= exported()


def test_compose_provisions_the_dashboard_beside_prometheus_scraping_every_service() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    grafana = compose["services"]["grafana"]
    assert "./docker/grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert compose["services"]["prometheus"]["profiles"] == ["monitoring"]
    scraped = yaml.safe_load((ROOT / "docker" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in scraped["scrape_configs"]}
    assert jobs == {
        "visma-reader",
        "basware-writer",
        "webhook-gateway",
        "reconciler",
        "audit-store",
        "console",
    }
    provider = yaml.safe_load(
        (ROOT / "docker/grafana/provisioning/dashboards/ml-connector.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
