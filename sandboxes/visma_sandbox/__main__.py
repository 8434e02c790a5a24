"""`visma-sandbox`: serve a seeded Visma.net ERP sandbox until interrupted.

    visma-sandbox --port 8720 --companies 2 --suppliers 300 --purchase-orders 600 \
        --invoices 600 --seed 42

The API, the back door and the token endpoint listen on --port; Visma Connect also has its
own origin on --connect-port (default port+1). With --webhook-url every company is
subscribed to every event there, signed with --webhook-secret (demo-visma-webhook-secret).
With --state-dir the state is saved there and the next start resumes from it instead of
seeding. SIGINT and SIGTERM stop the sandbox cleanly (the state is saved one last time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from pydantic import SecretStr

from visma_sandbox.config import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_WEBHOOK_SECRET,
    SandboxConfig,
    SandboxSettings,
    SeedOptions,
)
from visma_sandbox.runner import RunningSandbox, run_visma_sandbox
from visma_sandbox.webhooks import Subscription


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="visma-sandbox", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--connect-port", type=int, default=None, help="default: --port + 1")
    parser.add_argument("--companies", type=int, default=2)
    parser.add_argument("--suppliers", type=int, default=300)
    parser.add_argument("--purchase-orders", type=int, default=600)
    parser.add_argument("--invoices", type=int, default=600)
    parser.add_argument(
        "--stale-coded",
        type=int,
        default=0,
        help="also seed this many orders and invoices coded to deactivated codes",
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--token-lifetime", type=float, default=3600)
    parser.add_argument("--rate-limit", type=int, default=15_000, help="calls per window")
    parser.add_argument(
        "--rate-limit-window",
        type=float,
        default=3600,
        help="seconds per quota window (shorter: a test spends an hour's quota in a minute)",
    )
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--company-id-mode", choices=("current", "legacy"), default="current")
    parser.add_argument("--webhook-url", help="subscribe every company to every event here")
    parser.add_argument("--webhook-secret", default=DEMO_WEBHOOK_SECRET)
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="save the state here; resume from it on the next start (the seed options are "
        "then ignored)",
    )
    return parser


def describe(sandbox: RunningSandbox) -> str:
    lines = [
        f"Visma sandbox API      {sandbox.api_base_url}",
        f"Visma Connect token    {sandbox.token_url}",
        f"  (also on the API)    {sandbox.base_url}/connect/token",
        f"Back door              {sandbox.backdoor_url}/companies",
        f"Client credentials     {DEMO_CLIENT_ID} / {DEMO_CLIENT_SECRET}",
        "Companies (company id, tenant id, customer tenant id without licence, name):",
    ]
    if sandbox.state_file is not None:
        verb = "resumed from" if sandbox.resumed else "seeded, saved to"
        lines.insert(0, f"State                  {verb} {sandbox.state_file}")
    for company in sandbox.state.companies.values():
        info = company.info
        lines.append(
            f"  {info.company_id}  {info.tenant_id}  {info.customer_tenant_id}  {info.name}"
        )
    return "\n".join(lines)


async def _serve(args: argparse.Namespace) -> None:
    config = SandboxConfig(
        settings=SandboxSettings(
            token_lifetime_seconds=args.token_lifetime,
            rate_limit=args.rate_limit,
            rate_limit_window_seconds=args.rate_limit_window,
            max_page_size=args.max_page_size,
            company_id_mode=args.company_id_mode,
        ),
        seed=SeedOptions(
            companies=args.companies,
            suppliers=args.suppliers,
            purchase_orders=args.purchase_orders,
            invoices=args.invoices,
            stale_coded=args.stale_coded,
            seed=args.seed,
        ),
    )
    connect_port = args.connect_port if args.connect_port is not None else args.port + 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stop.set)
    async with run_visma_sandbox(
        config,
        host=args.host,
        port=args.port,
        connect_port=connect_port,
        state_dir=args.state_dir,
    ) as sandbox:
        if args.webhook_url:
            _subscribe_everywhere(sandbox, args.webhook_url, args.webhook_secret)
        print(describe(sandbox), flush=True)
        await stop.wait()


def _subscribe_everywhere(sandbox: RunningSandbox, url: str, secret: str) -> None:
    """Every company subscribed to every event at `url`, once: a resumed state may already
    hold the subscription, whose secret is then brought up to date."""
    hub = sandbox.state.webhooks
    for company in sandbox.state.companies.values():
        existing = [
            s
            for s in hub.subscriptions.values()
            if s.company_id == company.company_id and s.url == url and s.events is None
        ]
        if existing:
            existing[0].secrets = [SecretStr(secret)]
        else:
            hub.subscribe(
                Subscription(company_id=company.company_id, url=url, secrets=[SecretStr(secret)])
            )
    sandbox.state.changed()


def main() -> None:
    args = _parser().parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
