"""visma-reader's handler: a verified Visma notification wakes its tenant's poller at once
(the scheduled poll stays the safety net, docs/visma-net.md §11); a tenant polled by another
reader is woken through that reader (handoff.py)."""

from __future__ import annotations

import logging

from mlconnector.contracts import VismaNotification
from visma_reader.scheduler import PollScheduler

log = logging.getLogger(__name__)


async def wake_poller(scheduler: PollScheduler, notification: VismaNotification) -> None:
    if not await scheduler.wake(notification.tenant, notification.entity):
        log.warning("notification for unknown tenant %s ignored", notification.tenant)
