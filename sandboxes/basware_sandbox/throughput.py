"""Requests per second a running Basware sandbox serves, so benchmarks know its ceiling.

    basware-sandbox --port 8082 &
    python -m basware_sandbox.throughput --url http://127.0.0.1:8082 --seconds 5

Measures POST /v1/vendors with 200 records per request, then GET /v1/requestStatus/{id},
with the demo credentials, from `--concurrency` connections in this one process.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from basware_sandbox.config import DEMO_CLIENT

SCOPE = "vendors.write requestStatus.read"


def vendor_batch(batch: int, size: int = 200) -> bytes:
    records = [
        {
            "externalCode": f"TP-{batch}-{i}",
            "vendorCode": f"{batch}{i:03d}",
            "name": f"Throughput vendor {batch}-{i}",
            "companies": [{"companyCode": DEMO_CLIENT.company_codes[0]}],
        }
        for i in range(size)
    ]
    return json.dumps(records).encode()


async def _run(
    seconds: float, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> tuple[int, list[float]]:
    deadline = time.perf_counter() + seconds
    latencies: list[float] = []
    counter = 0

    async def worker() -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            started = time.perf_counter()
            await call(counter)
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies


def _report(name: str, count: int, latencies: list[float], seconds: float) -> None:
    ms = sorted(x * 1000 for x in latencies)
    p95 = ms[int(len(ms) * 0.95) - 1] if ms else 0.0
    print(
        f"{name:<42} {count / seconds:8.0f} req/s   "
        f"p50 {statistics.median(ms) if ms else 0:6.1f} ms   p95 {p95:6.1f} ms"
    )


async def measure(url: str, seconds: float, concurrency: int) -> None:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:
        issued = await http.post(
            "/v1/tokens",
            data={"grant_type": "client_credentials", "scope": SCOPE},
            auth=(DEMO_CLIENT.client_id, DEMO_CLIENT.client_secret.get_secret_value()),
        )
        issued.raise_for_status()
        headers = {
            "Authorization": f"Bearer {issued.json()['access_token']}",
            "Content-Type": "application/json",
        }
        bodies = [vendor_batch(b) for b in range(50)]
        request_ids: list[str] = []

        async def post(n: int) -> None:
            answer = await http.post(
                "/v1/vendors", content=bodies[n % len(bodies)], headers=headers
            )
            answer.raise_for_status()
            request_ids.append(answer.headers["x-amzn-RequestId"])

        count, latencies = await _run(seconds, concurrency, post)
        _report("POST /v1/vendors (200 records each)", count, latencies, seconds)
        print(f"{'':<42} {count * 200 / seconds:8.0f} records/s")

        async def status(n: int) -> None:
            answer = await http.get(
                f"/v1/requestStatus/{request_ids[n % len(request_ids)]}", headers=headers
            )
            answer.raise_for_status()

        count, latencies = await _run(seconds, concurrency, status)
        _report("GET /v1/requestStatus/{id}", count, latencies, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8082")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(measure(args.url, args.seconds, args.concurrency))


if __name__ == "__main__":
    main()
