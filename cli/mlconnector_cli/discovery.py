"""How a command finds the stack it talks to: the environment first, else the running stack.

`mlconnector run` writes `stack.json` into its home folder; every other command reads it when
DATABASE_URL / KAFKA_BOOTSTRAP_SERVERS are not set, and says on stderr which stack that is,
so that nobody has to look up a database URL to use the CLI beside `make run`.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from mlconnector.home import HomeFolder, StackFile, read_stack_file
from mlconnector_cli.connections import database_location

MASTER_KEY_VARIABLES = ("MLC_MASTER_KEY", "MLC_MASTER_KEY_FILE", "MLC_MASTER_KEYS", "MLC_DEV_KEY")


def use_running_stack(environ: MutableMapping[str, str] | None = None) -> str | None:
    """Fills what the environment leaves unset from `$MLC_HOME/stack.json`; returns the line
    that says so (None when the environment says everything, or there is no stack file)."""
    env = os.environ if environ is None else environ
    if env.get("DATABASE_URL") and env.get("KAFKA_BOOTSTRAP_SERVERS"):
        return None
    home = HomeFolder.from_env(env)
    stack = read_stack_file(home)
    if stack is None:
        return None
    env.setdefault("DATABASE_URL", stack.database_url)
    env.setdefault("KAFKA_BOOTSTRAP_SERVERS", stack.bootstrap_servers)
    if not any(env.get(name) for name in MASTER_KEY_VARIABLES):
        env["MLC_MASTER_KEY_FILE"] = str(stack.master_key_file)
    return describe(stack)


def describe(stack: StackFile) -> str:
    where = database_location(stack.database_url)
    state = f"pid {stack.pid}" if stack.pid_alive() else f"NOT RUNNING (pid {stack.pid} is gone)"
    return (
        f"using the stack of {stack.home} ({state}): database {where}, "
        f"broker {stack.bootstrap_servers}"
    )
