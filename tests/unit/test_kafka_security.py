"""KAFKA_SECURITY_PROTOCOL and KAFKA_SASL_*: every Kafka client of the services logs in with
them (issue 17, item 6), and the password shows nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest
from faststream.specification import AsyncAPI
from pydantic import ValidationError

from mlconnector.kafka import client_security, make_broker
from mlconnector.settings import KafkaSettings

PASSWORD = "scram-password-5e1f"


def test_plaintext_by_default_for_the_embedded_broker() -> None:
    settings = KafkaSettings()
    assert client_security(settings) == {}


def test_scram_from_a_password_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "kafka_password"
    secret.write_text(f"{PASSWORD}\n")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "visma-reader")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    settings = KafkaSettings()
    assert client_security(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "ssl_context": None,
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "visma-reader",
        "sasl_plain_password": PASSWORD,
    }
    assert PASSWORD not in repr(settings)


def test_the_broker_of_every_service_logs_in_with_them() -> None:
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="webhook-gateway",
        sasl_password=PASSWORD,
    )
    document = AsyncAPI(make_broker(settings, client_id="t"), schema_version="3.0.0")
    schema = document.to_specification().to_jsonable()
    assert schema["components"]["securitySchemes"] == {"scram256": {"type": "scramSha256"}}
    assert PASSWORD not in str(schema)
    options = client_security(settings)
    assert (options["security_protocol"], options["sasl_mechanism"]) == (
        "SASL_SSL",
        "SCRAM-SHA-256",
    )
    assert options["ssl_context"] is not None


def test_sasl_without_credentials_is_refused_naming_the_variables() -> None:
    with pytest.raises(ValidationError) as caught:
        KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="visma-reader")
    assert "KAFKA_SASL_PASSWORD" in str(caught.value)
