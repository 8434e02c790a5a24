"""The real `mlconnector` entry point, run in a subprocess as a user runs it: what reaches the
terminal is exactly what a user would see, traceback or not."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from mlconnector.asgi import free_port
from mlconnector.basware import BaswareHost, BaswareHosts, BaswareRegion
from mlconnector.home import HomeFolder, StackFile, write_stack_file

MLCONNECTOR = Path(sys.executable).parent / "mlconnector"


class CliResult(BaseModel):
    code: int
    stdout: str
    stderr: str


def run_cli(args: list[str], env: dict[str, str], stdin: bytes = b"") -> CliResult:
    completed = subprocess.run(
        [str(MLCONNECTOR), *args], input=stdin, capture_output=True, env=env, timeout=60
    )
    return CliResult(
        code=completed.returncode,
        stdout=completed.stdout.decode(errors="replace"),
        stderr=completed.stderr.decode(errors="replace"),
    )


def closed_database_url() -> str:
    """A PostgreSQL URL where nothing listens: a command that reaches it fails fast."""
    return f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"


def cli_env(home: Path, **settings: str) -> dict[str, str]:
    """Everything named, so that nothing comes from the developer's shell or a running stack
    (with DATABASE_URL and KAFKA_BOOTSTRAP_SERVERS set, stack.json is not read)."""
    return {
        "PATH": os.environ["PATH"],
        "MLC_HOME": str(home),
        "DATABASE_URL": closed_database_url(),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
        **settings,
    }


def assert_one_line_error(result: CliResult, *said: str) -> str:
    """The command failed with one line on stderr that says each of `said`; returns it."""
    assert result.code != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for words in said:
        assert words in lines[0], lines[0]
    return lines[0]


def write_sandbox_stack(
    home: Path, *, pid: int, database_url: str, master_key_file: Path
) -> StackFile:
    """A stack.json as `mlconnector run` writes it, its sandboxes on made-up loopback ports:
    nothing here needs them to answer."""
    stack = StackFile(
        home=home,
        pid=pid,
        started_at=datetime.now(UTC),
        database_url=database_url,
        database_origin="test",
        bootstrap_servers="127.0.0.1:9",
        broker_origin="test",
        master_key_file=master_key_file,
        services=[],
        sandboxes=[],
        basware_hosts=BaswareHosts(
            hosts={
                region: BaswareHost(
                    base_url=f"http://127.0.0.1:{47300 + offset}",
                    issuer=BaswareHosts.public().host(region).issuer,
                )
                for offset, region in enumerate(BaswareRegion)
            }
        ),
        visma_token_url="http://127.0.0.1:47221/connect/token",
        visma_api_url="http://127.0.0.1:47220/v1/",
    )
    write_stack_file(HomeFolder(root=home), stack)
    return stack
