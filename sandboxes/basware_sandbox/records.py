"""What the sandbox stores: inbound records, requestStatus entries, invoices, subscriptions, tasks.

Inbound records keep the JSON document as posted (already checked against Basware's schema);
the business rules read the few fields they need through small typed views.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from mlconnector.saved_state import SavedSecretStr

# Fields the server sets; they take no part in "is this the same record as before".
SERVER_FIELDS = frozenset({"lastUpdated", "buvid"})


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def content_hash(body: dict[str, Any]) -> str:
    material = {k: v for k, v in body.items() if k not in SERVER_FIELDS}
    return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()


class StoredRecord(BaseModel):
    external_code: str
    body: dict[str, Any]
    content_hash: str
    received_at: float
    request_id: str


class ItemError(BaseModel):
    type: str = "Error"
    category: str = "DataValidation"
    message: str


class ItemStatus(StrEnum):
    IN_PROGRESS = "InProgress"
    NOT_PROCESSED = "NotProcessed"
    SUCCESS = "Success"
    ERROR = "Error"
    RECORD_EXPIRED = "RecordExpired"


class RequestItem(BaseModel):
    external_code: str
    parent_external_code: str | None = None
    status: ItemStatus = ItemStatus.IN_PROGRESS
    errors: list[ItemError] = Field(default_factory=list)
    # The version the target system applies when the item succeeds (None for responses to invoices).
    record: StoredRecord | None = None


class RequestRecord(BaseModel):
    request_id: str
    api: str | None  # entity API path, None for invoice responses
    entity_type: str
    operation_type: str
    changed_by: str
    received_at: float
    last_updated: datetime
    status: str = "InProgress"
    acknowledged: bool = False
    items: list[RequestItem]

    def view(self, *, ignore_successful_items: bool = False) -> dict[str, Any]:
        """The ConsumerLogEventUserView of Basware's P2P file."""
        items = [
            {
                "externalCode": item.external_code,
                "parentExternalCode": item.parent_external_code,
                "status": item.status.value,
                "errors": [e.model_dump() for e in item.errors],
            }
            for item in self.items
            if not (ignore_successful_items and item.status is ItemStatus.SUCCESS)
        ]
        return {
            "requestId": self.request_id,
            "entityType": self.entity_type,
            "entityVersion": f"{self.entity_type}V1",
            "requestStatus": self.status,
            "changedBy": self.changed_by,
            "operationType": self.operation_type,
            "lastUpdated": iso(self.last_updated),
            "systems": [
                {
                    "system": "P2P",
                    "module": "IA",
                    "systemStatus": self.status,
                    "lastUpdated": iso(self.last_updated),
                    "items": items,
                }
            ],
        }


class ApiModel(BaseModel):
    """A record served as Basware JSON: camelCase names, absent values left out."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class InvoiceLine(ApiModel):
    external_code: str | None = None
    row_index: int | None = None
    product_code: str | None = None
    product_name: str | None = None
    quantity: float | None = None
    quantity_unit: str | None = None
    order_number: str | None = None
    order_row_number: str | None = None
    net_price: float | None = None
    net_sum: float | None = None
    tax_percent: float | None = None
    tax_sum: float | None = None
    gross_sum: float | None = None


class CodingRow(ApiModel):
    external_code: str
    row_index: int
    account_code: str | None = None
    cost_center_code: str | None = None
    project_code: str | None = None
    tax_code: str | None = None
    net_total: float | None = None
    order_number: str | None = None
    order_line_number: str | None = None
    ordered_quantity: float | None = None
    received_quantity: float | None = None
    matched_quantity: float | None = None
    dim_code1: str | None = None
    dim_code2: str | None = None
    dim_code3: str | None = None
    dim_code4: str | None = None
    dim_code5: str | None = None
    dim_code6: str | None = None
    dim_code7: str | None = None
    dim_code8: str | None = None
    dim_code9: str | None = None
    dim_code10: str | None = None


class DisputeInfo(ApiModel):
    is_disputed: bool
    dispute_reason: str | None = None
    dispute_date: datetime | None = None


class Workflow(StrEnum):
    """Where an uploaded invoice is inside P2P (the API shows `status` and processingStatus)."""

    IN_APPROVAL = "InApproval"
    MATCHING_EXCEPTION = "MatchingException"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    PAID = "Paid"


class AccountingDocument(ApiModel):
    """The AccountingDocumentEntity fields the sandbox fills in."""

    invoice_id: str
    bumid: str | None = None
    invoice_number: str | None = None
    invoice_date: datetime | None = None
    due_date: datetime | None = None
    company_code: str
    supplier_code: str
    supplier_name: str | None = None
    currency_code: str
    net_sum: float | None = None
    tax_sum1: float | None = None
    gross_sum: float | None = None
    processing_status: str
    payment_block: bool = False
    voucher_number1: str | None = None
    voucher_number2: str | None = None
    removal_reason: str | None = None
    order_numbers: list[str] | None = None
    dispute_info: DisputeInfo | None = None
    invoice_lines: list[InvoiceLine] | None = None
    coding_rows: list[CodingRow] | None = None
    prebook_responses: list[dict[str, Any]] | None = None
    transfer_responses: list[dict[str, Any]] | None = None
    payment_responses: list[dict[str, Any]] | None = None
    last_updated: datetime


class StoredDocument(BaseModel):
    document: AccountingDocument
    workflow: Workflow
    exceptions: list[str] = Field(default_factory=list)


class Upload(BaseModel):
    # The PDF as base64 in JSON (a saved state); bytes everywhere else.
    model_config = ConfigDict(ser_json_bytes="base64", val_json_bytes="base64")

    bum_id: str
    receiving_email: str
    notification_email: str
    signature: str
    expires_at: float
    received: bool = False
    pdf: bytes = Field(default=b"", repr=False)
    outcome: str | None = None
    invoice_id: str | None = None


class Export(BaseModel):
    """A GET answer parked in the simulated S3 bucket that a 302 points at."""

    body: bytes
    continuation: str | None
    signature: str
    expires_at: float


class Subscription(BaseModel):
    task_type: str
    task_sub_type: str
    subscription_type: str
    url: str
    token: SavedSecretStr
    last_updated: datetime
    auto_responder: dict[str, Any] | None = None

    def view(self) -> dict[str, Any]:
        """Subscription-Output; Basware's file echoes the signing token, so the sandbox does too."""
        return {
            "taskType": self.task_type,
            "taskSubType": self.task_sub_type,
            "subscriptionType": self.subscription_type,
            "notificationWebhookURL": self.url,
            "webhookAuthenticationToken": self.token.get_secret_value(),
            "lastUpdated": iso(self.last_updated),
            "autoResponder": self.auto_responder,
        }


class TaskHistory(BaseModel):
    action: str
    timeStamp: str
    messages: list[str] = Field(default_factory=list)


class Task(BaseModel):
    task_id: str
    task_status: str = "New"
    task_type: str
    task_sub_type: str
    document_id: str
    expiration_time: datetime
    last_updated: datetime
    history: list[TaskHistory] = Field(default_factory=list)

    def notification(self) -> dict[str, Any]:
        return {
            "taskId": self.task_id,
            "taskStatus": self.task_status,
            "taskType": self.task_type,
            "taskSubType": self.task_sub_type,
            "documentId": self.document_id,
            "expirationTime": iso(self.expiration_time),
        }

    def view(self) -> dict[str, Any]:
        return {
            **self.notification(),
            "lastUpdated": iso(self.last_updated),
            "taskHistory": [h.model_dump() for h in self.history],
        }


class WebhookAttempt(BaseModel):
    task_id: str
    task_type: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None = None
    at: float


class RequestLogEntry(BaseModel):
    """One request the sandbox answered; never a header value of the request, a body or a
    query string. `at` is when it was answered, `received_at` when it arrived (before any
    injected delay), both on the sandbox clock; `retry_after` is the Retry-After the answer
    gave, as sent (the window in which that host wants no further request)."""

    seq: int
    at: float
    received_at: float | None = None
    method: str
    host: str
    region: str
    environment: str
    path: str
    route: str
    status: int
    retry_after: str | None = None
    authorization: bool
    auth_scheme: str | None
    duration_ms: float
