"""`mlconnector connections add` against a real database, through the real entry point:
--sandbox takes the running stack's sandboxes from stack.json, and a database that is not
there is one line."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from cli_support import assert_one_line_error, cli_env, run_cli, write_sandbox_stack

from mlconnector.connection_store import ConnectionStore
from mlconnector.connections import Connection
from mlconnector.vault import Keyring, generate_key

pytestmark = pytest.mark.integration

DEMO_SECRETS = json.dumps(
    {"visma_client_secret": "demo-visma-secret", "basware_client_secret": "demo-basware-secret"}
).encode()


@pytest.fixture
def master_key_file(tmp_path: Path) -> Path:
    keyfile = tmp_path / "master.key"
    keyfile.write_text(generate_key() + "\n")
    return keyfile


def stack_env(home: Path) -> dict[str, str]:
    """Only MLC_HOME: the database and the master key come from stack.json, as beside
    `make run`."""
    env = cli_env(home)
    del env["DATABASE_URL"], env["KAFKA_BOOTSTRAP_SERVERS"]
    return env


async def stored(database_url: str, master_key_file: Path, name: str) -> Connection:
    keyring = Keyring.from_env({"MLC_MASTER_KEY_FILE": str(master_key_file)})
    async with ConnectionStore.open(database_url, keyring) as store:
        return await store.get(name)


async def test_sandbox_points_the_connection_at_the_running_stack(
    database_url: str, master_key_file: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    # This test's process stands in for `mlconnector run`: alive while the command runs.
    stack = write_sandbox_stack(
        home, pid=os.getpid(), database_url=database_url, master_key_file=master_key_file
    )
    add = ["connections", "add", "demo-2", "--sandbox", "--secrets-from-stdin"]
    offline = ["--offline", "--basware-region", "EU"]
    result = run_cli([*add, *offline], stack_env(home), DEMO_SECRETS)

    assert result.code == 0, result.stderr
    assert "Added demo-2: Visma company 1000001 <-> Basware region EU" in result.stdout
    connection = await stored(database_url, master_key_file, "demo-2")
    assert connection.visma_endpoints.token_url == stack.visma_token_url
    assert connection.visma_endpoints.api_base_url == stack.visma_api_url
    assert connection.basware_hosts == stack.basware_hosts
    assert connection.visma.client_id == "demo-visma-client"
    assert connection.visma.company_id == "1000001"
    assert connection.basware.client_id == "demo-basware-client"
    assert connection.basware_company_code == "BW00"
    assert connection.visma.client_secret.get_secret_value() == "demo-visma-secret"
    assert "demo-visma-secret" not in result.stdout + result.stderr


async def test_sandbox_ids_and_urls_given_win(
    database_url: str, master_key_file: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    stack = write_sandbox_stack(
        home, pid=os.getpid(), database_url=database_url, master_key_file=master_key_file
    )
    result = run_cli(
        [
            "connections", "add", "second-company", "--sandbox", "--secrets-from-stdin",
            "--offline", "--basware-region", "EU",
            "--visma-company-id", "1000002", "--visma-tenant-id", "tenant-2",
            "--visma-api-base-url", "http://127.0.0.1:47299/v1/",
        ],
        stack_env(home),
        DEMO_SECRETS,
    )  # fmt: skip

    assert result.code == 0, result.stderr
    connection = await stored(database_url, master_key_file, "second-company")
    assert connection.visma.company_id == "1000002"
    assert connection.visma.tenant_id == "tenant-2"
    assert connection.visma.client_id == "demo-visma-client"
    assert connection.visma_endpoints.api_base_url == "http://127.0.0.1:47299/v1/"
    assert connection.visma_endpoints.token_url == stack.visma_token_url


async def test_a_database_that_does_not_exist(
    database_url: str, master_key_file: Path, tmp_path: Path
) -> None:
    missing = f"{database_url.rsplit('/', 1)[0]}/absent_{uuid.uuid4().hex[:8]}"
    env = cli_env(tmp_path, DATABASE_URL=missing, MLC_MASTER_KEY_FILE=str(master_key_file))
    where = missing.rsplit("@", 1)[-1]
    for command in (["connections", "list"], ["keys", "status"], ["audit", "status"]):
        assert_one_line_error(run_cli(command, env), f"the database {where} does not exist")
