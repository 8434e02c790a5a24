"""The HTTP edge: read a webhook within limits, verify it, claim its id, republish, answer.

Checks run cheapest first and touch nothing durable until the signature holds, so a flood
of forged requests costs an HMAC each and never a database round trip. What is claimed is
what the sender signed: Basware's task id (inside the signed body) and, for Visma, the
digest of the signed body, never an unsigned header a replayer can change at will.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from faststream.kafka import KafkaBroker
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response

from mlconnector.contracts import Event, utcnow
from mlconnector.kafka import publish_events
from webhook_gateway.answers import Answer, Reason, Refusal, Refused, Source, WebhookOutcome
from webhook_gateway.dedupe import SeenStore
from webhook_gateway.metrics import WEBHOOKS_ANSWERED, WEBHOOKS_REFUSED
from webhook_gateway.notifications import (
    basware_notification,
    check_visma_body_time,
    check_visma_tenant,
    is_connection_test,
    parse_basware_task,
    parse_visma_body,
    path_tenant,
    visma_notification,
    visma_notification_id,
    visma_tenant_id,
)
from webhook_gateway.secret_source import SecretSource, TenantSecrets, valid_keys
from webhook_gateway.settings import VISMA_SCHEME, GatewaySettings
from webhook_gateway.verify import SignatureScheme, verify_signature

log = logging.getLogger(__name__)

Handler = Callable[[Request, bytes], Awaitable[Answer]]
_CONTENT_LENGTH = re.compile(r"[0-9]{1,18}")


async def read_body(request: Request, limit: int, timeout: timedelta) -> bytes:
    """The raw body, refused as soon as it is known to exceed `limit` bytes or once it has
    taken longer than `timeout` to arrive (a client trickling bytes holds a connection)."""
    declared = request.headers.get("content-length")
    if declared is not None and not _CONTENT_LENGTH.fullmatch(declared):
        raise Refused(Reason.BAD_HEADER)
    if declared is not None and int(declared) > limit:
        raise Refused(Reason.BODY_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout.total_seconds()):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Refused(Reason.BODY_TOO_LARGE)
                chunks.append(chunk)
    except TimeoutError:
        raise Refused(Reason.BODY_TIMEOUT) from None
    return b"".join(chunks)


def require_json(headers: Headers) -> None:
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise Refused(Reason.UNSUPPORTED_MEDIA_TYPE)


class WebhookReceiver:
    def __init__(
        self,
        *,
        broker: KafkaBroker,
        settings: GatewaySettings,
        secrets: SecretSource,
        seen: Callable[[], SeenStore],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._broker = broker
        self._settings = settings
        self._secrets = secrets
        self._seen = seen  # the store exists once the app has started
        self._clock = clock

    async def basware(self, request: Request) -> Response:
        return await self._answer(request, Source.BASWARE, self._accept_basware)

    async def visma(self, request: Request) -> Response:
        return await self._answer(request, Source.VISMA, self._accept_visma)

    async def _answer(self, request: Request, source: Source, handler: Handler) -> Response:
        try:
            settings = self._settings
            body = await read_body(request, settings.max_body_bytes, settings.body_timeout)
            require_json(request.headers)
            answer = await handler(request, body)
        except Refused as refused:
            # The reason and where it came from: never the secret, the signature or the body.
            log.warning(
                "%s webhook refused: %s (path %s, from %s)",
                source.value,
                refused.reason.value,
                request.url.path,
                request.client.host if request.client else "?",
            )
            WEBHOOKS_REFUSED.labels(source.value, refused.reason.value).inc()
            response = _json(Refusal(error=refused.reason), refused.status_code)
            if refused.body_unread:
                # The rest of the body would keep the connection busy: uvicorn closes it.
                response.headers["connection"] = "close"
            return response
        WEBHOOKS_ANSWERED.labels(source.value, answer.outcome.value).inc()
        return _json(answer, 200)

    async def _accept_basware(self, request: Request, body: bytes) -> Answer:
        known = await self._secrets.basware(path_tenant(request.path_params["tenant"]))
        found, _ = self._verify(request, body, known, self._settings.basware_signature)
        task = parse_basware_task(body)
        if is_connection_test(task):
            log.info("basware ConnectionTest answered for tenant %s", found.tenant)
            return Answer(outcome=WebhookOutcome.CONNECTION_TEST)
        event = basware_notification(found.tenant, task)
        return await self._republish(
            Source.BASWARE, task.task_id, event, self._settings.topics.basware_events
        )

    async def _accept_visma(self, request: Request, body: bytes) -> Answer:
        tenant_id = visma_tenant_id(request.headers)
        notification_id = visma_notification_id(request.headers)
        known = await self._secrets.visma(tenant_id)
        found, digest = self._verify(request, body, known, VISMA_SCHEME)
        parsed = parse_visma_body(body)
        check_visma_tenant(tenant_id, parsed)
        check_visma_body_time(parsed, self._clock(), self._settings.visma_body_time_window)
        event = visma_notification(found.tenant, digest, notification_id, parsed)
        if event is None:
            return Answer(outcome=WebhookOutcome.IGNORED)
        return await self._republish(
            Source.VISMA, digest, event, self._settings.topics.visma_notifications
        )

    def _verify(
        self, request: Request, body: bytes, found: TenantSecrets | None, scheme: SignatureScheme
    ) -> tuple[TenantSecrets, str]:
        """The tenant's secrets, once one of them is shown to have signed the body, and the
        digest of what was signed."""
        if found is None:
            raise Refused(Reason.UNKNOWN_TENANT)
        now = self._clock()
        keys = valid_keys(found.secrets, now, self._settings.rotation_overlap)
        return found, verify_signature(request.headers, body, keys, scheme, now)

    async def _republish(self, source: Source, dedupe_id: str, event: Event, topic: str) -> Answer:
        seen = self._seen()
        if not await seen.claim(source, event.tenant, dedupe_id):
            return Answer(outcome=WebhookOutcome.DUPLICATE, event_id=event.event_id)
        try:
            async with asyncio.timeout(self._settings.publish_timeout.total_seconds()):
                await publish_events(self._broker, topic, [event])
        except Exception as error:
            # Unclaim, so that a redelivery (Basware retries) is published after all.
            log.error("%s webhook not published: %s", source.value, type(error).__name__)
            await seen.release(source, event.tenant, dedupe_id)
            raise Refused(Reason.BROKER_UNAVAILABLE) from None
        return Answer(outcome=WebhookOutcome.ACCEPTED, event_id=event.event_id)


def _json(payload: Answer | Refusal, status_code: int) -> Response:
    return Response(
        payload.model_dump_json(exclude_none=True),
        status_code=status_code,
        media_type="application/json",
    )
