"""INVOICE_FOLLOW_UP_*: what the follow-up reads, where it publishes, how often it checks.

The follow-up ran inside webhook-gateway before it became a service of its own; the
gateway's MLC_GATEWAY_INVOICE_* names are still read, so an existing deployment keeps its
settings (README, Configuration).
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import AliasChoices, BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from mlconnector.topics import Topic


def _named(field: str, gateway_name: str) -> AliasChoices:
    """The field's own INVOICE_FOLLOW_UP_* variable, then the gateway's old one."""
    return AliasChoices(f"INVOICE_FOLLOW_UP_{field.upper()}", gateway_name, field)


class FollowUpTopics(BaseModel):
    model_config = ConfigDict(frozen=True)

    # Basware's task notifications (republished by the gateway) are read here...
    basware_events: str = Topic.BASWARE_EVENTS.value
    # ...and the supplier invoices visma-reader publishes here...
    visma_changes: str = Topic.VISMA_CHANGES.value
    # ...and the writer's results (an invoice changed in Visma after its upload) here...
    basware_results: str = Topic.BASWARE_RESULTS.value
    # ...and InvoiceStatusChanged is published here: events that come from Basware.
    invoice_status: str = Topic.BASWARE_EVENTS.value


class FollowUpSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="INVOICE_FOLLOW_UP_", extra="ignore", populate_by_name=True
    )

    topics: FollowUpTopics = Field(default_factory=FollowUpTopics)
    group: str = Field(
        default="invoice-follow-up",
        validation_alias=_named("group", "MLC_GATEWAY_INVOICE_LOOP_GROUP"),
    )
    # Messages per batch: one offset commit each (most of visma.changes is passed over).
    batch_max_records: int = Field(default=500, ge=1)
    check_interval: timedelta = Field(
        default=timedelta(minutes=5),
        validation_alias=_named("check_interval", "MLC_GATEWAY_INVOICE_CHECK_INTERVAL"),
    )
    # The periodic check looks invoices up in Basware (GET /v1/accountingDocuments/status)
    # at most this many a second per tenant, however many are under way.
    lookups_per_second: float = Field(default=5.0, gt=0)
    # A transfer or payment step claimed longer ago than this was abandoned by a crash.
    claim_timeout: timedelta = Field(
        default=timedelta(minutes=5),
        validation_alias=_named("claim_timeout", "MLC_GATEWAY_INVOICE_CLAIM_TIMEOUT"),
    )
