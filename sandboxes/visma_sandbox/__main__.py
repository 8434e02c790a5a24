"""`visma-sandbox`: serve a seeded Visma.net ERP sandbox until interrupted.

    visma-sandbox --port 8720 --companies 2 --suppliers 300 --purchase-orders 600 \
        --invoices 600 --seed 42

The API, the back door and the token endpoint listen on --port; Visma Connect also has its
own origin on --connect-port (default port+1). With --webhook-url every company is
subscribed to every event there, signed with --webhook-secret (demo-visma-webhook-secret).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

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
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--token-lifetime", type=float, default=3600)
    parser.add_argument("--rate-limit", type=int, default=15_000, help="calls per hour")
    parser.add_argument("--max-page-size", type=int, default=1000)
    parser.add_argument("--company-id-mode", choices=("current", "legacy"), default="current")
    parser.add_argument("--webhook-url", help="subscribe every company to every event here")
    parser.add_argument("--webhook-secret", default=DEMO_WEBHOOK_SECRET)
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
            max_page_size=args.max_page_size,
            company_id_mode=args.company_id_mode,
        ),
        seed=SeedOptions(
            companies=args.companies,
            suppliers=args.suppliers,
            purchase_orders=args.purchase_orders,
            invoices=args.invoices,
            seed=args.seed,
        ),
    )
    connect_port = args.connect_port if args.connect_port is not None else args.port + 1
    async with run_visma_sandbox(
        config, host=args.host, port=args.port, connect_port=connect_port
    ) as sandbox:
        if args.webhook_url:
            for company in sandbox.state.companies.values():
                sandbox.state.webhooks.subscribe(
                    Subscription(
                        company_id=company.company_id,
                        url=args.webhook_url,
                        secrets=[SecretStr(args.webhook_secret)],
                    )
                )
        print(describe(sandbox), flush=True)
        await asyncio.Event().wait()


def main() -> None:
    args = _parser().parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
