"""`mlconnector run`: the whole pipeline on embedded defaults, with live progress.

Starts the local stack (broker and database), the Visma and Basware sandboxes seeded with
demo data, and the four services as separate processes. Ctrl-C stops everything. With
--sync-once it exits 0 once every seeded record is delivered, or 1 with the reason when
that has not happened within --timeout seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

import httpx
from pydantic import BaseModel, Field

from mlconnector.asgi import listening_ports
from mlconnector.contracts import Entity
from mlconnector_cli.processes import ManagedProcess
from mlconnector_cli.progress import ProgressTracker
from mlconnector_cli.stack import Stack, local_stack

WRITER = "basware-writer"
SERVICES = ("audit-store", WRITER, "webhook-gateway", "visma-reader")
# The demo connection: the sandboxes' seeded company 1 and their demo API clients.
DEMO_VISMA_COMPANY_ID = "1000001"
DEMO_VISMA_TENANT_ID = "e5d8ab8d-e0ea-5e22-8ba6-92bc8b43aa63"
DEMO_VISMA_WEBHOOK_SECRET = "demo-visma-webhook-secret"  # noqa: S105 (published demo value)
DEMO_BASWARE_COMPANY_CODE = "BW00"
# The Basware sandbox serves EU/US/AU/CA, production and test, on consecutive ports.
BASWARE_SANDBOX_PORTS = 8


class RunOptions(BaseModel):
    sync_once: bool = False
    timeout: float = 300.0
    suppliers: int = 300
    purchase_orders: int = 600
    invoices: int = 600
    poll_interval: float = 5.0
    # basware-writer instances in one consumer group: they split the partitions.
    writers: int = Field(default=1, ge=1)
    log_dir: Path = Path(".mlconnector/logs")


class Sandboxes(BaseModel):
    visma_url: str
    visma_connect_url: str
    basware_url: str
    gateway_url: str


def local_endpoints() -> tuple[dict[str, int], Sandboxes]:
    """Free loopback ports for the sandboxes and the gateway, and their URLs."""
    ports = {
        "visma": listening_ports(2),  # the API, and Visma Connect on the next port
        "basware": listening_ports(BASWARE_SANDBOX_PORTS),
        "gateway": listening_ports(),
    }
    urls = Sandboxes(
        visma_url=f"http://127.0.0.1:{ports['visma']}",
        visma_connect_url=f"http://127.0.0.1:{ports['visma'] + 1}",
        basware_url=f"http://127.0.0.1:{ports['basware']}",
        gateway_url=f"http://127.0.0.1:{ports['gateway']}",
    )
    return ports, urls


def sandbox_processes(
    options: RunOptions, urls: Sandboxes, ports: dict[str, int]
) -> list[ManagedProcess]:
    bin_dir = Path(sys.executable).parent
    return [
        ManagedProcess(
            "visma-sandbox",
            [
                str(bin_dir / "visma-sandbox"),
                "--port",
                str(ports["visma"]),
                "--suppliers",
                str(options.suppliers),
                "--purchase-orders",
                str(options.purchase_orders),
                "--invoices",
                str(options.invoices),
                "--companies",
                "1",
                "--webhook-secret",
                DEMO_VISMA_WEBHOOK_SECRET,
                "--webhook-url",
                f"{urls.gateway_url}/webhooks/visma",
            ],
            env={},
            log_dir=options.log_dir,
        ),
        ManagedProcess(
            "basware-sandbox",
            [str(bin_dir / "basware-sandbox"), "--port", str(ports["basware"])],
            env={},
            log_dir=options.log_dir,
        ),
    ]


def demo_connection_env(urls: Sandboxes) -> dict[str, str]:
    """The demo connection, given to the services through the environment."""
    return {
        "VISMA_CLIENT_ID": "demo-visma-client",
        "VISMA_CLIENT_SECRET": "demo-visma-secret",
        "VISMA_TENANT_ID": DEMO_VISMA_TENANT_ID,
        "VISMA_COMPANY_ID": DEMO_VISMA_COMPANY_ID,
        "VISMA_TOKEN_URL": f"{urls.visma_connect_url}/connect/token",
        "VISMA_API_BASE_URL": f"{urls.visma_url}/v1/",
        "VISMA_WEBHOOK_SECRET": DEMO_VISMA_WEBHOOK_SECRET,
        "BASWARE_CLIENT_ID": "demo-basware-client",
        "BASWARE_CLIENT_SECRET": "demo-basware-secret",
        "BASWARE_REGION": "EU",
        "BASWARE_BASE_URL": urls.basware_url,
        "BASWARE_COMPANY_CODE": DEMO_BASWARE_COMPANY_CODE,
        "BASWARE_RECEIVING_EMAIL": "invoices@demo.basware.local",
    }


async def wait_until_up(url: str, exited: list[ManagedProcess], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            for process in exited:
                if process.exited is not None:
                    raise RuntimeError(
                        f"{process.name} exited with code {process.exited}:\n{process.tail()}"
                    )
            with contextlib.suppress(httpx.TransportError):
                await http.get(url, timeout=2)
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")
            await asyncio.sleep(0.1)


def expected_totals(options: RunOptions) -> dict[Entity, int]:
    return {
        Entity.SUPPLIER: options.suppliers,
        Entity.PURCHASE_ORDER: options.purchase_orders,
        Entity.SUPPLIER_INVOICE: options.invoices,
    }


async def run_pipeline(options: RunOptions) -> int:
    options.log_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with local_stack(purpose="run") as stack:
        print(f"broker   {stack.bootstrap_servers} ({stack.broker_origin})")
        print(f"database {stack.database_url.rsplit('@', 1)[-1]} ({stack.database_origin})")
        ports, urls = local_endpoints()
        processes = sandbox_processes(options, urls, ports)
        processes += service_processes(options, stack, urls, ports)
        tracker = ProgressTracker(stack.bootstrap_servers)
        try:
            for process in processes:
                await process.start()
            await wait_until_up(urls.visma_url, processes)
            await wait_until_up(urls.basware_url, processes)
            print(f"logs     {options.log_dir}/<process>.log")
            await tracker.start()
            return await _watch(options, tracker, processes, stop, started)
        finally:
            await tracker.stop()
            await asyncio.gather(*(p.stop() for p in reversed(processes)))


def service_processes(
    options: RunOptions, stack: Stack, urls: Sandboxes, ports: dict[str, int]
) -> list[ManagedProcess]:
    bin_dir = Path(sys.executable).parent
    env = {
        **stack.environment(),
        **demo_connection_env(urls),
        "VISMA_READER_POLL_INTERVAL_SECONDS": str(options.poll_interval),
    }
    return [
        ManagedProcess(
            instance,
            [str(bin_dir / name)],
            env={**env, "MLC_HTTP_PORT": str(ports["gateway"] if name == "webhook-gateway" else 0)},
            log_dir=options.log_dir,
        )
        for name in SERVICES
        for instance in instance_names(name, options.writers if name == WRITER else 1)
    ]


def instance_names(service: str, count: int) -> list[str]:
    """basware-writer, basware-writer-2, ...: one name per process, for its log and metrics."""
    return [service, *(f"{service}-{n}" for n in range(2, count + 1))]


async def _watch(
    options: RunOptions,
    tracker: ProgressTracker,
    processes: list[ManagedProcess],
    stop: asyncio.Event,
    started: float,
) -> int:
    expected = expected_totals(options)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        elapsed = time.monotonic() - started
        print(f"[{elapsed:6.1f}s] {tracker.render()}", flush=True)
        for process in processes:
            if process.exited is not None:
                print(f"{process.name} exited with code {process.exited}:\n{process.tail()}")
                return 1
        if options.sync_once:
            snapshot = tracker.snapshot()
            if all(snapshot[e].delivered >= n for e, n in expected.items()):
                print(f"all {sum(expected.values())} seeded records delivered in {elapsed:.1f} s")
                return 0
            if elapsed > options.timeout:
                missing = {e.value: n - snapshot[e].delivered for e, n in expected.items()}
                print(
                    f"not everything was delivered within {options.timeout:.0f} s; "
                    f"still missing per entity: {missing}. See {options.log_dir}/ for logs."
                )
                return 1
    print("stopping")
    return 0
