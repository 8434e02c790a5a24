"""Running a sandbox inside the current event loop (tests, benchmarks, the local stack)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from mlconnector.asgi import serve_asgi
from mlconnector.saved_state import AfterEachRequest
from visma_sandbox import persistence
from visma_sandbox.app import api_app, connect_app
from visma_sandbox.config import SandboxConfig
from visma_sandbox.connect import TOKEN_PATH
from visma_sandbox.state import SandboxState


@dataclass(frozen=True)
class RunningSandbox:
    state: SandboxState
    base_url: str  # the API origin, e.g. http://127.0.0.1:8081
    connect_url: str  # the Visma Connect origin
    # Where the state is saved (with a state dir), and whether it was loaded from there.
    state_file: Path | None = None
    resumed: bool = False

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
    state_dir: Path | None = None,
) -> AsyncIterator[RunningSandbox]:
    """Serves the API and Visma Connect on two loopback ports until the block exits.

    A new state is seeded from `config.seed`; a given `state` is served as it is. With a
    `state_dir`, the state saved there is served instead of a seeded one (`config.seed` is
    then ignored), and the state is saved there while serving and when the block exits.
    """
    resumed = False
    if state_dir is not None:
        if state is not None:
            raise ValueError("a state dir brings its own state: pass state or state_dir")
        state = persistence.load_state(state_dir, config)
        resumed = state is not None
    if state is None:
        state = SandboxState(config)
        state.seed()
    async with contextlib.AsyncExitStack() as stack:
        # Entered first, so the last save runs after both servers have stopped.
        state_file = (
            await stack.enter_async_context(persistence.saving(state, state_dir))
            if state_dir is not None
            else None
        )
        base_url = await stack.enter_async_context(
            serve_asgi(AfterEachRequest(api_app(state), state.changed), host=host, port=port)
        )
        connect_url = await stack.enter_async_context(
            serve_asgi(
                AfterEachRequest(connect_app(state), state.changed), host=host, port=connect_port
            )
        )
        yield RunningSandbox(
            state=state,
            base_url=base_url,
            connect_url=connect_url,
            state_file=state_file,
            resumed=resumed,
        )
