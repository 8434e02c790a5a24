"""Who the client is and where Visma lives."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from mlconnector.retry import Backoff

READ_SCOPE = "vismanet_erp_service_api:read"
UPDATE_SCOPE = "vismanet_erp_service_api:update"
CREATE_SCOPE = "vismanet_erp_service_api:create"


class VismaCredentials(BaseModel):
    """One application's access to one company: one token, one quota."""

    model_config = ConfigDict(frozen=True)

    client_id: str
    client_secret: SecretStr
    # The company's tenant (not the customer's: that one yields 12027 on every call).
    tenant_id: str
    company_id: str
    # Write-back of invoice notes needs UPDATE_SCOPE; webhook feedback needs CREATE_SCOPE.
    scopes: tuple[str, ...] = (READ_SCOPE,)


class VismaEndpoints(BaseModel):
    model_config = ConfigDict(frozen=True)

    token_url: str = "https://connect.visma.com/connect/token"  # noqa: S105
    api_base_url: str = "https://api.finance.visma.net/v1/"


class VismaClientSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    timeout_seconds: float = Field(default=120, gt=0)
    backoff: Backoff = Backoff()
    # Fetch a new token this long before the old one expires.
    token_refresh_margin_seconds: float = Field(default=60, ge=0)
    # The docs put the secret in the form body; HTTP Basic works as well.
    client_auth: Literal["body", "basic"] = "body"
    user_agent: str = "ml-connector"
