"""Who may do what in the database: one owner role that owns every table and runs the
migrations, and one login role per service (and one for the `mlconnector` command) granted
only what that service's code reads and writes (docs/operator-guide.md §10.1).

Roles are cluster-wide while a deployment is one database, so every role name starts with the
database's: several homes, or a test database beside them, on one server never share a role.
`set_up_database` is the one step that makes them, run by the database's administrator (a
superuser): by `mlconnector run` for its home's database, and by docker-compose's
`database-setup` job (`mlconnector database setup`). Services connecting as their own role
apply no migration and change no definition: audit-store may append to the log and read it,
and nothing else; dropping its append-only trigger or redefining the status view takes the
owner.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import asyncpg

from mlconnector.migrations import apply_migrations


class Grant(NamedTuple):
    table: str
    privileges: tuple[str, ...]


READ = ("SELECT",)
APPEND = ("SELECT", "INSERT")
UPSERT = ("SELECT", "INSERT", "UPDATE")
READ_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")

OWNER = "owner"
CLI = "mlconnector-cli"

# Every package with migrations and the ledger owner it applies them under, in the order a
# new database gets them (invoice-follow-up's table predates the service; the gateway made it).
MIGRATIONS: tuple[tuple[str, str], ...] = (
    ("mlconnector.connection_store", "connections"),
    ("mlconnector.visma", "visma-quota"),
    ("visma_reader", "visma-reader"),
    ("basware_writer", "basware-writer"),
    ("webhook_gateway", "webhook-gateway"),
    ("invoice_follow_up", "invoice-follow-up"),
    ("audit_store", "audit-store"),
    ("console", "console"),
    ("reconciler", "reconciler"),
)

# Every role reads the migration ledger: a service checks at start that nothing is due.
LEDGER = Grant("schema_migrations", READ)
READ_CONNECTIONS = (
    Grant("connections", READ),
    Grant("connection_secrets", READ),
    Grant("connection_schedules", READ),
)
MANAGE_CONNECTIONS = (
    Grant("connections", READ_WRITE),
    Grant("connection_secrets", READ_WRITE),
    Grant("connection_schedules", READ_WRITE),
)
# A reconcile (the service's, or the command's run once) stores its run, and takes its Basware
# requests from the writers' shared budget.
RECONCILE = (
    Grant("reconcile_run", APPEND),
    Grant("reconcile_totals", APPEND),
    Grant("reconcile_difference", APPEND),
    Grant("writer_budget", UPSERT),
    Grant("visma_quota_plan", UPSERT),
)
READ_RECONCILES = (Grant("reconcile_run", READ), Grant("reconcile_totals", READ))
# The status (the command's and the console's) shows each company's Visma quota plan.
READ_QUOTA = Grant("visma_quota_plan", READ)
READ_AUDIT = (
    Grant("audit_log", READ),
    Grant("audit_chain_head", READ),
    Grant("audit_record_status", READ),
    # Every record's state, kept from the view: counts and lists by state.
    Grant("audit_record_state", READ),
    # Where each chain's retired rows ended: verify goes on from there.
    Grant("audit_log_retired", READ),
)

# What each login role may do, from the SQL of its code (the stores, the audit readers).
GRANTS: dict[str, tuple[Grant, ...]] = {
    "visma-reader": (
        LEDGER,
        *READ_CONNECTIONS,
        Grant("visma_poll_cursor", UPSERT),
        # Marks the audit log never recorded are dropped (broker loss, unreadable versions).
        Grant("visma_published_record", READ_WRITE),
        Grant("visma_broker_epoch", UPSERT),
        # Which reader polls which connection (leases.py); a cursor write locks its lease row.
        Grant("visma_reader_instance", READ_WRITE),
        Grant("visma_connection_lease", UPSERT),
        # Early polls handed to the lease holder (handoff.py): asked by one, taken by another.
        Grant("visma_early_poll_request", READ_WRITE),
        # A lost broker's recovery re-publishes what the log holds without a result.
        *READ_AUDIT,
        Grant("visma_purchase_receipt", UPSERT),
        Grant("visma_purchase_receipt_order", READ_WRITE),
        Grant("visma_purchase_order_pending", READ_WRITE),
        # Every Visma call is counted in its company's shared quota plan.
        Grant("visma_quota_plan", UPSERT),
    ),
    "basware-writer": (
        LEDGER,
        *READ_CONNECTIONS,
        Grant("writer_accepted", READ_WRITE),
        Grant("writer_instances", READ_WRITE),
        Grant("writer_pending", READ_WRITE),
        Grant("writer_uploads", READ_WRITE),
        Grant("writer_parked_keys", READ_WRITE),
        Grant("writer_parked", READ_WRITE),
        Grant("writer_budget", UPSERT),
        Grant("visma_quota_plan", UPSERT),
    ),
    "webhook-gateway": (
        LEDGER,
        *READ_CONNECTIONS,
        Grant("webhook_seen", READ_WRITE),
    ),
    "invoice-follow-up": (
        LEDGER,
        *READ_CONNECTIONS,
        Grant("invoice_follow", UPSERT),
        # Its note writes are counted in the company's Visma quota plan.
        Grant("visma_quota_plan", UPSERT),
    ),
    # The log only grows; a head only moves forward (its trigger refuses anything else).
    "audit-store": (
        LEDGER,
        Grant("audit_log", APPEND),
        Grant("audit_chain_head", UPSERT),
        # Each event id once: a batch claims its ids here before its rows go in.
        Grant("audit_event_id", APPEND),
        # A batch recomputes its records' states from the view (audit-store migration 007).
        Grant("audit_record_status", READ),
        Grant("audit_record_state", READ_WRITE),
        # An export's first row links to the last retired row of its chain.
        Grant("audit_log_retired", READ),
    ),
    "console": (
        LEDGER,
        *MANAGE_CONNECTIONS,
        *READ_AUDIT,
        Grant("visma_poll_cursor", READ),
        Grant("console_users", READ_WRITE),
        Grant("console_sessions", READ_WRITE),
        Grant("console_outbox", UPSERT),
        Grant("console_samples", READ_WRITE),
        Grant("console_minutes", READ_WRITE),
        Grant("console_failure_minutes", READ_WRITE),
        *READ_RECONCILES,
        READ_QUOTA,
    ),
    # Invoices missing in Basware are told apart by their audit status.
    "reconciler": (
        LEDGER,
        *READ_CONNECTIONS,
        *READ_AUDIT,
        *RECONCILE,
    ),
    # connections, keys, users, ping, status and audit status|verify|replay.
    CLI: (
        LEDGER,
        *MANAGE_CONNECTIONS,
        *READ_AUDIT,
        Grant("visma_poll_cursor", READ),
        Grant("console_users", READ_WRITE),
        Grant("console_sessions", READ_WRITE),
        # `users add|remove` record the action; the console publishes it.
        Grant("console_outbox", ("INSERT",)),
        # Its reconcile counts Visma calls in the quota plan, which its status shows.
        *RECONCILE,
    ),
}
LOGINS = tuple(GRANTS)
# Functions a login may call (EXECUTE), besides the tables above. The log's partitions are
# made and retired by audit-store alone, through functions that run as the owner (the one
# role that may change the table) and do only that (audit-store migration 006); the recorder
# recomputes the states of a batch's records from the status view through one function (007).
EXECUTES: dict[str, tuple[str, ...]] = {
    "audit-store": (
        "audit_log_partition_for(timestamptz)",
        "audit_log_retire_partition(text, bigint)",
        "audit_record_state_refresh(text[], text[], text[], text[])",
    ),
}
# `audit verify` (the command and the console's) builds its reference of the log's trigger and
# view from the migrations in a scratch schema it rolls back (mlconnector.audit.definitions).
SCRATCH_SCHEMA = ("console", CLI)


def role_name(database: str, who: str) -> str:
    """The role of `who` (OWNER or a key of GRANTS) for `database`."""
    name = f"{database}_{who.replace('-', '_')}"
    if len(name.encode()) > 63:
        raise ValueError(f"database name {database!r} is too long to prefix its roles")
    return name


def _identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5803 form): sent instead of
    the password, so not even the server's statement log sees it."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class Passfiles:
    """One libpq password file per login role, `<folder>/<who>.pgpass` (mode 0600): a
    service's DATABASE_URL names its file (`?passfile=`), so no URL, log or process list
    carries the password. Files that exist are kept; missing ones get a new password."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, who: str) -> Path:
        return self.folder / f"{who}.pgpass"

    def ensure(self, database: str) -> dict[str, str]:
        """Every login's password, made where missing."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        passwords: dict[str, str] = {}
        for who in LOGINS:
            path = self.path(who)
            if not path.exists():
                line = f"*:*:*:{role_name(database, who)}:{secrets.token_urlsafe(24)}\n"
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as file:
                    file.write(line)
            passwords[who] = self.password(who)
        return passwords

    def password(self, who: str) -> str:
        # `host:port:database:user:password`; generated passwords hold no `:` or `\`.
        return self.path(who).read_text().strip().rsplit(":", 1)[1]

    def database_url(self, admin_url: str, database: str, who: str) -> str:
        """`admin_url` as the role of `who`, its password from its file."""
        parts = urlsplit(admin_url)
        host = parts.netloc.rsplit("@", 1)[-1]
        user = quote(role_name(database, who), safe="")
        # The rest of the query stays: the embedded server's URL names its socket there.
        query = urlencode({**dict(parse_qsl(parts.query)), "passfile": str(self.path(who))})
        return urlunsplit(parts._replace(netloc=f"{user}@{host}", query=query))


async def set_up_database(
    admin: asyncpg.Connection[Any], passwords: Mapping[str, str]
) -> dict[str, list[str]]:
    """On the database `admin` (a superuser) is connected to: the owner and login roles
    (with `passwords`, by login), every table owned by the owner, every migration applied as
    the owner, and each login granted exactly GRANTS. Idempotent; returns the migrations
    applied now, by ledger owner."""
    database: str = await admin.fetchval("SELECT current_database()")
    owner_name = role_name(database, OWNER)
    owner = _identifier(owner_name)
    await _create_roles(admin, database, passwords)
    db = _identifier(database)
    # Only these roles (and superusers) connect; only the owner creates.
    await admin.execute(f"REVOKE ALL ON DATABASE {db} FROM PUBLIC")
    await admin.execute(f"GRANT CONNECT ON DATABASE {db} TO {owner}")
    await admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    await admin.execute(f"GRANT USAGE, CREATE ON SCHEMA public TO {owner}")
    await _hand_over(admin, owner_name)
    applied: dict[str, list[str]] = {}
    await admin.execute(f"SET ROLE {owner}")
    try:
        for package, ledger_owner in MIGRATIONS:
            applied[ledger_owner] = await apply_migrations(admin, package, owner=ledger_owner)
        # At once, so that a service running meanwhile never sees its grants half made.
        async with admin.transaction():
            for who, grants in GRANTS.items():
                await _grant(admin, role_name(database, who), grants, EXECUTES.get(who, ()))
    finally:
        await admin.execute("RESET ROLE")
    for who in LOGINS:
        login = _identifier(role_name(database, who))
        privileges = "CONNECT, CREATE" if who in SCRATCH_SCHEMA else "CONNECT"
        await admin.execute(f"GRANT {privileges} ON DATABASE {db} TO {login}")
    return applied


async def _create_roles(
    admin: asyncpg.Connection[Any], database: str, passwords: Mapping[str, str]
) -> None:
    roles = [(OWNER, "NOLOGIN", None), *((who, "LOGIN", passwords[who]) for who in LOGINS)]
    for who, login, password in roles:
        name = role_name(database, who)
        exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
        verb = "ALTER" if exists else "CREATE"
        options = f"{login} NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION"
        if password is not None:
            options += f" PASSWORD {_literal(scram_verifier(password))}"
        await admin.execute(f"{verb} ROLE {_identifier(name)} {options}")
        if password is not None:
            # Tables are found in public only: no schema another role may create (one named
            # after this role, first on the default path) can stand in for the real ones.
            await admin.execute(f"ALTER ROLE {_identifier(name)} SET search_path = public")


async def _hand_over(admin: asyncpg.Connection[Any], owner_name: str) -> None:
    """Tables (and the log's partitions), views, sequences and functions of the public
    schema made before (by a superuser: a home or a compose database from before the
    roles) go to the owner."""
    objects = await admin.fetch(
        """
        SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END
                   AS kind, quote_ident(c.relname) AS name
          FROM pg_class c
         WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'S')
           AND pg_get_userbyid(c.relowner) <> $1
           -- A partition depends on its table, yet is a table of its own to hand over; a
           -- partitioned table depends on its own key columns.
           AND (c.relispartition OR NOT EXISTS (SELECT 1 FROM pg_depend d
                            WHERE d.objid = c.oid AND d.refobjid <> c.oid
                              AND d.deptype IN ('a', 'i')))
        UNION ALL
        SELECT 'FUNCTION', p.oid::regprocedure::text
          FROM pg_proc p
         WHERE p.pronamespace = 'public'::regnamespace AND pg_get_userbyid(p.proowner) <> $1
        """,
        owner_name,
    )
    for row in objects:
        await admin.execute(f"ALTER {row['kind']} {row['name']} OWNER TO {_identifier(owner_name)}")


async def _grant(
    conn: asyncpg.Connection[Any],
    role: str,
    grants: tuple[Grant, ...],
    functions: tuple[str, ...],
) -> None:
    """Exactly `grants` and `functions` for `role`: what it held before on the schema's
    tables and functions is revoked."""
    name = _identifier(role)
    await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}")
    await conn.execute(f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM {name}")
    await conn.execute(f"REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM {name}")
    for function in functions:
        await conn.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {name}")
    for grant in grants:
        table = _identifier(grant.table)
        await conn.execute(f"GRANT {', '.join(grant.privileges)} ON {table} TO {name}")
        if "INSERT" in grant.privileges:
            # A serial column draws from its sequence with the inserter's privileges (an
            # identity column does not: audit-store cannot even take a `seq` of the log).
            for sequence in await conn.fetch(
                """
                SELECT quote_ident(s.relname) AS name FROM pg_depend d
                  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                 WHERE d.refobjid = $1::regclass AND d.deptype = 'a'
                """,
                grant.table,
            ):
                await conn.execute(f"GRANT USAGE ON SEQUENCE {sequence['name']} TO {name}")


async def drop_roles(admin: asyncpg.Connection[Any], database: str) -> None:
    """After `database` is dropped: its roles, which own and hold nothing any more."""
    for who in (*LOGINS, OWNER):
        await admin.execute(f"DROP ROLE IF EXISTS {_identifier(role_name(database, who))}")
