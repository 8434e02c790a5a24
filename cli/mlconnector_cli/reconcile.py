"""`mlconnector reconcile [CONNECTION] [--entity E] [--heal] [--json]`: do Visma and Basware
hold the same records? The same code the reconciler service runs on its schedule, run once.

Prints each connection's totals per entity and every record that is not equal (a table, or
JSON for scripts); exits 0 when everything is equal, 1 when not. The run is stored like a
scheduled one, so `mlconnector status` shows it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from mlconnector.contracts import Entity
from mlconnector.topics import Topic
from mlconnector_cli.connections import DEFAULT_DATABASE_URL, DatabaseUrl, run_checked

if TYPE_CHECKING:
    from reconciler.compare import RecordOutcome
    from reconciler.once import ReconcileOutput


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def describe(difference: RecordOutcome) -> str:
    """One record that is not equal, on one line: its fields with both values, or what
    Basware holds."""
    parts = [
        f"{f.field}: visma={_json(f.visma)} basware={_json(f.basware)}" for f in difference.fields
    ]
    if difference.basware_ids:
        parts.append(f"basware ids {', '.join(difference.basware_ids)}")
    if difference.basware_status:
        parts.append(f"status {difference.basware_status}")
    if difference.detail:
        parts.append(difference.detail)
    return "; ".join(parts)


def render(output: ReconcileOutput) -> str:
    from mlconnector_cli.audit import render_table

    lines: list[str] = []
    for report in output.connections:
        seconds = (report.finished_at - report.started_at).total_seconds()
        lines.append(
            f"{report.connection} (Visma company {report.tenant}): "
            f"{'all equal' if report.all_equal else 'NOT EQUAL'} in {seconds:.1f}s, "
            f"{report.calls.visma} Visma and {report.calls.basware} Basware list calls"
        )
        rows = [
            [
                t.entity,
                str(t.visma),
                str(t.basware),
                str(t.equal),
                str(t.missing),
                str(t.different),
                str(t.extra),
                str(t.duplicate),
                str(t.unmappable),
                ", ".join(f"{s} {n}" for s, n in sorted(t.statuses.items())),
            ]
            for t in (e.totals for e in report.entities)
        ]
        headers = [
            "ENTITY", "VISMA", "BASWARE", "EQUAL", "MISSING", "DIFFERENT", "EXTRA",
            "DUPLICATE", "UNMAPPABLE", "BASWARE STATUS",
        ]  # fmt: skip
        lines.append(_indent(render_table(headers, rows)))
        differences = [d for e in report.entities for d in e.differences]
        if differences:
            rows = [[d.entity, d.key, d.outcome.value, describe(d)] for d in differences]
            lines.append(_indent(render_table(["ENTITY", "KEY", "OUTCOME", "DETAIL"], rows)))
    if output.healed:
        lines.append(f"re-published {len(output.healed)} records (replays, reason reconcile):")
        rows = [[h.entity, h.entity_id, h.event_id] for h in output.healed]
        lines.append(_indent(render_table(["ENTITY", "ID", "EVENT"], rows)))
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def reconcile(
    name: Annotated[
        str | None,
        typer.Argument(help="The connection to reconcile; default every enabled connection."),
    ] = None,
    entity: Annotated[
        list[Entity] | None,
        typer.Option("--entity", help="Only this entity (repeatable).", show_default=False),
    ] = None,
    heal: Annotated[
        bool,
        typer.Option(
            "--heal",
            help="Re-publish the current Visma version of each missing or different vendor "
            "and order (a replay, reason reconcile). Duplicates and extras are only reported.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    to_topic: Annotated[
        str, typer.Option("--to-topic", help="Where --heal publishes.", show_default=True)
    ] = Topic.VISMA_CHANGES.value,
    database_url: DatabaseUrl = DEFAULT_DATABASE_URL,
) -> None:
    """Compare, record by record, what Basware holds with what Visma holds.

    Reads every supplier, purchase order and invoice from Visma (paced by its quota) and
    Basware's vendors, matching orders and accounting documents (within the shared request
    budget), maps each Visma record as the writer does, and compares the fields the
    connector owns. Changes nothing in Basware, except what --heal re-publishes.

    Exits 0 when everything is equal, 1 when not.
    """
    from mlconnector.basware.errors import BaswareError
    from mlconnector.settings import KafkaSettings
    from mlconnector.visma.errors import VismaError
    from mlconnector_cli.connections import fail
    from reconciler.once import reconcile_once
    from reconciler.reading import NoCompanyCode

    async def work() -> ReconcileOutput:
        try:
            return await reconcile_once(
                database_url, name, entity or (), heal=heal, kafka=KafkaSettings(), topic=to_topic
            )
        except (VismaError, BaswareError, NoCompanyCode) as error:
            fail(f"reconcile: {error}")

    output = run_checked(work, database_url)
    if not output.connections:
        typer.echo("No connections to reconcile. Add one with: mlconnector connections add --help")
        raise typer.Exit(1)
    typer.echo(output.model_dump_json(indent=2) if as_json else render(output))
    raise typer.Exit(0 if output.all_equal else 1)
