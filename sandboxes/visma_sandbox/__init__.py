"""A local Visma.net ERP sandbox: the service API, Visma Connect, webhooks and a back door.

In-process use (tests):

    async with run_visma_sandbox(SandboxConfig()) as sandbox:
        sandbox.api_base_url   # http://127.0.0.1:<port>/v1/
        sandbox.token_url      # http://127.0.0.1:<port>/connect/token
        sandbox.state          # SandboxState: the Python back door

The sandbox never imports `mlconnector.visma`: it is a second, independent reading of
docs/visma-net.md §12, so the client's mistakes and its own do not cancel out.
"""

from visma_sandbox.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    ApiClient,
    CompanyInfo,
    SandboxConfig,
    SandboxSettings,
    SeedOptions,
    WebhookDelivery,
)
from visma_sandbox.entities import EntityName
from visma_sandbox.faults import FaultRule
from visma_sandbox.runner import RunningSandbox, run_visma_sandbox
from visma_sandbox.state import CompanyState, SandboxState
from visma_sandbox.timefmt import TimestampStyle

__all__ = [
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "ApiClient",
    "CompanyInfo",
    "CompanyState",
    "EntityName",
    "FaultRule",
    "RunningSandbox",
    "SandboxConfig",
    "SandboxSettings",
    "SandboxState",
    "SeedOptions",
    "TimestampStyle",
    "WebhookDelivery",
    "run_visma_sandbox",
]
