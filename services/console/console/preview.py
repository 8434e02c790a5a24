""" "See if we fit": what a connection would sync, read from Visma and mapped to Basware's
payloads with the writer's own functions, sending nothing to Basware.

Per entity: how many records Visma holds (its totalCount), and the first few records with
the payload Basware would receive, or the preflight rejection naming the field.
"""

from __future__ import annotations

from pydantic import BaseModel

from mlconnector.connections import Connection
from mlconnector.contracts import BaswareReason, Entity
from mlconnector.mapping import (
    Unmappable,
    invoice_from_supplier_invoice,
    order_from_purchase_order,
    vendor_from_supplier,
)
from mlconnector.visma import VismaClient, VismaError
from mlconnector.visma.models import (
    VismaPurchaseOrder,
    VismaRecord,
    VismaSupplier,
    VismaSupplierInvoice,
)

MODELS: dict[Entity, type[VismaRecord]] = {
    Entity.SUPPLIER: VismaSupplier,
    Entity.PURCHASE_ORDER: VismaPurchaseOrder,
    Entity.SUPPLIER_INVOICE: VismaSupplierInvoice,
}


class RecordPreview(BaseModel):
    entity_id: str
    # The payload as Basware would receive it (JSON), when the record maps.
    payload: str | None
    rejections: list[BaswareReason]


class EntityPreview(BaseModel):
    entity: Entity
    visma_count: int | None
    records: list[RecordPreview]
    problem: str | None = None


class Preview(BaseModel):
    connection: str
    company_code: str | None
    entities: list[EntityPreview]


def preview_record(record: VismaRecord, company_code: str) -> RecordPreview:
    """One record mapped as the writer maps it (a purchase order without its receipts)."""
    try:
        if isinstance(record, VismaSupplier):
            payload: BaseModel = vendor_from_supplier(record, company_code)
        elif isinstance(record, VismaPurchaseOrder):
            payload = order_from_purchase_order(record, (), company_code)
        elif isinstance(record, VismaSupplierInvoice):
            payload = invoice_from_supplier_invoice(record, company_code)
        else:
            raise TypeError(f"no mapping for {type(record).__name__}")
    except Unmappable as refused:
        return RecordPreview(
            entity_id=record.record_id, payload=None, rejections=list(refused.reasons)
        )
    return RecordPreview(
        entity_id=record.record_id,
        payload=payload.model_dump_json(by_alias=True, exclude_none=True, indent=2),
        rejections=[],
    )


async def _entity_preview(
    client: VismaClient, entity: Entity, company_code: str, records: int
) -> EntityPreview:
    try:
        async for page in client.iter_page_results(MODELS[entity], page_size=records):
            return EntityPreview(
                entity=entity,
                visma_count=page.total_count,
                records=[preview_record(r, company_code) for r in page.records],
            )
    except VismaError as error:
        return EntityPreview(entity=entity, visma_count=None, records=[], problem=str(error))
    return EntityPreview(entity=entity, visma_count=0, records=[])


async def preview(connection: Connection, records: int) -> Preview:
    """Reads the first page of each entity the connection syncs; writes nothing anywhere."""
    company_code = connection.basware_company_code or ""
    async with connection.visma_client() as client:
        entities = [
            await _entity_preview(client, entity, company_code, records)
            for entity in connection.entities
        ]
    return Preview(
        connection=connection.name,
        company_code=connection.basware_company_code,
        entities=entities,
    )
