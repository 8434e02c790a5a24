"""The local stack's fixed ports on 127.0.0.1, each moved by its own MLC_PORT_* variable.

Fixed, so that a bookmark, a webhook URL given to a sandbox and a Prometheus scrape target stay
valid across restarts. They sit below the kernel's ephemeral range (32768 and up on Linux), so
outgoing connections never take them.
"""

from __future__ import annotations

import socket

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The Basware sandbox serves EU/US/AU/CA, production and test, on consecutive ports.
BASWARE_SANDBOX_PORTS = 8
# The Visma sandbox serves its API and, on the next port, Visma Connect.
VISMA_SANDBOX_PORTS = 2


class StackPorts(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MLC_PORT_", extra="ignore")

    console: int = Field(default=8700, ge=1, le=65535)
    gateway: int = Field(default=8701, ge=1, le=65535)
    visma_reader: int = Field(default=8702, ge=1, le=65535)
    basware_writer: int = Field(default=8703, ge=1, le=65535)
    audit_store: int = Field(default=8704, ge=1, le=65535)
    invoice_follow_up: int = Field(default=8705, ge=1, le=65535)
    reconciler: int = Field(default=8706, ge=1, le=65535)
    # The second, third, ... basware-writer of `run --writers N`.
    more_writers: int = Field(default=8711, ge=1, le=65535)
    broker: int = Field(default=8709, ge=1, le=65535)
    visma_sandbox: int = Field(default=8720, ge=1, le=65535)
    basware_sandbox: int = Field(default=8730, ge=1, le=65535)

    def service(self, name: str, instance: int = 1) -> int:
        """The health and metrics port of a service process (the gateway's webhooks too)."""
        if name == "basware-writer" and instance > 1:
            return self.more_writers + instance - 2
        return {
            "webhook-gateway": self.gateway,
            "visma-reader": self.visma_reader,
            "basware-writer": self.basware_writer,
            "audit-store": self.audit_store,
            "invoice-follow-up": self.invoice_follow_up,
            "reconciler": self.reconciler,
            "console": self.console,
        }[name]


class PortClaim(BaseModel):
    """One port the stack is about to listen on, and the variable that moves it."""

    port: int
    owner: str
    setting: str


class PortInUse(OSError):
    """A port the stack needs is taken; the message names the variable that moves it."""


def check_free(claims: list[PortClaim], host: str = "127.0.0.1") -> None:
    """Fails before anything starts, with one line per taken port."""
    taken: list[str] = []
    for claim in claims:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, claim.port))
            except OSError:
                taken.append(
                    f"port {claim.port} ({claim.owner}) is in use: stop what listens there "
                    f"or set {claim.setting}"
                )
    if taken:
        raise PortInUse("; ".join(taken))
