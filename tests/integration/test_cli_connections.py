"""`mlconnector` commands against a real database server, through the real entry point: a
database that is not there is one line."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from cli_support import assert_one_line_error, cli_env, run_cli

from mlconnector.vault import generate_key

pytestmark = pytest.mark.integration


@pytest.fixture
def master_key_file(tmp_path: Path) -> Path:
    keyfile = tmp_path / "master.key"
    keyfile.write_text(generate_key() + "\n")
    return keyfile


async def test_a_database_that_does_not_exist(
    database_url: str, master_key_file: Path, tmp_path: Path
) -> None:
    missing = f"{database_url.rsplit('/', 1)[0]}/absent_{uuid.uuid4().hex[:8]}"
    env = cli_env(tmp_path, DATABASE_URL=missing, MLC_MASTER_KEY_FILE=str(master_key_file))
    where = missing.rsplit("@", 1)[-1]
    for command in (["connections", "list"], ["keys", "status"], ["audit", "status"]):
        assert_one_line_error(run_cli(command, env), f"the database {where} does not exist")
