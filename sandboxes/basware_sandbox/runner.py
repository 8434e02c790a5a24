"""Running the sandbox in-process (tests) or as a process (CLI): one loopback port per host."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from basware_sandbox.app import create_app
from basware_sandbox.config import Environment, Region, SandboxConfig, VirtualHost
from basware_sandbox.state import SandboxState
from mlconnector.asgi import serve_asgi


@dataclass
class BaswareSandbox:
    state: SandboxState
    urls: dict[str, str]  # host name -> loopback base URL

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
) -> AsyncIterator[BaswareSandbox]:
    """Serves every configured host on its own port (consecutive from first_port, or free ports).

    Requests are told apart by Host header when it names a configured host, else by port.
    """
    state = SandboxState(config or SandboxConfig())
    app = create_app(state)
    urls: dict[str, str] = {}
    async with contextlib.AsyncExitStack() as stack:
        for offset, host in enumerate(state.config.hosts):
            port = first_port + offset if first_port else 0
            url = await stack.enter_async_context(serve_asgi(app, host=bind, port=port))
            state.port_hosts[int(url.rsplit(":", 1)[1])] = host
            urls[host.name] = url
        yield BaswareSandbox(state=state, urls=urls)
