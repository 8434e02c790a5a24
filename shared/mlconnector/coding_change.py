"""A connection's coding layout changed: checked against its Visma company, stored, and what
the new layout recodes sent again (docs/basware-p2p.md §10.10).

The one home of the change, for `mlconnector connections coding` and the console's
connection page alike: both check, store and re-derive exactly the same way.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from mlconnector.audit.replay import RecodedRecords, ReplayPublisher, replay
from mlconnector.audit.stored import Connection as AuditConnection
from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import Connection
from mlconnector.mapping import CodingLayout
from mlconnector.visma.errors import VismaError


class CodingRefused(ValueError):
    """The layout does not fit the connection's Visma company (or Visma could not say)."""


class CodingChange(BaseModel):
    """The connection before and after, and how many records were sent again."""

    model_config = ConfigDict(frozen=True)

    before: Connection
    after: Connection
    resent: int = 0

    @property
    def changed(self) -> bool:
        return self.before.coding != self.after.coding

    def summary(self) -> str:
        after, before = self.after.coding.describe(), self.before.coding.describe()
        if not self.changed:
            return f"{self.after.name}: coding {after} (unchanged)"
        return f"{self.after.name}: coding {after} (was {before})"


async def check_layout(connection: Connection, layout: CodingLayout) -> None:
    """Raises CodingRefused when the layout names a segment the Visma dimension lacks."""
    try:
        async with connection.visma_client() as visma:
            known = await visma.dimension_segments(layout.dimension_id)
    except VismaError as error:
        raise CodingRefused(
            f"dimension {layout.dimension_id} of {connection.name} could not be read from "
            f"Visma: {error}"
        ) from None
    if unknown := layout.unknown_segments(known):
        raise CodingRefused(
            f"dimension {layout.dimension_id} of {connection.name} has no segment "
            f"{', '.join(map(str, unknown))} (it has {', '.join(map(str, known))})"
        )


async def set_coding(store: ConnectionStore, name: str, layout: CodingLayout) -> CodingChange:
    """Checks the layout against Visma, then stores it with the connection."""
    await check_layout(await store.get(name), layout)
    before, after = await store.update_coding(name, layout)
    return CodingChange(before=before, after=after)


async def rederive(
    change: CodingChange, log: AuditConnection, publisher: ReplayPublisher
) -> CodingChange:
    """Sends again the latest change of every record whose Basware payload the new layout
    alters (mapping.recoded): a forced replay, since what was delivered must go again, with
    the new layout as its reason in the log. Nothing is sent when the layout is the same."""
    if not change.changed:
        return change
    after = change.after
    selection = RecodedRecords(
        tenant=after.tenant,
        company_code=after.basware_company_code or "",
        old=change.before.coding,
        new=after.coding,
    )
    why = f"coding of {after.name} changed to {after.coding.describe()}"
    report = await replay(log, selection, publisher, force=True, force_reason=why)
    resent = sum(1 for item in report.items if item.replay_event_id)
    return change.model_copy(update={"resent": resent})
