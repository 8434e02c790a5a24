"""Topic names and the message key rule (docs/architecture.md §3)."""

from __future__ import annotations

from enum import StrEnum


class Topic(StrEnum):
    VISMA_CHANGES = "visma.changes"
    VISMA_NOTIFICATIONS = "visma.notifications"
    BASWARE_RESULTS = "basware.results"
    BASWARE_EVENTS = "basware.events"
    # What operators did (console and CLI), so that the audit log names who did it.
    OPERATOR_ACTIONS = "operator.actions"


ALL_TOPICS: tuple[Topic, ...] = tuple(Topic)


def message_key(tenant: str, supplier_number: str) -> str:
    """`tenant:supplier-number`: one supplier's vendor, POs and invoices share a partition."""
    return f"{tenant}:{supplier_number}"
