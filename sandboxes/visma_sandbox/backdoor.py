"""The test and demo back door under /_sandbox/: no auth, never part of the Visma API.

Every route is a thin HTTP face on the Python back door (`SandboxState`/`CompanyState`), so
in-process tests and out-of-process tools do the same things the same way.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic.alias_generators import to_camel
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from visma_sandbox.config import SandboxSettings
from visma_sandbox.entities import SPECS, EntityName
from visma_sandbox.faults import FaultRule
from visma_sandbox.render import render_record
from visma_sandbox.responses import json_response
from visma_sandbox.state import CompanyState, SandboxState
from visma_sandbox.store import StoredRecord
from visma_sandbox.timefmt import render_datetime
from visma_sandbox.webhooks import Notification, Subscription, WebhookFeedback


class Camel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class CompanyView(Camel):
    company_id: str
    tenant_id: str
    customer_tenant_id: str
    name: str
    country: str
    base_currency: str
    webhooks_enabled: bool
    record_counts: dict[str, int]


class CompaniesView(Camel):
    clients: list[str]
    companies: list[CompanyView]


class TouchRequest(Camel):
    keys: list[str] | None = None
    last_modified_date_time: datetime | None = None


class TouchResult(Camel):
    last_modified_date_time: str
    touched: int


class PageHookRequest(Camel):
    """After page `after_page` of the next list of `entity`: apply these changes."""

    entity: EntityName
    after_page: int = Field(ge=1)
    touch: list[str] = []
    delete: list[str] = []
    create: list[dict[str, Any]] = []
    update: dict[str, dict[str, Any]] = {}


class WebhooksSwitch(Camel):
    enabled: bool


class SubscriptionRequest(Camel):
    url: str
    secrets: list[SecretStr] = Field(min_length=1, max_length=2)
    events: list[str] | None = None
    application_id: str = "demo-visma-client"


class SecretsRequest(Camel):
    secrets: list[SecretStr] = Field(min_length=1, max_length=2)


class TokenScope(Camel):
    tenant_id: str | None = None
    client_id: str | None = None


class Count(Camel):
    count: int


class FaultAdded(Camel):
    id: int


def _json_list(items: list[BaseModel]) -> Response:
    return json_response(
        b"[" + b",".join(i.model_dump_json(by_alias=True).encode() for i in items) + b"]"
    )


def _not_found(what: str) -> Response:
    return json_response(b'{"error":"%s not found"}' % what.encode(), 404)


def _bad_request(exc: Exception) -> Response:
    return json_response(b'{"error":%s}' % _quoted(str(exc)), 400)


def _quoted(text: str) -> bytes:
    return json.dumps(text).encode()


class Backdoor:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def routes(self) -> list[BaseRoute]:
        c = "/_sandbox/companies/{company_id}"
        return [
            Route("/_sandbox/companies", self.companies, methods=["GET"]),
            Route("/_sandbox/settings", self.get_settings, methods=["GET"]),
            Route("/_sandbox/settings", self.patch_settings, methods=["PATCH"]),
            Route(c + "/records/{entity}", self.create_record, methods=["POST"]),
            Route(c + "/records/{entity}/{key:path}", self.get_record, methods=["GET"]),
            Route(c + "/records/{entity}/{key:path}", self.update_record, methods=["PATCH"]),
            Route(c + "/records/{entity}/{key:path}", self.delete_record, methods=["DELETE"]),
            Route(c + "/touch/{entity}", self.touch, methods=["POST"]),
            Route(c + "/page-hooks", self.page_hook, methods=["POST"]),
            Route(c + "/webhooks", self.switch_webhooks, methods=["PUT"]),
            Route(c + "/subscriptions", self.subscribe, methods=["POST"]),
            Route(c + "/subscriptions", self.subscriptions, methods=["GET"]),
            Route("/_sandbox/subscriptions/{id}/secrets", self.rotate, methods=["PUT"]),
            Route("/_sandbox/subscriptions/{id}", self.unsubscribe, methods=["DELETE"]),
            Route("/_sandbox/notifications", self.notifications, methods=["GET"]),
            Route("/_sandbox/notifications/{id}/resend", self.resend, methods=["POST"]),
            Route("/_sandbox/feedback", self.feedback, methods=["GET"]),
            Route("/_sandbox/faults", self.add_fault, methods=["POST"]),
            Route("/_sandbox/faults", self.faults, methods=["GET"]),
            Route("/_sandbox/faults", self.clear_faults, methods=["DELETE"]),
            Route("/_sandbox/tokens/expire", self.expire_tokens, methods=["POST"]),
            Route("/_sandbox/tokens/revoke", self.revoke_tokens, methods=["POST"]),
            Route("/_sandbox/requests", self.requests, methods=["GET"]),
            Route("/_sandbox/requests", self.clear_requests, methods=["DELETE"]),
            Route("/_sandbox/counters", self.counters, methods=["GET"]),
            Route("/_sandbox/reset", self.reset, methods=["POST"]),
        ]

    def _company(self, request: Request) -> CompanyState | None:
        return self.state.companies.get(request.path_params["company_id"])

    async def companies(self, request: Request) -> Response:
        view = CompaniesView(
            clients=list(self.state.clients),
            companies=[
                CompanyView(
                    **c.info.model_dump(),
                    record_counts={name.value: len(t) for name, t in c.tables.items()},
                )
                for c in self.state.companies.values()
            ],
        )
        return json_response(view.model_dump_json(by_alias=True).encode())

    async def get_settings(self, request: Request) -> Response:
        return json_response(self.state.settings)

    async def patch_settings(self, request: Request) -> Response:
        try:
            merged = {**self.state.settings.model_dump(), **(await request.json())}
            self.state.settings = SandboxSettings.model_validate(merged)
        except (ValidationError, ValueError) as exc:
            return _bad_request(exc)
        return json_response(self.state.settings)

    def _render(self, entity: EntityName, stored: StoredRecord) -> bytes:
        return render_record(stored, SPECS[entity], self.state.settings)

    async def create_record(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return _not_found("company")
        try:
            entity = EntityName(request.path_params["entity"].lower())
            stored = company.put(entity, await request.json())
        except (ValidationError, ValueError) as exc:
            return _bad_request(exc)
        return json_response(self._render(entity, stored), 201)

    async def get_record(self, request: Request) -> Response:
        company = self._company(request)
        entity = request.path_params["entity"].lower()
        if company is None or entity not in SPECS:
            return _not_found("company or entity")
        stored = company.get(entity, request.path_params["key"])
        if stored is None:
            return _not_found("record")
        return json_response(self._render(EntityName(entity), stored))

    async def update_record(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return _not_found("company")
        try:
            entity = EntityName(request.path_params["entity"].lower())
            stored = company.update(entity, request.path_params["key"], await request.json())
        except KeyError:
            return _not_found("record")
        except (ValidationError, ValueError) as exc:
            return _bad_request(exc)
        return json_response(self._render(entity, stored))

    async def delete_record(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return _not_found("company")
        if not company.delete(request.path_params["entity"], request.path_params["key"]):
            return _not_found("record")
        return Response(status_code=204)

    async def touch(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return _not_found("company")
        try:
            body = TouchRequest.model_validate_json(await request.body() or b"{}")
            entity = EntityName(request.path_params["entity"].lower())
            stamp = company.touch(entity, body.keys, at=body.last_modified_date_time)
        except KeyError as exc:
            return _bad_request(exc)
        except (ValidationError, ValueError) as exc:
            return _bad_request(exc)
        touched = len(company.table(entity)) if body.keys is None else len(body.keys)
        result = TouchResult(
            last_modified_date_time=render_datetime(stamp, self.state.settings.timestamp_style),
            touched=touched,
        )
        return json_response(result.model_dump_json(by_alias=True).encode())

    async def page_hook(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return _not_found("company")
        try:
            hook = PageHookRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _bad_request(exc)

        def apply(target: CompanyState) -> None:
            for record in hook.create:
                target.put(hook.entity, record)
            for key, changes in hook.update.items():
                target.update(hook.entity, key, changes)
            if hook.touch:
                target.touch(hook.entity, hook.touch)
            for key in hook.delete:
                target.delete(hook.entity, key)

        company.after_page(hook.entity, hook.after_page, apply)
        return Response(status_code=201)

    async def switch_webhooks(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return _not_found("company")
        switch = WebhooksSwitch.model_validate_json(await request.body())
        company.info.webhooks_enabled = switch.enabled
        return Response(status_code=204)

    async def subscribe(self, request: Request) -> Response:
        company = self._company(request)
        if company is None:
            return _not_found("company")
        try:
            body = SubscriptionRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            return _bad_request(exc)
        if not body.url.startswith("https://") and not self.state.settings.allow_http_webhooks:
            return _bad_request(ValueError("webhook URLs must use https"))
        subscription = self.state.webhooks.subscribe(
            Subscription(
                company_id=company.company_id,
                url=body.url,
                secrets=body.secrets,
                events=body.events,
                application_id=body.application_id,
            )
        )
        return json_response(subscription, 201)

    async def subscriptions(self, request: Request) -> Response:
        company_id = request.path_params["company_id"]
        subs = [s for s in self.state.webhooks.subscriptions.values() if s.company_id == company_id]
        return _json_list(list(subs))

    async def rotate(self, request: Request) -> Response:
        subscription = self.state.webhooks.subscriptions.get(request.path_params["id"])
        if subscription is None:
            return _not_found("subscription")
        body = SecretsRequest.model_validate_json(await request.body())
        subscription.secrets = body.secrets
        return Response(status_code=204)

    async def unsubscribe(self, request: Request) -> Response:
        removed = self.state.webhooks.subscriptions.pop(request.path_params["id"], None)
        return Response(status_code=204) if removed else _not_found("subscription")

    async def notifications(self, request: Request) -> Response:
        company_id = request.query_params.get("companyId")
        items: list[Notification] = [
            n
            for n in self.state.webhooks.notifications.values()
            if company_id is None or n.company_id == company_id
        ]
        return _json_list(list(items))

    async def resend(self, request: Request) -> Response:
        try:
            notification = self.state.webhooks.resend(request.path_params["id"])
        except KeyError:
            return _not_found("notification")
        return json_response(notification, 202)

    async def feedback(self, request: Request) -> Response:
        items: list[WebhookFeedback] = list(self.state.webhooks.feedback)
        return _json_list(list(items))

    async def add_fault(self, request: Request) -> Response:
        try:
            rule = FaultRule.model_validate_json(await request.body())
        except ValidationError as exc:
            return _bad_request(exc)
        return json_response(FaultAdded(id=self.state.add_fault(rule)), 201)

    async def faults(self, request: Request) -> Response:
        rules = self.state.faults.rules()
        body = {str(rule_id): rule.model_dump(mode="json") for rule_id, rule in rules.items()}
        return json_response(json.dumps(body).encode())

    async def clear_faults(self, request: Request) -> Response:
        self.state.faults.clear()
        return Response(status_code=204)

    async def expire_tokens(self, request: Request) -> Response:
        scope = TokenScope.model_validate_json(await request.body() or b"{}")
        ended = self.state.expire_tokens(tenant_id=scope.tenant_id, client_id=scope.client_id)
        return json_response(Count(count=ended))

    async def revoke_tokens(self, request: Request) -> Response:
        scope = TokenScope.model_validate_json(await request.body() or b"{}")
        ended = self.state.revoke_tokens(tenant_id=scope.tenant_id, client_id=scope.client_id)
        return json_response(Count(count=ended))

    async def requests(self, request: Request) -> Response:
        query = request.query_params
        entries = self.state.log.entries(
            since=int(query.get("since", "0")),
            company_id=query.get("companyId"),
            route=query.get("route"),
        )
        return _json_list(list(entries))

    async def clear_requests(self, request: Request) -> Response:
        self.state.log.clear()
        return Response(status_code=204)

    async def counters(self, request: Request) -> Response:
        return json_response(json.dumps(self.state.log.counters()).encode())

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return Response(status_code=204)
