"""docker-compose.yml has the production shape of docs/architecture.md §7."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = (
    "visma-reader",
    "basware-writer",
    "webhook-gateway",
    "invoice-follow-up",
    "reconciler",
    "audit-store",
    "console",
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_kafka_runs_in_kraft_mode_from_the_official_image(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert "KAFKA_ZOOKEEPER_CONNECT" not in kafka["environment"]


def test_topics_are_created_with_twelve_partitions(compose: dict[str, Any]) -> None:
    setup = compose["services"]["kafka-setup"]
    scripts = {c["target"]: c["source"] for c in setup["configs"]}
    source = compose["configs"][scripts[setup["entrypoint"][-1]]]["file"]
    script = (ROOT / source).read_text()
    for topic in (
        "visma.changes",
        "visma.notifications",
        "basware.results",
        "basware.events",
        "operator.actions",
    ):
        assert topic in script
    assert "--partitions 12" in script


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_is_built_from_the_repo_and_joins_kafka_and_postgres(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    build = service["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    assert build["args"]["SERVICE"] == name
    env = service["environment"]
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["DATABASE_URL"].startswith("postgresql://")
    assert set(service["depends_on"]) == {"kafka-setup", "database-setup", "postgres"}


def test_basware_writer_can_scale(compose: dict[str, Any]) -> None:
    writer = compose["services"]["basware-writer"]
    assert "container_name" not in writer
    assert "ports" not in writer


def test_sandboxes_only_run_behind_their_profile(compose: dict[str, Any]) -> None:
    for name in ("visma-sandbox", "basware-sandbox"):
        assert compose["services"][name]["profiles"] == ["sandbox"]
    for name in (*SERVICES, "kafka", "postgres"):
        assert "profiles" not in compose["services"][name]


def test_service_entry_points_exist() -> None:
    for name in SERVICES:
        package = name.replace("-", "_")
        main = ROOT / "services" / name / package / "__main__.py"
        assert main.is_file(), main
        pyproject = (ROOT / "services" / name / "pyproject.toml").read_text()
        assert f'{name} = "{package}.__main__:main"' in pyproject
