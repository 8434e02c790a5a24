"""Are the database objects that keep the log honest still the ones the migrations created?

A superuser can drop the append-only trigger, disable it, replace its function with one that
lets changes through, or redefine the status view so that a record disappears from it; each
leaves every hash intact. So verify builds the reference: it runs audit-store's own
migrations into a scratch schema inside a transaction it rolls back, and compares what it
finds there with the live objects: triggers (name, timing, events, enabled state, function),
their functions' source, the status view's definition as PostgreSQL prints it, and the
source of the functions that keep every record's state from the view (a function changed
there would let audit_record_state say what the view does not).
"""

from __future__ import annotations

from importlib import resources

from pydantic import BaseModel

from mlconnector.audit.stored import Connection

REFERENCE_SCHEMA = "mlc_audit_reference"
MIGRATIONS_PACKAGE = "audit_store"
GUARDED_TABLES = ("audit_log", "audit_chain_head")
GUARDED_VIEWS = ("audit_record_status",)
GUARDED_FUNCTIONS = (
    "audit_message_record_id",
    "audit_record_state_refresh",
    "audit_record_state_rebuild",
)


class TriggerShape(BaseModel, frozen=True):
    table: str
    name: str
    # pg_trigger.tgtype: the timing, level and events as one bit mask.
    kind: int
    enabled: str
    function: str
    function_source: str


class SchemaObjects(BaseModel):
    triggers: set[TriggerShape]
    views: dict[str, str | None]
    # Each function's source, and its settings (search path, plan cache mode).
    functions: dict[str, tuple[str, tuple[str, ...]] | None]


async def _objects(conn: Connection, schema: str) -> SchemaObjects:
    rows = await conn.fetch(
        """
        SELECT c.relname AS table, t.tgname AS name, t.tgtype AS kind, t.tgenabled AS enabled,
               p.proname AS function, p.prosrc AS function_source,
               pn.nspname = n.nspname AS function_beside
        FROM pg_trigger t
        JOIN pg_class c ON c.oid = t.tgrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_proc p ON p.oid = t.tgfoid
        JOIN pg_namespace pn ON pn.oid = p.pronamespace
        WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND NOT t.tgisinternal
        """,
        schema,
        list(GUARDED_TABLES),
    )
    triggers = {
        TriggerShape(
            table=r["table"],
            name=r["name"],
            kind=r["kind"],
            enabled=str(r["enabled"]),
            # A function of the same name in another schema is not the migrations' function.
            function=r["function"] if r["function_beside"] else f"(elsewhere) {r['function']}",
            function_source=r["function_source"],
        )
        for r in rows
    }
    # The view's text as PostgreSQL prints it, with the schema on the search path so that
    # both copies print their tables' names alike.
    await conn.execute(f'SET LOCAL search_path TO "{schema}"')
    views = {
        name: await conn.fetchval(
            "SELECT pg_get_viewdef(c.oid, true) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'v'",
            schema,
            name,
        )
        for name in GUARDED_VIEWS
    }
    functions: dict[str, tuple[str, tuple[str, ...]] | None] = {}
    for name in GUARDED_FUNCTIONS:
        found = await conn.fetchrow(
            "SELECT p.prosrc, p.proconfig FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = $1 AND p.proname = $2",
            schema,
            name,
        )
        functions[name] = (
            None
            if found is None
            else (found["prosrc"], tuple(_unschemed(c, schema) for c in found["proconfig"] or ()))
        )
    return SchemaObjects(triggers=triggers, views=views, functions=functions)


def _unschemed(setting: str, schema: str) -> str:
    """A function's setting with its own schema's name taken out: the reference's search path
    names the scratch schema."""
    return setting.replace(f'"{schema}"', "<schema>").replace(f"={schema}", "=<schema>")


def _migration_sql() -> list[str]:
    folder = resources.files(MIGRATIONS_PACKAGE).joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [f.read_text() for f in files]


def compare(live: SchemaObjects, reference: SchemaObjects) -> list[str]:
    problems: list[str] = []
    expected = {(t.table, t.name): t for t in reference.triggers}
    found = {(t.table, t.name): t for t in live.triggers}
    for key, trigger in sorted(expected.items()):
        present = found.get(key)
        if present is None:
            problems.append(f"trigger {trigger.name} on {trigger.table} is missing (dropped)")
        elif present.enabled != trigger.enabled:
            problems.append(f"trigger {trigger.name} on {trigger.table} is disabled")
        elif present != trigger:
            problems.append(
                f"trigger {trigger.name} on {trigger.table} is not the migrations' "
                "(its events, timing or function changed)"
            )
    for key in sorted(found.keys() - expected.keys()):
        problems.append(f"trigger {key[1]} on {key[0]} was added outside the migrations")
    for name, definition in reference.views.items():
        current = live.views.get(name)
        if current is None:
            problems.append(f"view {name} is missing")
        elif current != definition:
            problems.append(f"view {name} was redefined: it is not the migrations' definition")
    for name, function in reference.functions.items():
        live_function = live.functions.get(name)
        if live_function is None:
            problems.append(f"function {name} is missing")
        elif live_function != function:
            problems.append(f"function {name} was redefined: it is not the migrations' definition")
    return problems


async def definition_problems(conn: Connection) -> list[str]:
    """What differs from the migrations' objects; nothing is kept of the reference."""
    schema = await conn.fetchval("SELECT current_schema()")
    transaction = conn.transaction()
    await transaction.start()
    try:
        live = await _objects(conn, schema)
        await conn.execute(f'CREATE SCHEMA "{REFERENCE_SCHEMA}"')
        await conn.execute(f'SET LOCAL search_path TO "{REFERENCE_SCHEMA}"')
        for sql in _migration_sql():
            await conn.execute(sql)
        reference = await _objects(conn, REFERENCE_SCHEMA)
    finally:
        await transaction.rollback()
    return compare(live, reference)
