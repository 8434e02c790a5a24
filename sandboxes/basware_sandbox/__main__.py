"""`basware-sandbox`: the Basware sandbox as a process, with a demo API client provisioned."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from pathlib import Path

from basware_sandbox.config import DEMO_CLIENT, SandboxConfig
from basware_sandbox.runner import run_basware_sandbox


def _config(args: argparse.Namespace) -> SandboxConfig:
    config = (
        SandboxConfig.model_validate_json(Path(args.config).read_text(encoding="utf-8"))
        if args.config
        else SandboxConfig()
    )
    updates: dict[str, object] = {"clients": [*config.clients, DEMO_CLIENT]}
    if args.processing_delay is not None:
        updates["processing_delay_seconds"] = args.processing_delay
    if args.token_lifetime is not None:
        updates["token_lifetime_seconds"] = args.token_lifetime
    if args.auto_approve:
        updates["auto_approve_matched_invoices"] = True
    return SandboxConfig.model_validate({**config.model_dump(), **updates})


async def _serve(config: SandboxConfig, bind: str, port: int) -> None:
    async with run_basware_sandbox(config, bind=bind, first_port=port) as sandbox:
        print("Basware sandbox (not Basware: a local simulation). Hosts:")
        for host in config.hosts:
            print(
                f"  {sandbox.urls[host.name]:<28} {host.region.value} "
                f"{host.environment.value:<10} {host.name}"
            )
        print(
            f"Demo credentials ({DEMO_CLIENT.region.value} {DEMO_CLIENT.environment.value}): "
            f"client id {DEMO_CLIENT.client_id}, "
            f"secret {DEMO_CLIENT.client_secret.get_secret_value()}, "
            f"tenant {DEMO_CLIENT.bwcid}, companies {', '.join(DEMO_CLIENT.company_codes)}"
        )
        print(f"Back door: {sandbox.base_url()}/_sandbox/hosts   (Ctrl-C stops)")
        await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="basware-sandbox", description=__doc__)
    parser.add_argument(
        "--port", type=int, default=8082, help="port of the first host; the others follow"
    )
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--config", help="SandboxConfig as a JSON file")
    parser.add_argument(
        "--processing-delay", type=float, help="seconds before requestStatus decides"
    )
    parser.add_argument("--token-lifetime", type=int, help="token lifetime in seconds (300..86400)")
    parser.add_argument("--auto-approve", action="store_true", help="approve invoices that match")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_config(args), args.bind, args.port))


if __name__ == "__main__":
    main()
