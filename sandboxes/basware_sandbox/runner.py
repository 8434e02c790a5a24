"""Running the sandbox in-process (tests) or as a process (CLI): one loopback port per host."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from basware_sandbox import persistence
from basware_sandbox.app import create_app
from basware_sandbox.config import Environment, Region, SandboxConfig, VirtualHost
from basware_sandbox.state import SandboxState
from mlconnector.asgi import serve_asgi
from mlconnector.saved_state import AfterEachRequest


@dataclass
class BaswareSandbox:
    state: SandboxState
    urls: dict[str, str]  # host name -> loopback base URL
    # Where the state is saved (with a state dir), and whether it was loaded from there.
    state_file: Path | None = None
    resumed: bool = False

    def base_url(
        self,
        region: Region | str = Region.EU,
        environment: Environment | str = Environment.PRODUCTION,
    ) -> str:
        return self.urls[self.state.host(region, environment).name]

    def host(
        self,
        region: Region | str = Region.EU,
        environment: Environment | str = Environment.PRODUCTION,
    ) -> VirtualHost:
        return self.state.host(region, environment)


@contextlib.asynccontextmanager
async def run_basware_sandbox(
    config: SandboxConfig | None = None,
    *,
    bind: str = "127.0.0.1",
    first_port: int = 0,
    state_dir: Path | None = None,
) -> AsyncIterator[BaswareSandbox]:
    """Serves every configured host on its own port (consecutive from first_port, or free ports).

    Requests are told apart by Host header when it names a configured host, else by port.
    With a `state_dir`, the state saved there is served instead of an empty one, and the
    state is saved there while serving and when the block exits.
    """
    config = config or SandboxConfig()
    loaded = persistence.load_state(state_dir, config) if state_dir is not None else None
    state = loaded or SandboxState(config)
    app = AfterEachRequest(create_app(state), state.changed)
    urls: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        # Entered first, so the last save runs after every server has stopped.
        state_file = (
            await stack.enter_async_context(persistence.saving(state, state_dir))
            if state_dir is not None
            else None
        )
        for offset, host in enumerate(state.config.hosts):
            port = first_port + offset if first_port else 0
            url = await stack.enter_async_context(serve_asgi(app, host=bind, port=port))
            state.port_hosts[int(url.rsplit(":", 1)[1])] = host
            urls[host.name] = url
        yield BaswareSandbox(
            state=state, urls=urls, state_file=state_file, resumed=loaded is not None
        )
