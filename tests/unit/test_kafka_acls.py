"""Kafka in production authenticates every client and authorises each service for exactly
what its code does (issue 17, item 6).

Docker is not available to the tests, so the broker's side is checked as configuration:
docker/kafka-acls.txt must grant each service's principal exactly the topics its app
produces to and consumes from (read from the five FastStream apps, as docs/asyncapi.yaml
is), docker-compose.yml must give each service its own principal and secret, and the broker
must refuse the unauthenticated and everything not granted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from faststream.kafka.publisher.usecase import LogicPublisher
from faststream.kafka.subscriber.usecase import LogicSubscriber

from audit_store.settings import AuditSettings
from mlconnector.broker_epoch import EPOCH_GROUP
from mlconnector_cli.asyncapi import documented_brokers
from visma_reader.settings import ReaderSettings

ROOT = Path(__file__).resolve().parents[2]
# The order of documented_brokers().
SERVICES = (
    "visma-reader",
    "basware-writer",
    "webhook-gateway",
    "invoice-follow-up",
    "reconciler",
    "audit-store",
    "console",
)
# Replays by hand are published by the command line (docs/architecture.md §2).
CLI = "mlconnector-cli"
# visma-reader marks the broker's epoch (commits, which Kafka authorises as Read) on the
# topics it watches; every principal with a consumer reads the marks.
READER = "visma-reader"

Grant = tuple[str, str, str, str]  # principal, operation, resource, name


def granted() -> set[Grant]:
    lines = (ROOT / "docker" / "kafka-acls.txt").read_text().splitlines()
    rows = [line.split() for line in lines if line.strip() and not line.startswith("#")]
    assert all(len(row) == 4 for row in rows), rows
    grants = {(row[0], row[1], row[2], row[3]) for row in rows}
    assert len(grants) == len(rows), "a grant is listed twice"
    return grants


def needed() -> set[Grant]:
    """What each app produces and consumes, with the consumer groups it joins."""
    needs: set[Grant] = set()
    for principal, broker in zip(SERVICES, documented_brokers(), strict=True):
        for publisher in broker.publishers:
            assert isinstance(publisher, LogicPublisher)
            # audit-store's broker documents the replays, which the command line publishes.
            writer = CLI if principal == "audit-store" else principal
            needs.add((writer, "Write", "topic", publisher.topic))
        for subscriber in broker.subscribers:
            assert isinstance(subscriber, LogicSubscriber)
            for topic in subscriber.topic_names:
                needs.add((principal, "Read", "topic", topic))
            # audit-store reads with its own aiokafka consumer, in its settings' group.
            group = subscriber.group_id or AuditSettings.model_construct().consumer_group
            needs.add((principal, "Read", "group", group))
            # Its consumers follow the broker's epoch marks; the console has none.
            needs.add((principal, "Read", "group", EPOCH_GROUP))
    reader = ReaderSettings.model_construct()
    for topic in (reader.changes_topic, reader.notifications_topic, reader.results_topic):
        needs.add((READER, "Read", "topic", topic))
    needs.add((READER, "Read", "group", EPOCH_GROUP))
    return needs


def test_each_principal_is_granted_exactly_what_its_code_needs() -> None:
    assert granted() == needed()


def test_no_service_may_write_what_another_service_produces() -> None:
    writers: dict[str, set[str]] = {}
    for principal, operation, _resource, name in granted():
        if operation == "Write":
            writers.setdefault(name, set()).add(principal)
    # A forged DeliveryResult needs write on basware.results: only the writer has it.
    assert writers["basware.results"] == {"basware-writer"}
    assert writers["visma.notifications"] == {"webhook-gateway", "console"}
    # The reconciler re-publishes Visma's current version (RECONCILER_HEAL), as the reader.
    assert writers["visma.changes"] == {"visma-reader", CLI, "console", "reconciler"}
    assert writers["basware.events"] == {"webhook-gateway", "invoice-follow-up"}
    assert not any(principal == "audit-store" for principal, op, *_ in granted() if op == "Write")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_the_broker_refuses_the_unauthenticated_and_the_ungranted(compose: dict[str, Any]) -> None:
    env = compose["services"]["kafka"]["environment"]
    protocols = dict(
        pair.split(":") for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = [listener.split(":")[0] for listener in env["KAFKA_LISTENERS"].split(",")]
    assert {protocols[name] for name in listeners} == {"SASL_PLAINTEXT"}
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_SUPER_USERS"] == "User:admin"
    assert "SCRAM-SHA-512" in env["KAFKA_SASL_ENABLED_MECHANISMS"].split(",")


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_logs_in_as_its_own_principal_with_its_own_secret(
    compose: dict[str, Any], name: str
) -> None:
    service = compose["services"][name]
    env = service["environment"]
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert env["KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert env["KAFKA_SASL_USERNAME"] == name
    assert "KAFKA_SASL_PASSWORD" not in env  # a file, never a value in the compose file
    secret = f"kafka_password_{name.replace('-', '_')}"
    assert {"source": secret, "target": "kafka_password"} in service["secrets"]
    assert env["KAFKA_SASL_PASSWORD_FILE"] == "/run/secrets/kafka_password"
    assert compose["secrets"][secret]["file"].endswith(f"/kafka/{name}.password")


def test_setup_makes_a_scram_user_per_principal_and_grants_only_the_file(
    compose: dict[str, Any],
) -> None:
    principals = {grant[0] for grant in granted()}
    setup = compose["services"]["kafka-setup"]
    secrets = set(setup["secrets"])
    assert {f"kafka_password_{p.replace('-', '_')}" for p in principals} <= secrets
    script = (ROOT / "docker" / "kafka-setup.sh").read_text()
    assert "SCRAM-SHA-512=[iterations=8192,password=" in script
    assert (
        '--allow-principal "User:$principal" --operation "$operation" "--$resource" "$name"'
        in script
    )
    assert script.count("kafka-acls.sh") == 1  # no grant besides the file's
    for topic in ("visma.changes", "visma.notifications", "basware.results", "basware.events"):
        assert topic in script
    assert "--partitions 12" in script
