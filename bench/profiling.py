"""Where the CPU goes during a backfill: py-spy samples every process of the pipeline.

py-spy attaches from outside (`--nonblocking`: it never pauses the process it reads), so
the services run unchanged. Only samples of running threads are kept, so the shares are of
CPU time. Each sample is charged to the deepest frame of the project's own code on its
stack (the function a reader of this repository would change), else to its leaf frame.
The raw stacks stay beside the logs, ready for a flame graph.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from bench.report import Figure

SAMPLES_PER_SECOND = 50
OWN_PACKAGES = (
    "mlconnector",
    "basware_writer",
    "visma_reader",
    "webhook_gateway",
    "audit_store",
    "basware_sandbox",
    "visma_sandbox",
)
# Where asyncio's loop calls a ready callback (a task step, a protocol's data_received).
EVENT_LOOP_CALLBACK = "Handle._run (asyncio/events.py"
EVENT_LOOP_TURN = "BaseEventLoop._run_once (asyncio/base_events.py"
# "function (path/to/module.py:123)" as py-spy writes a frame.
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::\d+)?\)$")
TOP = 3


class Hotspot(BaseModel):
    frame: str
    share: float


class ProcessProfile(BaseModel):
    process: str
    samples: int
    hotspots: list[Hotspot]


def charged_frame(stack: str) -> str:
    """The deepest frame of the project's own code on a collapsed stack, else the leaf.

    Only the frames the event loop's current callback runs count: below them every stack
    passes through the service's own start-up code, which says nothing (outside a callback,
    the loop itself is at work, polling sockets: the leaf says so)."""
    frames = stack.split(";")
    callbacks = [i for i, frame in enumerate(frames) if frame.startswith(EVENT_LOOP_CALLBACK)]
    if callbacks:
        frames = frames[callbacks[-1] + 1 :] or frames
    elif any(frame.startswith(EVENT_LOOP_TURN) for frame in frames):
        frames = frames[-1:]
    for frame in reversed(frames):
        match = FRAME.match(frame)
        if match and match["path"].startswith(OWN_PACKAGES):
            return f"{match['function']} ({match['path']})"
    leaf = FRAME.match(frames[-1])
    return f"{leaf['function']} ({leaf['path']})" if leaf else frames[-1]


def summarise(process: str, raw: str) -> ProcessProfile:
    """Top frames of py-spy's collapsed stacks (`stack count` per line)."""
    charged: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            charged[charged_frame(stack)] += int(count)
    total = sum(charged.values())
    return ProcessProfile(
        process=process,
        samples=total,
        hotspots=[
            Hotspot(frame=frame, share=count / total) for frame, count in charged.most_common(TOP)
        ],
    )


class Profiler:
    """One py-spy recorder per process, from `start` until `stop`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._recorders: dict[str, asyncio.subprocess.Process] = {}

    async def start(self, pids: Mapping[str, int]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        py_spy = Path(sys.executable).parent / "py-spy"
        for name, pid in pids.items():
            self._recorders[name] = await asyncio.create_subprocess_exec(
                str(py_spy),
                *("record", "--nonblocking", "--format", "raw"),
                *("--rate", str(SAMPLES_PER_SECOND), "--pid", str(pid)),
                *("--output", str(self._raw(name))),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )

    async def stop(self) -> list[ProcessProfile]:
        """Stops every recorder (SIGINT makes py-spy write its file) and sums them up."""
        for recorder in self._recorders.values():
            if recorder.returncode is None:
                recorder.send_signal(signal.SIGINT)
        await asyncio.gather(*(r.wait() for r in self._recorders.values()))
        return [
            summarise(name, self._raw(name).read_text())
            for name in self._recorders
            if self._raw(name).exists()
        ]

    def _raw(self, name: str) -> Path:
        return self.folder / f"{name}.stacks.txt"


def profile_figures(profiles: list[ProcessProfile]) -> list[Figure]:
    return [
        Figure(
            name=f"{profile.process}: {hotspot.frame}",
            value=100 * hotspot.share,
            unit="% of CPU samples",
            source=f"py-spy, {profile.samples:,} samples",
        )
        for profile in profiles
        for hotspot in profile.hotspots
    ]
