"""`mlconnector replay | lineage | audit status | audit verify`: the audit log from the shell.

Everything here reads the log audit-store keeps in PostgreSQL (DATABASE_URL); replays are
published to Kafka (KAFKA_BOOTSTRAP_SERVERS) and come back into the log like any message.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from mlconnector.contracts import Entity
from mlconnector.settings import KafkaSettings
from mlconnector.topics import Topic
from mlconnector_cli.connections import (
    DEFAULT_DATABASE_URL,
    database_location,
    fail,
    run_checked,
)

if TYPE_CHECKING:
    from mlconnector.audit.checkpoint import CheckpointVerdict
    from mlconnector.audit.lineage import LineageStep
    from mlconnector.audit.replay import ReplayReport, ReplaySelection
    from mlconnector.audit.status import RecordStatus
    from mlconnector.audit.stored import Connection
    from mlconnector.audit.verify import VerifyReport

T = TypeVar("T")

replay_app = typer.Typer(
    name="replay",
    help="Re-publish change events from the audit log onto visma.changes: what failed, what "
    "has no result yet, one record, or an offset range. Replays carry a replay-of header and "
    "a new event id, keep their key, and are audited themselves. A record delivered since is "
    "not replayed.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    name="audit",
    help="The audit log: where each record stands, and whether the log is intact.",
    no_args_is_help=True,
)

DatabaseUrl = Annotated[
    str,
    typer.Option(
        envvar="DATABASE_URL",
        help="The PostgreSQL that holds the audit log.",
        show_default=False,
    ),
]
DryRun = Annotated[
    bool, typer.Option("--dry-run", help="Show what would be replayed; publish nothing.")
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="Replay also what was delivered since or superseded by a newer version; for an "
        "invoice uploaded before, a re-upload, made only once Basware's document is gone or "
        "rejected. Needs --reason.",
    ),
]
Reason = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help="Why (with --force): carried by the replayed change and kept in the audit log.",
        show_default=False,
    ),
]
ToTopic = Annotated[
    str, typer.Option("--to-topic", help="Where replays are published.", show_default=True)
]
TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Only this Visma company id.", show_default=False)
]
EntityOption = Annotated[
    Entity | None, typer.Option("--entity", help="Only this entity.", show_default=False)
]
Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="Only results at or after this time (ISO 8601, UTC unless it has an offset).",
        show_default=False,
    ),
]
Until = Annotated[
    str | None,
    typer.Option("--until", help="Only results before this time (ISO 8601).", show_default=False),
]


def run_audit(database_url: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Runs the coroutine; a known failure becomes one plain line on stderr and exit code 1."""
    import asyncpg

    from mlconnector.audit.replay import ReplayNotPossible

    # The error line says it all; the clients' own logging would repeat it, worse.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)

    async def audited() -> T:
        try:
            return await work()
        except asyncpg.UndefinedTableError:
            fail(
                f"no audit log in {database_location(database_url)}: audit-store has not run "
                "against this database"
            )
        except ReplayNotPossible as error:
            fail(str(error))

    return run_checked(audited, database_url)


@contextlib.asynccontextmanager
async def _connect(database_url: str) -> AsyncIterator[Connection]:
    import asyncpg

    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        yield conn
    finally:
        await conn.close()


def parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not a time (ISO 8601, e.g. 2026-11-25 or 2026-11-25T14:30)")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _time(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to their widest cell; the last one runs free."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


# --- replay -------------------------------------------------------------------------------


def render_replay(report: ReplayReport) -> str:
    from mlconnector.audit.replay import ReplayAction

    if not report.items:
        return "Nothing to replay."
    rows = [
        [
            item.action.value,
            item.tenant or "-",
            item.entity or "-",
            item.entity_id or "-",
            f"{item.topic}[{item.partition}]@{item.offset}",
            item.original_event_id,
            f"as {item.replay_event_id}" if item.replay_event_id else (item.reason or ""),
        ]
        for item in report.items
    ]
    table = render_table(["ACTION", "TENANT", "ENTITY", "ID", "FROM", "EVENT", "NOTE"], rows)
    skipped = f"{report.count(ReplayAction.SKIPPED)} skipped"
    cannot = report.count(ReplayAction.NOT_REPLAYABLE)
    if cannot:
        skipped += f", {cannot} not replayable"
    if report.dry_run:
        summary = (
            f"{report.count(ReplayAction.WOULD_REPLAY)} would be replayed, {skipped} "
            "(dry run: nothing published)."
        )
    else:
        summary = f"{report.count(ReplayAction.REPLAYED)} replayed, {skipped}."
    return f"{table}\n{summary}"


def _replay(
    database_url: str,
    selection: ReplaySelection,
    to_topic: str,
    dry_run: bool,
    force: bool,
    reason: str | None = None,
) -> None:
    from mlconnector.audit.replay import ReplayAction, kafka_replay_publisher, replay

    if force and not (reason or "").strip():
        fail("--force needs --reason: why this is sent again whatever was sent before")

    async def work() -> ReplayReport:
        async with _connect(database_url) as conn:
            if dry_run:
                return await replay(
                    conn, selection, None, dry_run=True, force=force, force_reason=reason
                )
            async with kafka_replay_publisher(KafkaSettings(), to_topic) as publisher:
                return await replay(conn, selection, publisher, force=force, force_reason=reason)

    report = run_audit(database_url, work)
    typer.echo(render_replay(report))
    # A no-op (delivered since) is success; a selection of nothing but rows that hold no
    # change event is an error.
    if report.items and all(i.action is ReplayAction.NOT_REPLAYABLE for i in report.items):
        raise typer.Exit(1)


@replay_app.command("failed")
def replay_failed(
    tenant: TenantOption = None,
    entity: EntityOption = None,
    since: Since = None,
    until: Until = None,
    dry_run: DryRun = False,
    to_topic: ToTopic = Topic.VISMA_CHANGES.value,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Replay every record whose latest change ended failed or rejected.

    Each record's latest change is re-published: vendors first, then purchase orders, then
    invoices. List them first with --dry-run (or `mlconnector audit status --state failed`).
    """
    from mlconnector.audit.replay import FailedRecords

    selection = FailedRecords(
        tenant=tenant,
        entity=entity,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
    )
    _replay(database_url, selection, to_topic, dry_run, force=False)


@replay_app.command("pending")
def replay_pending(
    tenant: TenantOption = None,
    entity: EntityOption = None,
    dry_run: DryRun = False,
    to_topic: ToTopic = Topic.VISMA_CHANGES.value,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Replay every record whose latest change has no result yet (parked ones excepted).

    What a lost broker held: visma-reader does this by itself when it finds the broker lost
    (README, "Broker loss"); this is the same selection by hand. Vendors first, then
    purchase orders, then invoices; the writer answers what Basware already has without
    sending it again.
    """
    from mlconnector.audit.replay import PendingRecords

    _replay(database_url, PendingRecords(tenant=tenant, entity=entity), to_topic, dry_run, False)


@replay_app.command("record")
def replay_record(
    entity: Annotated[
        Entity | None, typer.Option("--entity", help="The record's entity.", show_default=False)
    ] = None,
    record_id: Annotated[
        str | None,
        typer.Option("--id", help="The record's Visma id (with --entity).", show_default=False),
    ] = None,
    event_id: Annotated[
        str | None,
        typer.Option(
            "--event-id",
            help="Instead of --entity/--id: one change event (a result's id stands for its "
            "change).",
            show_default=False,
        ),
    ] = None,
    tenant: TenantOption = None,
    dry_run: DryRun = False,
    force: Force = False,
    reason: Reason = None,
    to_topic: ToTopic = Topic.VISMA_CHANGES.value,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Replay one record's latest change (--entity E --id ID), or one event (--event-id).

    A record delivered since is not replayed (a no-op that says so), unless --force with a
    --reason. An invoice changed in Visma after its upload is uploaded again only so, and only
    once Basware's document is rejected or gone.
    """
    from mlconnector.audit.replay import OneEvent, OneRecord

    selection: ReplaySelection
    if event_id is not None and entity is None and record_id is None:
        selection = OneEvent(event_id=event_id)
    elif event_id is None and entity is not None and record_id is not None:
        selection = OneRecord(entity=entity, entity_id=record_id, tenant=tenant)
    else:
        fail("name the record with --entity and --id, or the event with --event-id")
    _replay(database_url, selection, to_topic, dry_run, force, reason)


@replay_app.command("offsets")
def replay_offsets(
    partition: Annotated[int, typer.Option("--partition", min=0, help="The topic partition.")],
    first: Annotated[int, typer.Option("--from", min=0, help="First offset.")],
    last: Annotated[int, typer.Option("--to", min=0, help="Last offset (inclusive).")],
    topic: Annotated[
        str, typer.Option("--topic", help="The topic the offsets are on.")
    ] = Topic.VISMA_CHANGES.value,
    dry_run: DryRun = False,
    force: Force = False,
    reason: Reason = None,
    to_topic: ToTopic = Topic.VISMA_CHANGES.value,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Replay the change events the log holds from one partition's offset range.

    Records delivered since are listed as skipped; messages that are no change event as not
    replayable.
    """
    from mlconnector.audit.replay import OffsetRange

    if last < first:
        fail(f"--to {last} is before --from {first}")
    selection = OffsetRange(topic=topic, partition=partition, first_offset=first, last_offset=last)
    _replay(database_url, selection, to_topic, dry_run, force, reason)


# --- lineage ------------------------------------------------------------------------------


def render_lineage(entity: Entity, record_id: str, steps: Sequence[LineageStep]) -> str:
    if not steps:
        return f"The audit log holds nothing about {entity.value} {record_id}."
    tenants = sorted({s.tenant for s in steps if s.tenant})
    rows = [
        [
            _time(s.event_time),
            s.stage.value,
            s.event_id,
            f"{s.topic}[{s.partition}]@{s.offset}",
            s.detail,
        ]
        for s in steps
    ]
    title = f"{entity.value} {record_id} (tenant {', '.join(tenants) or '-'}): {len(steps)} events"
    return f"{title}\n{render_table(['WHEN (UTC)', 'STAGE', 'EVENT', 'AT', 'DETAIL'], rows)}"


def lineage(
    entity: Annotated[Entity, typer.Argument(help="supplier, purchase_order or supplier_invoice.")],
    record_id: Annotated[
        str,
        typer.Argument(
            metavar="ID",
            help="The Visma id: supplier number, order number, or TYPE/REFNBR for an invoice.",
        ),
    ],
    tenant: TenantOption = None,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Show one record's whole story from the audit log, oldest first.

    Visma changes and replays, Basware results with their reasons, and the webhooks that
    name the record. Exits 1 when the log holds nothing about it.
    """
    from mlconnector.audit.lineage import record_lineage

    async def work() -> list[LineageStep]:
        async with _connect(database_url) as conn:
            return await record_lineage(conn, entity, record_id, tenant)

    steps = run_audit(database_url, work)
    typer.echo(render_lineage(entity, record_id, steps))
    if not steps:
        raise typer.Exit(1)


# --- audit status / verify ----------------------------------------------------------------


def _reasons(status: RecordStatus) -> str:
    return "; ".join(f"{r.field}: {r.message}" if r.field else r.message for r in status.reasons)


def render_statuses(statuses: Sequence[RecordStatus]) -> str:
    if not statuses:
        return "No records match."
    rows = [
        [
            s.tenant,
            s.entity,
            s.entity_id,
            s.state,
            str(s.attempts) if s.attempts is not None else "-",
            _time(s.latest_result_at),
            _time(s.latest_change_at),
            f"{s.changes}/{s.replays}",
            _reasons(s) if s.state != "delivered" else "",
        ]
        for s in statuses
    ]
    headers = [
        "TENANT",
        "ENTITY",
        "ID",
        "STATE",
        "ATTEMPTS",
        "RESULT AT",
        "CHANGED AT",
        "CHANGES/REPLAYS",
        "REASONS",
    ]
    return render_table(headers, rows)


@audit_app.command("status")
def status(
    tenant: TenantOption = None,
    entity: EntityOption = None,
    record_id: Annotated[
        str | None, typer.Option("--id", help="Only this record id.", show_default=False)
    ] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state",
            help="Only records in this state (repeatable): pending, delivered, rejected, "
            "failed, parked, exception (an invoice changed in Visma after its upload), "
            "malformed (could not be read).",
            show_default=False,
        ),
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many records.")] = 100,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Where each record stands: latest change, latest result, attempts, reasons.

    Derived from the log on every call. List what failed with --state failed --state rejected.
    """
    from mlconnector.audit.status import RecordState, StatusFilter, record_statuses

    known = [s.value for s in RecordState]
    unknown = [s for s in state or () if s not in known]
    if unknown:
        fail(f"--state {unknown[0]!r} is not one of {', '.join(known)}")
    states = tuple(RecordState(s) for s in state or ())
    query = StatusFilter(
        tenant=tenant,
        entity=entity,
        entity_id=record_id,
        states=states,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until"),
        limit=limit,
    )

    async def work() -> list[RecordStatus]:
        async with _connect(database_url) as conn:
            return await record_statuses(conn, query)

    typer.echo(render_statuses(run_audit(database_url, work)))


def render_verify(report: VerifyReport, heads: bool, verdict: CheckpointVerdict) -> str:
    lines: list[str] = []
    if report.checkpoint_taken_at is not None:
        lines.append(
            f"Checked against the signed checkpoint of {_time(report.checkpoint_taken_at)}."
        )
    elif verdict.unchecked is not None:
        lines.append(f"Not checked against a signed checkpoint: {verdict.unchecked}.")
    elif verdict.problem is None:
        lines.append(
            "No signed checkpoint yet: a chain rewritten or deleted together with its head "
            "would not show."
        )
    scope = report.scope
    if scope is not None and scope.retired_partitions:
        if scope.export_folder is not None:
            lines.append(
                f"{scope.retired_partitions} retired partition(s): checked from their exports "
                f"in {scope.export_folder}."
            )
        else:
            lines.append(
                f"{scope.retired_partitions} retired partition(s) not checked (no exports "
                "folder; --exports DIR): each chain checked from where its retired rows ended."
            )
    if heads:
        rows = [
            [c.topic, str(c.partition), str(c.rows), str(c.head_position), c.head_hash or "-"]
            for c in report.chains
        ]
        lines.append(render_table(["TOPIC", "PARTITION", "ROWS", "HEAD", "HEAD HASH"], rows))
    if report.ok:
        lines.append(f"Checked {report.rows} rows in {len(report.chains)} chains: intact.")
        return "\n".join(lines)
    rows = [
        [
            p.topic or "(database)",
            str(p.partition) if p.partition is not None else "-",
            str(p.position) if p.position is not None else "-",
            p.event_id or "-",
            p.problem,
        ]
        for p in report.problems
    ]
    lines.append(render_table(["TOPIC", "PARTITION", "POSITION", "EVENT", "PROBLEM"], rows))
    lines.append(
        f"Checked {report.rows} rows in {len(report.chains)} chains: {len(report.problems)} "
        "problems. The log was altered behind the database's back."
    )
    return "\n".join(lines)


@audit_app.command("verify")
def verify(
    heads: Annotated[
        bool,
        typer.Option("--heads", help="Also print each chain's head hash."),
    ] = False,
    checkpoints: Annotated[
        Path | None,
        typer.Option(
            "--checkpoints",
            help="The signed checkpoint file (default: AUDIT_STORE_CHECKPOINT_FILE, else "
            "audit-checkpoints.jsonl in the home folder).",
            show_default=False,
        ),
    ] = None,
    exports: Annotated[
        Path | None,
        typer.Option(
            "--exports",
            help="The folder of the retired partitions' exports, checked before the live "
            "table (default: AUDIT_STORE_EXPORT_DIR, else audit-exports in the home folder, "
            "when it exists).",
            show_default=False,
        ),
    ] = None,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Check every row of the log (the exports of retired partitions, then the live table)
    against its hash chain and the latest signed checkpoint, and the log's triggers and
    status view against the migrations; exit 1 on any problem."""
    from mlconnector.audit.checkpoint import (
        CheckpointFile,
        CheckpointSettings,
        CheckpointVerdict,
        latest_valid,
    )
    from mlconnector.audit.export import ExportFolder, ExportSettings
    from mlconnector.audit.verify import Problem, verify_log
    from mlconnector.vault import Keyring, VaultError

    if exports is not None and not exports.is_dir():
        fail(f"--exports {exports}: no such folder")
    default_exports = ExportSettings().export_path()
    folder = (
        ExportFolder(exports)
        if exports is not None
        else ExportFolder(default_exports)
        if default_exports.is_dir()
        else None
    )
    file = CheckpointFile(checkpoints or CheckpointSettings().checkpoints_path())
    try:
        verdict = latest_valid(file, Keyring.from_env())
    except VaultError as error:
        verdict = CheckpointVerdict(checkpoint=None, problem=None, unchecked=str(error))

    async def work() -> VerifyReport:
        async with _connect(database_url) as conn:
            return await verify_log(conn, checkpoint=verdict.checkpoint, exports=folder)

    report = run_audit(database_url, work)
    if verdict.problem is not None:
        report.problems.append(Problem(topic=None, partition=None, problem=verdict.problem))
    typer.echo(render_verify(report, heads, verdict))
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Adds `replay`, `lineage` and `audit` to the mlconnector command."""
    app.add_typer(replay_app)
    app.add_typer(audit_app)
    app.command()(lineage)
