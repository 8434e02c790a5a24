"""The follow-up's handler: one decoded batch of Basware notifications, Visma invoices and
the writer's results.

A failed step is logged and the batch is acknowledged all the same: the periodic check
retries the step, so one bad invoice never blocks its partition.
"""

from __future__ import annotations

import logging

from invoice_follow_up.follow_up import STEP_ERRORS, InvoiceFollowUp
from mlconnector.contracts import BaswareNotification, DeliveryResult, SupplierInvoiceChanged
from mlconnector.kafka import DecodedBatch

log = logging.getLogger(__name__)

FollowedEvent = BaswareNotification | SupplierInvoiceChanged | DeliveryResult
# What the follow-up reads from its topics; every other event there is passed over.
FOLLOWED_EVENTS: tuple[type[FollowedEvent], ...] = (
    BaswareNotification,
    SupplierInvoiceChanged,
    DeliveryResult,
)


async def follow(follow_up: InvoiceFollowUp, batch: DecodedBatch[FollowedEvent]) -> None:
    for message in batch.unreadable:
        log.warning(
            "message %s[%d]@%d passed over: %s",
            message.topic,
            message.partition,
            message.offset,
            message.reason,
        )
    for event in batch.events:
        try:
            if isinstance(event, BaswareNotification):
                await follow_up.on_basware_notification(event)
            elif isinstance(event, DeliveryResult):
                await follow_up.on_result(event)
            else:
                await follow_up.on_visma_invoice(event)
        except (*STEP_ERRORS, LookupError, ValueError) as error:
            log.warning("invoice follow-up step failed: %s", type(error).__name__)
