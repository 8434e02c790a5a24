"""The examples `mlconnector connections add --help` and the README give are valid input."""

from __future__ import annotations

import re
from pathlib import Path

from mlconnector.basware import BaswareHosts
from mlconnector_cli.connections import ADD_HELP

README = Path(__file__).parents[2] / "README.md"


def test_the_host_table_examples_are_host_tables() -> None:
    in_help = ADD_HELP.split("\n\n")[-1]
    in_readme = re.findall(r"```json\n(.*?)```", README.read_text(), re.DOTALL)
    assert len(in_readme) == 1
    for example in (in_help, *in_readme):
        assert BaswareHosts.model_validate_json(example).hosts
