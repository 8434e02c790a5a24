""" "See if we fit": what a connection would sync, read from Visma and mapped to Basware's
payloads with the writer's own functions, sending nothing to Basware.

Per entity: how many records Visma holds (its totalCount), and the first few records with
the payload Basware would receive, or the preflight rejection naming the field.
"""

from __future__ import annotations

from pydantic import BaseModel

from mlconnector.connections import Connection
from mlconnector.contracts import MODEL_OF_ENTITY, BaswareReason, Entity, change_from_record
from mlconnector.mapping import DEFAULT_LAYOUT, CodingLayout, NotSent, Unmappable, map_change
from mlconnector.visma import VismaClient, VismaError
from mlconnector.visma.models import VismaRecord


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


def preview_record(
    record: VismaRecord, company_code: str, layout: CodingLayout = DEFAULT_LAYOUT
) -> RecordPreview:
    """One record mapped as the writer maps it (a purchase order without its receipts); a
    segment value the layout does not map previews as no payload and no rejection."""
    try:
        payload = map_change(change_from_record("preview", record), company_code, layout)
    except NotSent:
        return RecordPreview(entity_id=record.record_id, payload=None, rejections=[])
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
    client: VismaClient, entity: Entity, connection: Connection, records: int
) -> EntityPreview:
    company_code = connection.basware_company_code or ""
    try:
        async for page in client.iter_page_results(MODEL_OF_ENTITY[entity], page_size=records):
            return EntityPreview(
                entity=entity,
                visma_count=page.total_count,
                records=[
                    preview_record(r, company_code, connection.coding)
                    for r in page.records[:records]
                ],
            )
    except VismaError as error:
        return EntityPreview(entity=entity, visma_count=None, records=[], problem=str(error))
    return EntityPreview(entity=entity, visma_count=0, records=[])


async def preview(connection: Connection, records: int) -> Preview:
    """Reads the first page of each entity the connection syncs; writes nothing anywhere."""
    async with connection.visma_client() as client:
        entities = [
            await _entity_preview(client, entity, connection, records)
            for entity in connection.entities
        ]
    return Preview(
        connection=connection.name,
        company_code=connection.basware_company_code,
        entities=entities,
    )
