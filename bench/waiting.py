"""Waiting for the pipeline to reach a state, failing fast when a process died."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from bench.pipeline import Pipeline

POLL_SECONDS = 0.02


async def until(
    pipeline: Pipeline, done: Callable[[], Awaitable[bool]], *, timeout: float, what: str
) -> float:
    """Polls `done` until it holds; returns the perf_counter time at which it was seen."""
    deadline = time.perf_counter() + timeout
    while True:
        pipeline.check_alive()
        if await done():
            return time.perf_counter()
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        await asyncio.sleep(POLL_SECONDS)
