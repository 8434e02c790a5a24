"""Running a sandbox inside the current event loop (tests, benchmarks, the local stack)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from mlconnector.asgi import serve_asgi
from visma_sandbox.app import api_app, connect_app
from visma_sandbox.config import SandboxConfig
from visma_sandbox.connect import TOKEN_PATH
from visma_sandbox.state import SandboxState


@dataclass(frozen=True)
class RunningSandbox:
    state: SandboxState
    base_url: str  # the API origin, e.g. http://127.0.0.1:8081
    connect_url: str  # the Visma Connect origin

    @property
    def api_base_url(self) -> str:
        return f"{self.base_url}/v1/"

    @property
    def token_url(self) -> str:
        return f"{self.connect_url}{TOKEN_PATH}"

    @property
    def backdoor_url(self) -> str:
        return f"{self.base_url}/_sandbox"


@contextlib.asynccontextmanager
async def run_visma_sandbox(
    config: SandboxConfig | None = None,
    *,
    state: SandboxState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    connect_port: int = 0,
) -> AsyncIterator[RunningSandbox]:
    """Serves the API and Visma Connect on two loopback ports until the block exits.

    A new state is seeded from `config.seed`; a given `state` is served as it is.
    """
    if state is None:
        state = SandboxState(config)
        state.seed()
    async with (
        serve_asgi(api_app(state), host=host, port=port) as base_url,
        serve_asgi(connect_app(state), host=host, port=connect_port) as connect_url,
    ):
        yield RunningSandbox(state=state, base_url=base_url, connect_url=connect_url)
