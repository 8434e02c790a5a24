"""`basware-sandbox`: the Basware sandbox as a process, with a demo API client provisioned.

With --state-dir the state is saved there and the next start resumes from it. SIGINT and
SIGTERM stop the sandbox cleanly (the state is saved one last time).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from pathlib import Path

from basware_sandbox.config import DEMO_CLIENT, SandboxConfig, tenant_clients
from basware_sandbox.runner import run_basware_sandbox


def _config(args: argparse.Namespace) -> SandboxConfig:
    config = (
        SandboxConfig.model_validate_json(Path(args.config).read_text(encoding="utf-8"))
        if args.config
        else SandboxConfig()
    )
    clients = [*config.clients, DEMO_CLIENT, *tenant_clients(args.tenants)]
    updates: dict[str, object] = {"clients": clients}
    if args.processing_delay is not None:
        updates["processing_delay_seconds"] = args.processing_delay
    if args.token_lifetime is not None:
        updates["token_lifetime_seconds"] = args.token_lifetime
    if args.auto_approve:
        updates["auto_approve_matched_invoices"] = True
    return SandboxConfig.model_validate({**config.model_dump(), **updates})


async def _serve(config: SandboxConfig, bind: str, port: int, state_dir: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(stop_signal, stop.set)
    async with run_basware_sandbox(
        config, bind=bind, first_port=port, state_dir=state_dir
    ) as sandbox:
        if sandbox.state_file is not None:
            verb = "resumed from" if sandbox.resumed else "saved to"
            print(f"State {verb} {sandbox.state_file}")
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
        print(f"Back door: {sandbox.base_url()}/_sandbox/hosts   (Ctrl-C stops)", flush=True)
        await stop.wait()


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
    parser.add_argument(
        "--tenants",
        type=int,
        default=0,
        help="also provision N customers of their own (client tenant-n-client, "
        "secret tenant-n-secret, tenant TENANT-n): the many-companies mode",
    )
    parser.add_argument(
        "--state-dir", type=Path, help="save the state here; resume from it on the next start"
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(_config(args), args.bind, args.port, args.state_dir))


if __name__ == "__main__":
    main()
