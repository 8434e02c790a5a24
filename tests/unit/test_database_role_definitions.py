"""The database roles (issue 17, item 7): one definition covers every table the migrations
make, and docker-compose gives each service the role and password file it defines."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlconnector.database_roles import (
    CLI,
    GRANTS,
    LOGINS,
    MIGRATIONS,
    OWNER,
    Passfiles,
    role_name,
    scram_verifier,
)
from mlconnector.migrations import migration_files

ROOT = Path(__file__).resolve().parents[2]
# Every login but the command line's is a service of docker-compose.yml.
SERVICES = tuple(who for who in LOGINS if who != CLI)
CREATED = re.compile(
    r"CREATE\s+(?:OR\s+REPLACE\s+)?(?:UNLOGGED\s+)?(?:TABLE|VIEW)\s+"
    r"(?:IF\s+NOT\s+EXISTS\s+)?(\w+)",
    re.I,
)


def created_relations() -> set[str]:
    names = {"schema_migrations"}
    for package, _owner in MIGRATIONS:
        for _version, sql in migration_files(package):
            names.update(CREATED.findall(sql))
    return names


def package_of(folder: Path) -> str:
    parts = [folder.name]
    while (folder.parent / "__init__.py").is_file():
        folder = folder.parent
        parts.insert(0, folder.name)
    return ".".join(parts)


def test_every_package_with_migrations_is_applied_by_the_setup() -> None:
    packages = {
        package_of(path.parent.parent)
        for path in ROOT.glob("**/migrations/*.sql")
        if ".venv" not in path.parts
    }
    assert packages == {package for package, _owner in MIGRATIONS}


def test_every_table_is_granted_to_someone_and_every_grant_names_a_table() -> None:
    granted = {grant.table for grants in GRANTS.values() for grant in grants}
    assert granted == created_relations()


def test_audit_store_may_only_append_to_the_log_and_read_it() -> None:
    grants = {grant.table: set(grant.privileges) for grant in GRANTS["audit-store"]}
    assert grants["audit_log"] == {"SELECT", "INSERT"}
    assert not any("TRUNCATE" in g.privileges for gs in GRANTS.values() for g in gs)
    # No role but the owner may change the log or the status view's definition.
    for grants_of_one in GRANTS.values():
        for grant in grants_of_one:
            if grant.table in ("audit_log", "audit_record_status"):
                assert set(grant.privileges) <= {"SELECT", "INSERT"}


def test_role_names_carry_their_database() -> None:
    assert role_name("mlc_home_0123456789", "invoice-follow-up") == (
        "mlc_home_0123456789_invoice_follow_up"
    )
    assert len({role_name("mlc_home_a", who) for who in (*LOGINS, OWNER)}) == len(LOGINS) + 1
    with pytest.raises(ValueError, match="too long"):
        role_name("d" * 60, "audit-store")


def test_the_scram_verifier_is_rfc_7677s() -> None:
    # The example exchange of RFC 7677 (user "user", password "pencil"): its proof and
    # signature follow from the stored and server keys.
    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = scram_verifier("pencil", salt=salt)
    method, rest = verifier.split("$", 1)
    head, keys = rest.split("$")
    assert (method, head) == ("SCRAM-SHA-256", "4096:W22ZaJ0SNY7soEsUEjb6gQ==")
    stored_key, server_key = (base64.b64decode(k) for k in keys.split(":"))
    nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
    auth = (
        f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,"
        f"c=biws,r={nonce}"
    ).encode()
    proof = base64.b64decode("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
    signed = hmac.digest(stored_key, auth, "sha256")
    client_key = bytes(a ^ b for a, b in zip(proof, signed, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key
    signature = base64.b64encode(hmac.digest(server_key, auth, "sha256")).decode()
    assert signature == "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="


def test_passfiles_keep_their_password_and_name_no_secret_in_the_url(tmp_path: Path) -> None:
    passfiles = Passfiles(tmp_path / "postgres")
    first = passfiles.ensure("mlc_home_a")
    assert passfiles.ensure("mlc_home_a") == first
    assert set(first) == set(LOGINS)
    assert passfiles.path("audit-store").stat().st_mode & 0o077 == 0
    url = passfiles.database_url("postgresql://postgres:pw@127.0.0.1:5432/x", "x", "console")
    assert url.startswith("postgresql://x_console@127.0.0.1:5432/x?passfile=")
    assert first["console"] not in url
    embedded = passfiles.database_url("postgresql://postgres:@/x?host=/run/pg", "x", "console")
    assert embedded.startswith("postgresql://x_console@/x?host=%2Frun%2Fpg&passfile=")
    assert ":pw@" not in url


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


@pytest.mark.parametrize("name", SERVICES)
def test_compose_connects_each_service_as_its_own_role(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    url = service["environment"]["DATABASE_URL"]
    assert url == (
        f"postgresql://{role_name('mlconnector', name)}@postgres:5432/mlconnector"
        "?passfile=/run/secrets/postgres_passfile"
    )
    mounted = {s["target"]: s["source"] for s in service["secrets"] if isinstance(s, dict)}
    assert compose["secrets"][mounted["postgres_passfile"]]["file"] == (
        f"./.mlconnector/postgres/{name}.pgpass"
    )
    assert service["depends_on"]["database-setup"]["condition"] == (
        "service_completed_successfully"
    )


def test_compose_sets_up_the_database_as_its_superuser_first(compose: dict[str, Any]) -> None:
    setup = compose["services"]["database-setup"]
    command = setup["command"]
    assert command[:3] == ["mlconnector", "database", "setup"]
    folder = command[command.index("--passfiles") + 1]
    assert setup["volumes"] == [f"./.mlconnector/postgres:{folder}:ro"]
    postgres = compose["services"]["postgres"]["environment"]
    superuser = f"{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
    assert setup["environment"]["DATABASE_URL"] == (
        f"postgresql://{superuser}@postgres:5432/{postgres['POSTGRES_DB']}"
    )


def test_the_credentials_script_makes_each_roles_password_file(tmp_path: Path) -> None:
    script = ROOT / "docker" / "postgres-credentials.sh"
    subprocess.run(["sh", str(script), str(tmp_path)], check=True, capture_output=True)
    passfiles = Passfiles(tmp_path)
    made = {path.name for path in tmp_path.iterdir()}
    assert made == {passfiles.path(who).name for who in LOGINS}
    for who in LOGINS:
        line = passfiles.path(who).read_text().strip()
        assert line.split(":")[:4] == ["*", "*", "*", role_name("mlconnector", who)]
        assert len(passfiles.password(who)) >= 32
        assert passfiles.path(who).stat().st_mode & 0o077 == 0
    # What the setup job finds there it keeps: the services' files hold the same passwords.
    assert passfiles.ensure("mlconnector") == {who: passfiles.password(who) for who in LOGINS}
