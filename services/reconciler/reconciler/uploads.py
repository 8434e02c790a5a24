"""Whether each invoice Basware lacks was uploaded: the audit log's state of its record.

An invoice not found in Basware is either still on its way (not uploaded yet, rejected, failed:
the audit status says why) or uploaded and not found: the one a controller must look into.
"""

from __future__ import annotations

from mlconnector.audit.status import RecordState, RecordStatus, StatusFilter, record_statuses
from mlconnector.audit.stored import Connection as Database
from mlconnector.contracts import Entity
from reconciler.compare import EntityReport, Outcome, RecordOutcome
from reconciler.reading import ConnectionReport


def upload_note(status: RecordStatus | None) -> str:
    if status is None:
        return "not uploaded: the audit log holds no change of it"
    if status.state == RecordState.DELIVERED:
        when = f" {status.latest_result_at:%Y-%m-%d %H:%M:%S}" if status.latest_result_at else ""
        return f"uploaded (delivered{when}), not found in Basware"
    return f"not uploaded: {status.state} (mlconnector audit status)"


async def note_uploads(db: Database, report: ConnectionReport) -> ConnectionReport:
    """The report with each missing invoice saying whether it was uploaded."""
    invoices = [e for e in report.entities if e.totals.entity == Entity.SUPPLIER_INVOICE]
    missing = [
        d.entity_id
        for e in invoices
        for d in e.differences
        if d.outcome is Outcome.MISSING and d.entity_id
    ]
    if not missing or await db.fetchval("SELECT to_regclass('audit_record_status') IS NULL"):
        return report  # nothing to look up, or no audit log in this database
    statuses = await record_statuses(
        db,
        StatusFilter(
            tenant=report.tenant, entity=Entity.SUPPLIER_INVOICE, entity_ids=tuple(missing)
        ),
    )
    by_id = {s.entity_id: s for s in statuses}

    def noted(difference: RecordOutcome) -> RecordOutcome:
        if difference.outcome is not Outcome.MISSING or difference.entity_id is None:
            return difference
        return difference.model_copy(
            update={"detail": upload_note(by_id.get(difference.entity_id))}
        )

    entities = [
        EntityReport(totals=e.totals, differences=[noted(d) for d in e.differences])
        if e in invoices
        else e
        for e in report.entities
    ]
    return report.model_copy(update={"entities": entities})
