"""The console's pure parts: who may do what, lockout, cross-site requests, the forms'
conversions, the preview's mapping and the charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from console.access import Role, allows, cross_site, locked_out, lockout_after, tokens_match
from console.charts import Chart, ChartPoint, ChartSeries, per_minute, svg
from console.connection_views import (
    ConnectionForm,
    ScheduleForm,
    connection_of,
    connection_view,
    host_table,
    schedule_of,
)
from console.passwords import WeakPassword, hash_password, verify_password
from console.preview import preview_record
from mlconnector.basware import BaswareRegion
from mlconnector.connections import ALL_ENTITIES, ConnectionInvalid
from mlconnector.contracts import Entity
from mlconnector.schedule import CronSchedule, IntervalSchedule
from mlconnector.visma.models import VismaSupplier

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def supplier(name: str = "Nordlys Elektro AS") -> VismaSupplier:
    return VismaSupplier.model_validate(
        {
            "number": "70001",
            "name": name,
            "status": "Active",
            "currencyId": "NOK",
            "lastModifiedDateTime": "2026-10-14T09:21:07.31",
        }
    )


def test_roles_are_ordered() -> None:
    assert allows(Role.ADMIN, Role.OPERATOR)
    assert allows(Role.OPERATOR, Role.OPERATOR)
    assert not allows(Role.VIEWER, Role.OPERATOR)
    assert not allows(Role.OPERATOR, Role.ADMIN)


def test_the_allowed_failure_locks_the_user_out_for_the_lockout_time() -> None:
    assert lockout_after(4, NOW, allowed=5, minutes=15) is None
    until = lockout_after(5, NOW, allowed=5, minutes=15)
    assert until == NOW + timedelta(minutes=15)
    assert locked_out(until, NOW + timedelta(minutes=14))
    assert not locked_out(until, NOW + timedelta(minutes=15))
    assert not locked_out(None, NOW)


@pytest.mark.parametrize(
    ("origin", "fetch_site", "expected"),
    [
        (None, None, False),
        ("http://127.0.0.1:8700", "same-origin", False),
        ("http://evil.example", None, True),
        ("null", None, True),
        (None, "cross-site", True),
    ],
)
def test_a_write_from_another_site_is_told_apart(
    origin: str | None, fetch_site: str | None, expected: bool
) -> None:
    assert cross_site(origin, fetch_site, "127.0.0.1:8700") is expected


def test_csrf_tokens_must_match() -> None:
    assert tokens_match("abc", "abc")
    assert not tokens_match("abc", "abd")
    assert not tokens_match("abc", None)


def test_passwords_are_argon2id_and_short_ones_refused() -> None:
    hashed = hash_password(SecretStr("long enough password"))
    assert hashed.startswith("$argon2id$")
    assert "long enough" not in hashed
    assert verify_password(hashed, SecretStr("long enough password"))
    assert not verify_password(hashed, SecretStr("another password"))
    assert not verify_password(None, SecretStr("long enough password"))
    with pytest.raises(WeakPassword):
        hash_password(SecretStr("short"))


def form(**changes: object) -> ConnectionForm:
    values: dict[str, object] = {
        "name": "acme",
        "visma_client_id": "vc",
        "visma_client_secret": "visma-secret-value",
        "visma_tenant_id": "tenant",
        "visma_company_id": "1234567",
        "basware_client_id": "bc",
        "basware_client_secret": "basware-secret-value",
        "visma_webhook_secret": "",
        "basware_company_code": "BW00",
    }
    return ConnectionForm.model_validate(values | changes)


def test_a_form_becomes_a_connection_whose_view_names_secrets_but_holds_none() -> None:
    connection = connection_of(form(), BaswareRegion.EU, None)
    assert connection.visma_webhook_secret is None  # an empty field is no secret
    assert connection.entities == ALL_ENTITIES
    view = connection_view(connection)
    assert view.secrets_set == ["basware.client_secret", "visma.client_secret"]
    assert "secret-value" not in view.model_dump_json()


def test_a_form_without_entities_or_with_a_bad_name_or_host_table_is_refused() -> None:
    with pytest.raises(ConnectionInvalid, match="at least one entity"):
        connection_of(form(entities=[]), BaswareRegion.EU, None)
    with pytest.raises(ConnectionInvalid, match="name: String should match pattern"):
        connection_of(form(name="no spaces allowed"), BaswareRegion.EU, None)
    with pytest.raises(ConnectionInvalid, match="the Basware host table"):
        host_table(form(basware_hosts='{"hosts": {}}'))


def test_a_schedule_form_names_one_schedule() -> None:
    assert schedule_of(ScheduleForm(entity=Entity.SUPPLIER, every="5m")) == IntervalSchedule(
        seconds=300
    )
    assert schedule_of(ScheduleForm(entity=Entity.SUPPLIER, cron="*/5 * * * *")) == CronSchedule(
        expression="*/5 * * * *"
    )
    assert schedule_of(ScheduleForm(entity=Entity.SUPPLIER, default=True)) is None
    for wrong in (
        ScheduleForm(entity=Entity.SUPPLIER),
        ScheduleForm(entity=Entity.SUPPLIER, every="5m", default=True),
        ScheduleForm(entity=Entity.SUPPLIER, every="five minutes"),
        ScheduleForm(entity=Entity.SUPPLIER, cron="every day"),
    ):
        with pytest.raises(ValueError, match=r"exactly one|not an interval|not a cron"):
            schedule_of(wrong)


def test_the_preview_maps_a_record_or_names_the_field_basware_would_refuse() -> None:
    fits = preview_record(supplier(), "BW00")
    assert fits.rejections == []
    assert fits.payload is not None
    assert "Nordlys Elektro AS" in fits.payload
    refused = preview_record(supplier(name="N" * 251), "BW00")
    assert refused.payload is None
    assert [r.field for r in refused.rejections] == ["name"]


def test_per_minute_rates_come_from_a_running_total() -> None:
    points = [
        ChartPoint(at=NOW, value=0),
        ChartPoint(at=NOW + timedelta(minutes=1), value=60),
        ChartPoint(at=NOW + timedelta(minutes=3), value=100),
    ]
    assert [p.value for p in per_minute(points)] == [60.0, 20.0]


def test_a_chart_escapes_its_labels() -> None:
    chart = Chart(
        title="t",
        unit="records",
        series=[ChartSeries(label="<script>", points=[ChartPoint(at=NOW, value=3)])],
    )
    drawn = svg(chart, NOW - timedelta(hours=1), NOW)
    assert "<script>" not in drawn
    assert "&lt;script&gt;" in drawn
    assert "<polyline" in drawn
