"""`mlconnector replay | lineage | audit`: help for every command, and plain refusals."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlconnector_cli.__main__ import app
from mlconnector_cli.audit import render_table

COMMANDS = [
    ["replay"],
    ["replay", "failed"],
    ["replay", "record"],
    ["replay", "offsets"],
    ["lineage"],
    ["audit"],
    ["audit", "status"],
    ["audit", "verify"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage: mlconnector " + " ".join(command) in " ".join(result.output.split())


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["replay", "record", "--id", "S1"], "name the record with --entity and --id"),
        (
            ["replay", "record", "--entity", "supplier", "--id", "S1", "--event-id", "e"],
            "name the record with --entity and --id",
        ),
        (["replay", "failed", "--since", "last week"], "--since 'last week' is not a time"),
        (
            ["replay", "offsets", "--partition", "0", "--from", "9", "--to", "3"],
            "--to 3 is before --from 9",
        ),
        (["audit", "status", "--state", "lost"], "--state 'lost' is not one of pending"),
    ],
)
def test_wrong_arguments_are_refused_in_one_line(args: list[str], said: str) -> None:
    # The database is never reached: the arguments are checked first.
    result = CliRunner().invoke(app, args, env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert result.exit_code == 1
    assert result.output.startswith("error: ")
    assert said in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_tables_pad_every_column_but_the_last() -> None:
    table = render_table(["A", "LONGER", "NOTE"], [["xyz", "1", "free text"], ["q", "", ""]])
    assert table.splitlines() == ["A    LONGER  NOTE", "xyz  1       free text", "q"]
