"""The pipeline under test, started the way `mlconnector run` starts it.

The sandboxes and the services are separate processes (the functions of
`mlconnector_cli.run`), so each service's memory and CPU time are its own and the load
generator does not share an interpreter with what it measures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
from pydantic import BaseModel

from bench.backdoors import BaswareBackdoor, VismaBackdoor, VismaCompany
from bench.metrics import MetricsSnapshot, scrape
from bench.procstats import ProcessUsage, cpu_seconds, process_usage
from mlconnector_cli.processes import ManagedProcess
from mlconnector_cli.run import (
    Endpoints,
    RunOptions,
    demo_connection_env,
    random_endpoints,
    sandbox_processes,
    service_processes,
    wait_until_up,
)
from mlconnector_cli.stack import Stack

READER = "visma-reader"
RECONCILER = "reconciler"
# Seeding 10k/50k/50k records takes the Visma sandbox about a minute before it listens.
SANDBOX_START_TIMEOUT = 600.0
# Visma's production quota is 15,000 calls per hour and company (docs/visma-net.md §8.1); the
# sandbox enforces it. A benchmark measures the pipeline's own speed, so the quota is lifted
# and the backfill reports its Visma calls against it instead.
UNLIMITED_QUOTA = 1_000_000_000
# Likewise Basware's: its real limits are unpublished (docs/basware-p2p.md §9), and the writer's
# default budget (50 requests/s per tenant and region, a guess) would make every figure a
# measure of that setting. The budget is lifted; the backfill reports the calls it made.
UNLIMITED_BUDGET = {"BASWARE_WRITER_RATE_PER_SECOND": "100000", "BASWARE_WRITER_RATE_BURST": "1000"}
# Early polls are coalesced to one per connection every 5 s by default, a guard of Visma's
# quota against notification floods; the latency scenario measures one change at a time, so
# the guard is narrowed to what it measures and the quota, lifted above, is not at stake.
EARLY_POLLS = {"VISMA_READER_EARLY_POLL_INTERVAL_SECONDS": "0.1"}
# Everything is measured by the time the pipeline stops, and its stack is thrown away: a
# graceful shutdown (consumer groups left, pools closed) would only add seconds to each run.
STOP_GRACE_SECONDS = 1.0


class PipelineOptions(BaseModel):
    suppliers: int
    purchase_orders: int
    invoices: int
    poll_interval: float = 5.0
    # Added to every answer of both sandboxes (the baseline comparison).
    latency_ms: float = 0.0
    writers: int = 1
    log_dir: Path


class ServiceExited(RuntimeError):
    pass


class Pipeline:
    def __init__(
        self,
        urls: Endpoints,
        company: VismaCompany,
        visma: VismaBackdoor,
        basware: BaswareBackdoor,
        services: dict[str, ManagedProcess],
        service_urls: dict[str, str],
        sandboxes: Sequence[ManagedProcess],
        broker_pid: int | None = None,
    ) -> None:
        self.urls = urls
        self._broker_pid = broker_pid
        self.company = company
        self.visma = visma
        self.basware = basware
        self.services = services
        self.service_urls = service_urls
        self._sandboxes = list(sandboxes)
        self._http = httpx.AsyncClient(timeout=10.0)
        # Services a supervisor (the chaos run) killed and is starting again.
        self.restarting: set[str] = set()

    def check_alive(self) -> None:
        for process in [*self._sandboxes, *self.services.values()]:
            if process.name in self.restarting:
                continue
            if process.pid is not None and process.exited is not None:
                raise ServiceExited(
                    f"{process.name} exited with code {process.exited}:\n{process.tail()}"
                )

    async def start(self, names: Sequence[str]) -> None:
        """Starts the named services and waits until each answers."""
        chosen = [self.services[name] for name in names]
        for process in chosen:
            await process.start()
        for process in chosen:
            await wait_until_up(f"{self.service_urls[process.name]}/healthz", [process])

    async def restart(self, name: str, env: dict[str, str]) -> None:
        """Stops a service and starts it again with changed settings."""
        process = self.services[name]
        await process.stop()
        process.env.update(env)
        await self.start([name])

    def pids(self) -> dict[str, int]:
        """Every running process of the pipeline, sandboxes included, by name."""
        return {
            process.name: process.pid
            for process in [*self._sandboxes, *self.services.values()]
            if process.pid is not None and process.exited is None
        }

    def infrastructure_cpu(self) -> dict[str, float]:
        """CPU seconds so far of what the connector runs on here: the sandboxes standing in
        for Visma and Basware, the embedded broker (when this stack started it), and this
        benchmark process (its outcome watcher and change driver). PostgreSQL is a server
        other runs share: its CPU is not the run's alone and is not read."""
        pids = {p.name: p.pid for p in self._sandboxes if p.pid is not None and p.exited is None}
        if self._broker_pid is not None:
            pids["broker (Tansu)"] = self._broker_pid
        pids["benchmark process"] = os.getpid()
        return {name: cpu_seconds(pid) for name, pid in pids.items()}

    async def metrics(self, service: str) -> MetricsSnapshot:
        return await scrape(self._http, self.service_urls[service])

    def usage(self) -> dict[str, ProcessUsage]:
        """Peak RSS and CPU seconds of every running service (read before they stop)."""
        return {
            name: process_usage(process.pid)
            for name, process in self.services.items()
            if process.pid is not None and process.exited is None
        }

    async def aclose(self) -> None:
        await self._http.aclose()


@contextlib.asynccontextmanager
async def running_pipeline(stack: Stack, options: PipelineOptions) -> AsyncIterator[Pipeline]:
    """The seeded sandboxes, up and answering; the services configured but not yet started."""
    urls = random_endpoints()
    run_options = RunOptions(
        suppliers=options.suppliers,
        purchase_orders=options.purchase_orders,
        invoices=options.invoices,
        poll_interval=options.poll_interval,
        writers=options.writers,
        log_dir=options.log_dir,
    )
    sandboxes = sandbox_processes(run_options, urls)
    # The reconciler takes no part in a sync (the reconcile scenario runs the command).
    services = {
        p.name: p
        for p in service_processes(run_options, stack, urls, demo_connection_env(urls))
        if p.name != RECONCILER
    }
    service_urls = {}
    for process in services.values():
        process.env.update(UNLIMITED_BUDGET)
        process.env.update(EARLY_POLLS)
        service_urls[process.name] = f"http://127.0.0.1:{process.env['MLC_HTTP_PORT']}"
    try:
        for process in sandboxes:
            await process.start()
        await wait_until_up(urls.visma_url, sandboxes, timeout=SANDBOX_START_TIMEOUT)
        await wait_until_up(urls.basware_url, sandboxes, timeout=SANDBOX_START_TIMEOUT)
        async with (
            VismaBackdoor(urls.visma_url) as visma,
            BaswareBackdoor(urls.basware_url) as basware,
        ):
            company = (await visma.companies())[0]
            await visma.set_quota(UNLIMITED_QUOTA)
            if options.latency_ms:
                await visma.set_latency(options.latency_ms)
                await basware.set_latency(options.latency_ms)
            broker_pid = stack.embedded.pid if stack.embedded is not None else None
            pipeline = Pipeline(
                urls, company, visma, basware, services, service_urls, sandboxes, broker_pid
            )
            try:
                yield pipeline
            finally:
                await pipeline.aclose()
    finally:
        await asyncio.gather(
            *(p.stop(grace=STOP_GRACE_SECONDS) for p in [*services.values(), *sandboxes])
        )
