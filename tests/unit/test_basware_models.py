"""The client's models use Basware's own field names, required fields and length limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from basware_reference import BASWARE_OPENAPI_DIR
from pydantic import BaseModel, ValidationError

from mlconnector.basware import models

# Client model -> P2P schema; request models must also require what Basware requires.
P2P_MODELS: list[tuple[type[BaseModel], str, bool]] = [
    (models.BaswareVendor, "VendorEntity", True),
    (models.VendorCompany, "VendorCompanyEntity", True),
    (models.VendorIdentifier, "VendorIdentifierEntity", True),
    (models.VendorAddress, "VendorAddressEntity", True),
    (models.VendorContact, "VendorContactEntity", True),
    (models.FinancialInstitution, "FinancialInstitutionEntity", True),
    (models.FinancialAccountIdentifier, "FinancialAccountIdentifierEntity", True),
    (models.VendorFinancialAccount, "VendorfinancialAccountsEntity", True),
    (models.VendorPaymentMeans, "VendorPaymentMeanEntity", True),
    (models.VendorPaymentTerms, "VendorPaymentTermEntity", True),
    (models.VendorDeliveryTerm, "VendorDeliveryTermEntity", True),
    (models.VendorOrderingDetails, "VendorOrderingDetailsEntity", True),
    (models.VendorProcessingStatus, "VendorProcessingStatusEntity", True),
    (models.VendorTag, "VendorTagEntity", True),
    (models.VendorCustomField, "VendorAdditionalFieldEntity", True),
    (models.MatchingOrder, "OrderEntity", True),
    (models.MatchingOrderLine, "OrderLineEntity", True),
    (models.GoodsReceipt, "GoodsReceiptEntity", True),
    (models.OrderLineCoding, "OrderLineCodingEntity", True),
    (models.OrderLineUser, "OrderLineUserEntity", True),
    (models.TransferResponse, "TransferResponseEntity", True),
    (models.PrebookResponse, "PrebookResponseEntity", True),
    (models.PaymentResponse, "PaymentResponseEntity", True),
    (models.AccountingDocument, "AccountingDocumentEntity", False),
    (models.InvoiceLine, "InvoiceLine", False),
    (models.CodingRow, "StandardCodingEntity", False),
    (models.DisputeInfo, "DisputeInfo", False),
    (models.InvoiceStatus, "AccountingDocumentsStatusResponseEntity", False),
    (models.RequestStatus, "ConsumerLogEventUserView", False),
    (models.RequestStatusSystem, "BaswareSystem", False),
    (models.RequestStatusItem, "ProcessedItem", False),
    (models.RequestStatusError, "ProcessedItemErrorDetail", False),
]


@pytest.fixture(scope="module")
def p2p_schemas() -> dict[str, Any]:
    spec = json.loads(
        (BASWARE_OPENAPI_DIR / "basware-p2p-openapi.json").read_text(encoding="utf-8")
    )
    schemas: dict[str, Any] = spec["components"]["schemas"]
    return schemas


def _max_length(metadata: list[Any]) -> int | None:
    """The max_length of a field's StringConstraints / MaxLen metadata."""
    for item in metadata:
        value = getattr(item, "max_length", None)
        if value is not None:
            return int(value)
    return None


@pytest.mark.parametrize(("model", "schema_name", "is_request"), P2P_MODELS)
def test_model_matches_basware_schema(
    model: type[BaseModel], schema_name: str, is_request: bool, p2p_schemas: dict[str, Any]
) -> None:
    schema = p2p_schemas[schema_name]
    properties = schema["properties"]
    for name, field in model.model_fields.items():
        alias = field.alias or name
        assert alias in properties, f"{model.__name__}.{name}: {alias} is not in {schema_name}"
        declared = properties[alias]
        metadata = [
            m
            for arg in getattr(field.annotation, "__args__", ())
            for m in getattr(arg, "__metadata__", ())
        ]
        metadata += list(field.metadata)
        # Answers are read tolerantly; what the client sends must keep Basware's limits.
        if is_request and "maxLength" in declared and declared.get("type") == "string":
            assert _max_length(metadata) == declared["maxLength"], (
                f"{schema_name}.{alias} maxLength"
            )
    if is_request:
        required = {(f.alias or n) for n, f in model.model_fields.items() if f.is_required()}
        assert required == set(schema.get("required") or []), f"{schema_name} required fields"


def test_a_record_basware_would_refuse_fails_before_sending() -> None:
    with pytest.raises(ValidationError) as caught:
        models.BaswareVendor(
            external_code="V" * 37,
            vendor_code="1",
            name="Acme",
            companies=[models.VendorCompany(company_code="BW00")],
        )
    assert caught.value.errors()[0]["loc"] == ("external_code",)


def test_payload_uses_basware_names_and_leaves_out_server_fields() -> None:
    vendor = models.BaswareVendor(
        external_code="V-1",
        vendor_code="100",
        name="Acme",
        companies=[models.VendorCompany(company_code="BW00")],
        buvid="set-by-basware",
    )
    receipt = models.GoodsReceipt(
        external_code="GR-2",
        goods_receipt_number="5",
        quantity=-1,
        reference_gr_external_code="GR-1",
    )

    assert vendor.payload() == {
        "externalCode": "V-1",
        "vendorCode": "100",
        "name": "Acme",
        "companies": [{"companyCode": "BW00"}],
    }
    assert receipt.payload()["referenceGRExternalCode"] == "GR-1"


def test_subscription_token_is_sent_but_never_shown() -> None:
    subscription = models.Subscription(
        task_type="AccountingDocuments",
        notification_webhook_url="https://hooks.example/basware",
        webhook_authentication_token="s3cret-token",
    )

    assert subscription.payload()["webhookAuthenticationToken"] == "s3cret-token"
    assert subscription.payload()["notificationWebhookURL"] == "https://hooks.example/basware"
    assert "s3cret-token" not in repr(subscription)
