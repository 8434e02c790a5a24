"""A user's mistake on the command line ends in one line on stderr that names it, and a
non-zero exit: never a traceback, never a secret. Every case fails before any database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import assert_one_line_error, cli_env, run_cli, write_sandbox_stack

from mlconnector.asgi import free_port
from mlconnector.vault import generate_key

CANARY = "canary-secret-7f3e"
SECRETS = json.dumps({"visma_client_secret": CANARY, "basware_client_secret": CANARY}).encode()
ADD = [
    "connections", "add", "acme",
    "--visma-client-id", "visma-client", "--visma-tenant-id", "tenant",
    "--visma-company-id", "1000001", "--basware-client-id", "basware-client",
    "--basware-region", "EU", "--offline",
]  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    keyfile = tmp_path / "master.key"
    keyfile.write_text(generate_key() + "\n")
    return cli_env(tmp_path / "home", MLC_MASTER_KEY_FILE=str(keyfile))


@pytest.mark.parametrize(
    ("stdin", "said"),
    [
        (b'{"visma_client_secret": "' + CANARY.encode(), "Invalid JSON"),
        (b'{"visma_client_secret": 7, "basware_client_secret": "b"}',
         "visma_client_secret: Input should be a valid string"),
        (b'{"visma_client_secret": "' + CANARY.encode() + b'"}',
         "basware_client_secret: Field required"),
        (b'{"visma_client_secret": "v", "basware_client_secret": "b", "typo": "x"}',
         "typo: Extra inputs are not permitted"),
        (b'["' + CANARY.encode() + b'"]', "basware_client_secret: Field required"),
        (b"", "no secrets on stdin"),
        (b"\n  \n", "no secrets on stdin"),
        (b"\xff\xfe{", "the secrets on stdin are not UTF-8 text"),
        (b"a\nb\nc\nd\n" + CANARY.encode() + b"\n", "more than 4 lines"),
    ],
)  # fmt: skip
def test_bad_secrets_on_stdin(env: dict[str, str], stdin: bytes, said: str) -> None:
    line = assert_one_line_error(run_cli([*ADD, "--secrets-from-stdin"], env, stdin), said)
    assert "secrets on stdin" in line
    assert CANARY not in line


def test_no_hidden_prompt_without_a_terminal(env: dict[str, str]) -> None:
    assert_one_line_error(run_cli(ADD, env, SECRETS), "pipe them in with --secrets-from-stdin")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot be read: No such file or directory"),
        (b"{bad", "Invalid JSON"),
        (b"[1]", "Input should be an object"),
        (b"\xff\xfe", "is not UTF-8 text"),
        (b'{"hosts": {}}', "hosts: Dictionary should have at least 1 item"),
        (b'{"hosts": {"EU": {"base_url": "http://127.0.0.1:1"}}}',
         "hosts.EU.issuer: Field required"),
    ],
)  # fmt: skip
def test_bad_host_tables(
    env: dict[str, str], tmp_path: Path, content: bytes | None, said: str
) -> None:
    hosts = tmp_path / "hosts.json"
    if content is not None:
        hosts.write_bytes(content)
    result = run_cli([*ADD, "--basware-hosts", str(hosts), "--secrets-from-stdin"], env, SECRETS)
    assert str(hosts) in assert_one_line_error(result, said)


def test_a_host_table_that_is_a_folder(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli([*ADD, "--basware-hosts", str(tmp_path), "--secrets-from-stdin"], env, SECRETS)
    assert_one_line_error(result, "--basware-hosts", "cannot be read: Is a directory")


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (["--every", "5q"], "not an interval: '5q'"),
        (["--every", "0"], "seconds: Input should be greater than 0"),
        (["--every", "99999999999d"], "seconds: Input should be less than or equal to"),
        (["--cron", "61 * * * *"], "not a cron expression: '61 * * * *'"),
        (["--cron", "*/5 * * * *", "--every", "5m"], "exactly one of --every, --cron or --default"),
    ],
)  # fmt: skip
def test_bad_schedules(env: dict[str, str], options: list[str], said: str) -> None:
    assert_one_line_error(
        run_cli(["connections", "schedule", "acme", "supplier", *options], env), said
    )


@pytest.mark.parametrize(
    "args",
    [
        ["connections", "schedule", "acme", "suppliers", "--every", "5m"],
        [*ADD, "--entity", "suppliers", "--secrets-from-stdin"],
    ],
)
def test_an_unknown_entity(env: dict[str, str], args: list[str]) -> None:
    result = run_cli(args, env, SECRETS)
    assert result.code == 2
    assert_one_line_error(result, "'suppliers' is not one of 'credit_term', 'vat_category'")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["connections", "schedule", "acme"], "Missing argument 'entity'. Choose from: credit"),
        (["connections", "list", "--verbose"], "No such option: --verbose"),
        (["conections", "list"], "No such command 'conections'"),
        (["connections", "add", "acme", "--visma-client-id", "v"],
         "missing --visma-tenant-id, --visma-company-id, --basware-client-id"),
    ],
)  # fmt: skip
def test_usage_mistakes(env: dict[str, str], args: list[str], said: str) -> None:
    assert_one_line_error(run_cli(args, env), said)


def test_a_missing_master_key(tmp_path: Path) -> None:
    result = run_cli(["connections", "list"], cli_env(tmp_path))
    assert_one_line_error(result, "no master key: set MLC_MASTER_KEY")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "cannot read the keyring file"),
        (b"\xff\xfe\n", "is not text"),
        (b"not a key\n", "a master key must be base64 text"),
    ],
)
def test_a_bad_keyring_file(tmp_path: Path, content: bytes | None, said: str) -> None:
    keyfile = tmp_path / "master.key"
    if content is not None:
        keyfile.write_bytes(content)
    env = cli_env(tmp_path, MLC_MASTER_KEY_FILE=str(keyfile))
    assert_one_line_error(run_cli(["connections", "list"], env), said)


def test_a_database_that_does_not_answer(env: dict[str, str]) -> None:
    port = free_port()
    env["DATABASE_URL"] = f"postgresql://postgres:{CANARY}@127.0.0.1:{port}/store"
    line = assert_one_line_error(
        run_cli(["connections", "list"], env),
        f"PostgreSQL at 127.0.0.1:{port}/store does not answer",
    )
    assert CANARY not in line


@pytest.mark.parametrize(
    ("database_url", "said"),
    [
        ("127.0.0.1:5432/store", "not a PostgreSQL URL"),
        (f"postgresql://postgres:{CANARY}@127.0.0.1:pg/store", "a port that is not a number"),
    ],
)
def test_a_database_url_that_is_not_one(env: dict[str, str], database_url: str, said: str) -> None:
    env["DATABASE_URL"] = database_url
    for command in (["connections", "list"], ["lineage", "supplier", "S1"]):
        assert CANARY not in assert_one_line_error(run_cli(command, env), said)


def test_a_key_file_where_a_file_is_in_the_way(env: dict[str, str], tmp_path: Path) -> None:
    in_the_way = tmp_path / "keys"
    in_the_way.write_text("")
    result = run_cli(["keys", "generate", "--file", str(in_the_way / "new.key")], env)
    assert_one_line_error(result, f"{in_the_way}: File exists")


def test_sandbox_without_a_running_stack(env: dict[str, str], tmp_path: Path) -> None:
    result = run_cli(
        ["connections", "add", "mine", "--sandbox", "--secrets-from-stdin"], env, SECRETS
    )
    assert result.code == 1
    assert_one_line_error(
        result, f"no running stack in {tmp_path / 'home'}: start it with `make run`"
    )


def test_sandbox_when_the_stack_has_stopped(env: dict[str, str], tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, check=True, text=True)  # fmt: skip
    write_sandbox_stack(
        tmp_path / "home",
        pid=int(gone.stdout),
        database_url=env["DATABASE_URL"],
        master_key_file=Path(env["MLC_MASTER_KEY_FILE"]),
    )
    result = run_cli(
        ["connections", "add", "mine", "--sandbox", "--secrets-from-stdin"], env, SECRETS
    )
    assert result.code == 1
    assert_one_line_error(result, "no running stack in")
