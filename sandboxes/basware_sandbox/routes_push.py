"""Basware's push notification API: /v1/subscriptions and /v1/tasks."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from basware_sandbox import schemas
from basware_sandbox.http_common import (
    CONTINUATION_HEADER,
    AuthFailure,
    BadRequest,
    Caller,
    authenticate,
    page,
    parse_instant,
    read_json,
    sandbox,
)
from basware_sandbox.records import Subscription, Task
from basware_sandbox.webhooks import DEFAULT_SUB_TYPE

NOT_FOUND = {"detail": "Not Found"}


def _validation_error(message: str, code: str = "SCHEMA_VALIDATION_ERROR") -> JSONResponse:
    body = {
        "requestId": str(uuid.uuid4()),
        "hasError": True,
        "errorMessages": [{"type": "VALIDATION", "code": code, "message": message}],
    }
    return JSONResponse(body, status_code=400)


def push_guarded(
    scope: str, handler: Callable[[Request, Caller], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        caller = authenticate(request, scope)
        if isinstance(caller, AuthFailure):
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        try:
            return await handler(request, caller)
        except BadRequest as exc:
            return _validation_error(exc.message)

    return endpoint


async def subscribe(request: Request, caller: Caller) -> Response:
    state = sandbox(request)
    body = await read_json(request, state.config.max_request_bytes)
    found = schemas.problems("push", "Subscription-Input", body, array=True)
    if found:
        return _validation_error(f"{found[0].path}: {found[0].message}")
    now = state.clock.utcnow()
    saved = []
    for item in body:
        subscription = Subscription(
            task_type=item["taskType"],
            task_sub_type=item.get("taskSubType") or DEFAULT_SUB_TYPE.get(item["taskType"], "All"),
            subscription_type=item["subscriptionType"],
            url=item["notificationWebhookURL"],
            token=SecretStr(item["webhookAuthenticationToken"]),
            last_updated=now,
            auto_responder=item.get("autoResponder"),
        )
        if subscription.subscription_type == "Webhook":
            failure = await state.notifier.connection_test(subscription)
            if failure is not None:
                return _validation_error(failure, "CONNECTION_TEST_FAILED")
        caller.tenant.subscriptions = [
            s
            for s in caller.tenant.subscriptions
            if (s.task_type, s.task_sub_type)
            != (subscription.task_type, subscription.task_sub_type)
        ] + [subscription]
        saved.append(subscription.view())
    return JSONResponse(saved)


async def list_subscriptions(request: Request, caller: Caller) -> Response:
    params = request.query_params
    after = parse_instant(params.get("lastUpdated"), "lastUpdated")
    found = [
        s.view()
        for s in caller.tenant.subscriptions
        if params.get("taskType") in (None, s.task_type)
        and params.get("taskSubType") in (None, s.task_sub_type)
        and (after is None or s.last_updated > after)
    ]
    if not found:
        return JSONResponse(NOT_FOUND, status_code=404)
    return JSONResponse({"subscriptions": found})


async def delete_subscriptions(request: Request, caller: Caller) -> Response:
    params = request.query_params
    if not all(params.get(p) for p in ("lastUpdated", "taskType", "taskSubType")):
        return JSONResponse({"message": "UnprocessableEntity"}, status_code=422)
    after = parse_instant(params["lastUpdated"], "lastUpdated")
    assert after is not None

    def doomed(s: Subscription) -> bool:
        return (
            params["taskType"] in ("All", s.task_type)
            and params["taskSubType"] in ("All", s.task_sub_type)
            and s.last_updated >= after
        )

    kept = [s for s in caller.tenant.subscriptions if not doomed(s)]
    deleted = len(caller.tenant.subscriptions) - len(kept)
    caller.tenant.subscriptions = kept
    return JSONResponse({"status": "Deleted successfully", "numberOfRecordsDeleted": deleted})


async def get_task(request: Request, caller: Caller) -> Response:
    task = caller.tenant.tasks.get(request.path_params["task_id"])
    if task is None:
        return JSONResponse(NOT_FOUND, status_code=404)
    return JSONResponse({"taskStatus": [task.view()]})


async def list_tasks(request: Request, caller: Caller) -> Response:
    params = request.query_params
    after = parse_instant(params.get("lastUpdated"), "lastUpdated")

    def select() -> list[Task]:
        return [
            t
            for t in caller.tenant.tasks.values()
            if params.get("taskType") in (None, t.task_type)
            and params.get("taskStatus") in (None, t.task_status)
            and params.get("documentId") in (None, t.document_id)
            and (after is None or t.last_updated > after)
        ]

    chunk, continuation = page(request, select, 100)
    if not chunk:
        return JSONResponse(NOT_FOUND, status_code=404)
    headers = {CONTINUATION_HEADER: continuation} if continuation else {}
    return JSONResponse({"taskStatus": [t.view() for t in chunk]}, headers=headers)


ROUTES = [
    Route("/v1/subscriptions", push_guarded("subscriptions.write", subscribe), methods=["POST"]),
    Route(
        "/v1/subscriptions", push_guarded("subscriptions.read", list_subscriptions), methods=["GET"]
    ),
    Route(
        "/v1/subscriptions",
        push_guarded("subscriptions.delete", delete_subscriptions),
        methods=["DELETE"],
    ),
    Route("/v1/tasks", push_guarded("tasks.read", list_tasks), methods=["GET"]),
    Route("/v1/tasks/{task_id}", push_guarded("tasks.read", get_task), methods=["GET"]),
]
