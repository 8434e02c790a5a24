"""The examples `mlconnector connections add --help` and the README give are valid input."""

from __future__ import annotations

import re
from pathlib import Path

from mlconnector.basware import BaswareHosts
from mlconnector_cli.connections import ADD_HELP, ProvidedSecrets
from mlconnector_cli.ports import StackPorts
from mlconnector_cli.run import Endpoints, demo_connection_env

README = Path(__file__).parents[2] / "README.md"


def test_the_host_table_examples_are_host_tables() -> None:
    in_help = ADD_HELP.split("\n\n")[-1]
    in_readme = re.findall(r"```json\n(.*?)```", README.read_text(), re.DOTALL)
    assert len(in_readme) == 1
    for example in (in_help, *in_readme):
        assert BaswareHosts.model_validate_json(example).hosts


def test_the_sandbox_example_pipes_the_sandboxes_demo_secrets() -> None:
    demo = demo_connection_env(Endpoints(ports=StackPorts()))
    example = next(p for p in ADD_HELP.split("\n\n") if p.startswith("echo '"))
    secrets = ProvidedSecrets.model_validate_json(example.split("'")[1])
    assert secrets.visma_client_secret.get_secret_value() == demo["VISMA_CLIENT_SECRET"]
    assert secrets.basware_client_secret.get_secret_value() == demo["BASWARE_CLIENT_SECRET"]
    assert "--sandbox --secrets-from-stdin" in example
    assert demo["VISMA_WEBHOOK_SECRET"] in ADD_HELP
