"""What the master-data tests look at: the seeded company's reference records, the POSTs
Basware took, and the codes it holds."""

from __future__ import annotations

from sandbox_support import BASWARE_CLIENT, VISMA_COMPANY
from writer_support import records

from basware_sandbox import BaswareSandbox, Region
from basware_sandbox.records import RequestRecord
from mlconnector.contracts import Entity
from visma_sandbox.runner import RunningSandbox

MASTER_APIS = ("paymentTerms", "taxCodes", "accounts", "costCenters", "projects")
RecordRef = tuple[str, Entity, str]


def reference_records(visma: RunningSandbox) -> set[RecordRef]:
    """(tenant, entity, id) of the reference data the seeded company holds."""
    company = visma.state.company(VISMA_COMPANY)
    found: set[RecordRef] = {
        (VISMA_COMPANY, entity, company.table(name).spec.key_text(stored.key))
        for entity, name in (
            (Entity.CREDIT_TERM, "creditterm"),
            (Entity.VAT_CATEGORY, "vatcategory"),
            (Entity.ACCOUNT, "account"),
        )
        for stored in company.table(name)
    }
    for stored in company.table("dimension"):
        dimension = stored.record.model_dump()
        for segment in dimension["segments"]:
            for value in segment["segment_values"]:
                value_id = f"{dimension['id']}/{segment['segment_id']}/{value['value_id']}"
                found.add((VISMA_COMPANY, Entity.DIMENSION_VALUE, value_id))
    return found


def basware_requests(basware: BaswareSandbox) -> list[RequestRecord]:
    """Every POST Basware took for the test's customer, in the order it took them."""
    tenant = basware.state.tenant_of(Region.EU, BASWARE_CLIENT.bwcid)
    return sorted(tenant.requests.values(), key=lambda r: r.received_at)


def codes(basware: BaswareSandbox, api: str, field: str) -> set[str]:
    return {str(r[field]) for r in records(basware, api)}
