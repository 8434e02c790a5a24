"""Peak memory and CPU time of a service process, from the kernel's own accounting.

Peak RSS is VmHWM ("high water mark") from /proc/<pid>/status: the kernel keeps it, so no
sampling can miss a short peak. CPU seconds are user + system time of the process and its
threads (psutil). Both must be read while the process still runs.
"""

from __future__ import annotations

from pathlib import Path

import psutil
from pydantic import BaseModel


class ProcessUsage(BaseModel):
    peak_rss_mb: float
    cpu_seconds: float


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise RuntimeError(f"/proc/{pid}/status has no VmHWM line")


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def process_usage(pid: int) -> ProcessUsage:
    times = psutil.Process(pid).cpu_times()
    return ProcessUsage(peak_rss_mb=peak_rss_mb(pid), cpu_seconds=times.user + times.system)
