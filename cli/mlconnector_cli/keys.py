"""`mlconnector keys generate | rotate | status`: the master keys that seal stored secrets.

Rotation: `keys generate` a new key; make it MLC_MASTER_KEY and move the old one to
MLC_MASTER_KEYS (or put both in the keyring file, new first); `keys rotate` re-seals every
secret under the new key; once `keys status` shows the old key seals nothing, drop it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from mlconnector.vault import generate_key
from mlconnector_cli.connections import (
    DEFAULT_DATABASE_URL,
    DatabaseUrl,
    fail,
    load_keyring,
    run_checked,
)

app = typer.Typer(
    name="keys",
    help="Generate master keys, re-seal stored secrets under the current key, show key use.",
    no_args_is_help=True,
)


@app.command()
def generate(
    file: Annotated[
        Path | None,
        typer.Option(help="Write the key to this new file (mode 0600) instead of printing it."),
    ] = None,
) -> None:
    """Make a new master key (base64 of 32 random bytes)."""
    key = generate_key()
    if file is None:
        typer.echo(key)
        return
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        fail(f"{file} exists; a key file is never overwritten")
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    typer.echo(f"Wrote a new master key to {file}")


@app.command()
def rotate(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """Re-seal every stored secret under the current key (MLC_MASTER_KEY).

    The keys being replaced must still be loaded (MLC_MASTER_KEYS or the keyring file)."""
    from mlconnector.connection_store import ConnectionStore, RotationReport

    keyring = load_keyring()

    async def work() -> RotationReport:
        async with ConnectionStore.open(database_url, keyring) as store:
            return await store.rotate_keys()

    report = run_checked(work, database_url)
    typer.echo(
        f"Re-sealed {report.resealed} secrets under {report.current_key_id}; "
        f"{report.already_current} were already under it. Older keys can now be dropped."
    )


@app.command()
def status(database_url: DatabaseUrl = DEFAULT_DATABASE_URL) -> None:
    """Show which master keys are loaded and how many stored secrets each one seals."""
    from mlconnector.connection_store import ConnectionStore

    keyring = load_keyring()

    async def work() -> dict[str, int]:
        async with ConnectionStore.open(database_url, keyring) as store:
            return await store.key_usage()

    usage = run_checked(work, database_url)
    for key_id in sorted(set(keyring.key_ids) | set(usage)):
        role = (
            "current"
            if key_id == keyring.current.key_id
            else "loaded"
            if key_id in keyring.key_ids
            else "NOT LOADED"
        )
        typer.echo(f"{key_id}  {role:<10}  seals {usage.get(key_id, 0)} secrets")
