"""A local sandbox of Basware's P2P, authentication, push notification and SmartPDF APIs.

Independent of ml-connector's Basware client (it never imports mlconnector.basware), so that a
mistake in one is not mirrored by the other. See README.md for what it reproduces.
"""

from basware_sandbox.config import (
    DEMO_CLIENT,
    ApiClient,
    Environment,
    Region,
    SandboxConfig,
    VirtualHost,
    WebhookDelivery,
    WebhookSignature,
    tenant_clients,
)
from basware_sandbox.faults import FaultKind, FaultRule
from basware_sandbox.runner import BaswareSandbox, run_basware_sandbox
from basware_sandbox.state import SandboxState

__all__ = [
    "DEMO_CLIENT",
    "ApiClient",
    "BaswareSandbox",
    "Environment",
    "FaultKind",
    "FaultRule",
    "Region",
    "SandboxConfig",
    "SandboxState",
    "VirtualHost",
    "WebhookDelivery",
    "WebhookSignature",
    "run_basware_sandbox",
    "tenant_clients",
]
