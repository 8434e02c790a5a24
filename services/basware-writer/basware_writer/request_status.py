"""Following requests to their final requestStatus (docs/basware-p2p.md §7): Basware never
answers within the POST's round trip, so each request is looked at a moment later, then at
doubling intervals, until it is final or the wait is over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from mlconnector.basware.models import RequestStatus

FIRST_POLL_SECONDS = 0.05
MAX_POLL_SECONDS = 1.0

ReadStatus = Callable[[str], Awaitable[RequestStatus | None]]


async def final_statuses(
    read: ReadStatus, request_ids: Sequence[str], wait: float
) -> dict[str, RequestStatus]:
    """The final requestStatus of each request that became final within `wait` seconds
    (one look when `wait` is 0)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait

    async def final(request_id: str) -> RequestStatus | None:
        interval = FIRST_POLL_SECONDS
        if wait > 0:
            await asyncio.sleep(min(interval, wait))
        while True:
            status = await read(request_id)
            if status is not None and status.is_final:
                return status
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            await asyncio.sleep(min(interval, remaining))
            interval = min(interval * 2, MAX_POLL_SECONDS)

    found = await asyncio.gather(*(final(i) for i in request_ids))
    return {i: s for i, s in zip(request_ids, found, strict=True) if s is not None}
