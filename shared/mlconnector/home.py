"""The home folder of a local installation (`MLC_HOME`, default `.mlconnector/`).

`mlconnector run` keeps everything that must outlive a stop there: the embedded PostgreSQL's
data, the master key, the sandboxes' saved state, the logs, and `stack.json`, which tells
every other command where the running stack is (docs/operator-guide.md §2).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from mlconnector.basware import BaswareHosts

DEFAULT_HOME = Path(".mlconnector")
STACK_FILE = "stack.json"
MASTER_KEY_FILE = "dev-master.key"


class HomeFolder(BaseModel):
    """Where each part of a local installation lives inside its home folder."""

    root: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HomeFolder:
        env = os.environ if environ is None else environ
        return cls(root=Path(env.get("MLC_HOME") or DEFAULT_HOME).absolute())

    @property
    def stack_file(self) -> Path:
        return self.root / STACK_FILE

    @property
    def master_key_file(self) -> Path:
        return self.root / MASTER_KEY_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pgdata(self) -> Path:
        return self.root / "pgdata"

    @property
    def database_passfiles(self) -> Path:
        """The password file of each service's database role (mlconnector.database_roles)."""
        return self.root / "postgres"

    @property
    def sandboxes(self) -> Path:
        return self.root / "sandboxes"

    @property
    def database_name(self) -> str:
        """The database this home uses on a shared server: one per home folder, so two
        checkouts on one machine never share cursors or credentials."""
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:10]
        return f"mlc_home_{digest}"


class StackEndpoint(BaseModel):
    name: str
    url: str
    # The variable that moves it, printed beside it so a clash is easy to resolve.
    setting: str


class StackFile(BaseModel):
    """`stack.json`: where the running stack is. Holds addresses and paths, never a secret."""

    home: Path
    pid: int
    started_at: datetime
    database_url: str
    database_origin: str
    bootstrap_servers: str
    broker_origin: str
    master_key_file: Path
    services: list[StackEndpoint]
    sandboxes: list[StackEndpoint]
    # The Basware sandbox's production hosts, as `connections add --basware-hosts` takes them.
    basware_hosts: BaswareHosts
    visma_token_url: str
    visma_api_url: str

    def service_url(self, name: str) -> str | None:
        return next((e.url for e in self.services if e.name == name), None)

    def pid_alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


class StackFileUnreadable(ValueError):
    """stack.json exists but is not one this version wrote."""


def read_stack_file(home: HomeFolder) -> StackFile | None:
    try:
        text = home.stack_file.read_text()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise StackFileUnreadable(f"{home.stack_file} cannot be read: {error.strerror}") from None
    try:
        return StackFile.model_validate_json(text)
    except ValidationError:
        raise StackFileUnreadable(
            f"{home.stack_file} is not a stack file of this version; "
            "start the stack again with `mlconnector run`"
        ) from None


def write_stack_file(home: HomeFolder, stack: StackFile) -> None:
    home.root.mkdir(parents=True, exist_ok=True)
    partial = home.stack_file.with_suffix(".json.partial")
    partial.write_text(stack.model_dump_json(indent=2) + "\n")
    partial.replace(home.stack_file)
