"""Whether a purchase order or invoice may go to Basware now, or must wait (park) behind its
key's prerequisites: pure policy, no I/O.

Per key (tenant:supplier), changes apply in Kafka order. A dependent waits while its vendor is
not accepted by Basware, while an earlier request of its key is still being processed, and
while earlier changes of its key are parked (it queues behind them).
"""

from __future__ import annotations

from collections.abc import Collection


def parking_reason(
    supplier: str,
    *,
    accepted_vendors: Collection[str],
    waiting_keys: Collection[str],
    parked_keys: Collection[str],
) -> str | None:
    """Why a dependent of `supplier` cannot be sent now; None when it can."""
    if supplier in parked_keys:
        return f"earlier changes of supplier {supplier} wait; this one queues behind them"
    if supplier not in accepted_vendors:
        return f"vendor {supplier} is not accepted by Basware yet; sent once it is"
    if supplier in waiting_keys:
        return (
            f"Basware is still processing an earlier request of supplier {supplier}; "
            "sent once it is final"
        )
    return None
