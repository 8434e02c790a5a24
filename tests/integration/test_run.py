"""`mlconnector run --sync-once`, as `make run SYNC_ONCE=1` calls it: its own broker, its own
database, the sandboxes and every service as processes; exit 0 once all is delivered, and
nothing left running afterwards."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from home_support import port_settings

pytestmark = pytest.mark.integration

MLCONNECTOR = Path(sys.executable).parent / "mlconnector"


def processes_in(folder: Path) -> list[str]:
    """Command lines of the running processes whose working directory is `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if (proc / "cwd").resolve() == folder:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


async def test_sync_once_delivers_every_seeded_record_with_two_writers(tmp_path: Path) -> None:
    run = await asyncio.create_subprocess_exec(
        str(MLCONNECTOR),
        *("run", "--sync-once", "--timeout", "120", "--writers", "2"),
        *("--suppliers", "6", "--purchase-orders", "6", "--invoices", "6"),
        cwd=tmp_path,
        env={**os.environ, **port_settings()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await run.communicate()
    printed = output.decode(errors="replace")

    assert run.returncode == 0, printed
    # 18 documents and the company's 25 reference records (4 credit terms, 2 VAT categories,
    # 13 accounts, 6 dimension values; one account and one value deactivated, delivered as
    # inactive).
    assert "all 43 records delivered" in printed
    logs = tmp_path / ".mlconnector" / "logs"
    for writer in ("basware-writer", "basware-writer-2"):
        assert "assigned to partitions" in (logs / f"{writer}.log").read_text(), writer
    assert processes_in(tmp_path.resolve()) == []
