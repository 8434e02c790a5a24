"""`mlconnector status`: is every part up, how far behind is it, and how far is each sync.

The picture comes from `mlconnector.sync_status` (the services of the running stack's
`stack.json`, and PostgreSQL); this module draws it as text.
"""

from __future__ import annotations

from datetime import datetime

from mlconnector.sync_status import StatusReport, eta_text


def _age(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    if moment.tzinfo is None:  # Visma's zone-less frame: shown as it is
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    seconds = max(0.0, (now - moment).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min ago"
    return f"{seconds / 3600:.1f}h ago"


def render_status(report: StatusReport) -> str:
    from mlconnector_cli.audit import render_table

    lines: list[str] = []
    if report.services:
        lines.append("services")
        rows = [
            [
                s.name,
                "ready" if s.ready else ("DOWN" if s.ready is None else "NOT READY"),
                s.url,
                s.detail,
            ]
            for s in report.services
        ]
        lines.append(_indent(render_table(["SERVICE", "STATE", "URL", "DETAIL"], rows)))
    else:
        lines.append("services: no running stack found (no stack.json); not checked")
    if report.lag:
        lines.append("consumer lag")
        rows = [[r.group, r.topic, str(r.lag)] for r in report.lag]
        lines.append(_indent(render_table(["GROUP", "TOPIC", "LAG"], rows)))
    lines += _reconciles(report)
    lines += _quotas(report)
    if not report.entities:
        lines.append("records: none yet")
        return "\n".join(lines)
    lines.append("records")
    headers = [
        "CONNECTION", "ENTITY", "DONE", "DELIVERED", "PENDING", "PARKED", "REJECTED",
        "FAILED", "LAST POLL", "LAST CHANGE READ", "OLDEST PENDING",
    ]  # fmt: skip
    rows = []
    for e in report.entities:
        p = e.progress
        percent = e.percent_done
        rows.append(
            [
                f"{e.connection} ({e.tenant})",
                e.entity,
                f"{percent:.0f}% of {e.total}",
                str(p.delivered),
                str(p.pending),
                str(p.parked),
                str(p.rejected),
                str(p.failed),
                _age(e.last_poll_at, report.now),
                _age(e.last_change_read_at, report.now),
                _age(e.oldest_pending_at, report.now),
            ]
        )
    lines.append(_indent(render_table(headers, rows)))
    remaining = report.remaining
    rate = report.rate_per_second
    if remaining > 0:
        lines.append(
            f"backfill: {remaining} records to go, {rate:.1f} results/s over the last minute, "
            f"ETA {eta_text(remaining, rate)}"
        )
    else:
        lines.append("backfill: caught up, every known record has its answer from Basware")
    return "\n".join(lines)


def _reconciles(report: StatusReport) -> list[str]:
    """The latest reconcile of each connection, and its entities that are not all equal."""
    from mlconnector_cli.audit import render_table

    if not report.reconciles:
        return []
    rows = []
    for run in report.reconciles:
        if run.error:
            verdict = f"FAILED: {run.error}"
        elif run.all_equal:
            verdict = "all equal"
        else:
            verdict = "; ".join(
                f"{e.entity}: {e.missing} missing, {e.different} different, {e.extra} extra, "
                f"{e.duplicate} duplicate"
                for e in run.entities
                if e.not_equal
            )
        rows.append([run.connection, _age(run.finished_at, report.now), verdict])
    table = render_table(["CONNECTION", "RECONCILED", "OUTCOME"], rows)
    return ["reconcile (mlconnector reconcile for the records)", _indent(table)]


def _clock(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%H:%M:%S}"


def _quotas(report: StatusReport) -> list[str]:
    """Each company's Visma quota: calls used of the limit in this window, when it resets,
    when bulk work resumes if it waits, and when the invoices to go can be fetched."""
    from mlconnector_cli.audit import render_table

    if not report.quotas:
        return []
    rows = []
    for q in report.quotas:
        s = q.standing
        limit = "?" if s.quota_limit is None else str(s.quota_limit)
        eta = q.eta
        rows.append(
            [
                f"{q.connection} ({s.company_id})",
                f"{s.used_now}/{limit}",
                str(s.reserve),
                "-" if s.window_over else _clock(s.resets_at),
                "spent, resumes " + _clock(s.resumes_at) if s.bulk_spent else "open",
                str(q.invoices_left),
                "now" if eta is not None and eta <= report.now else _clock(eta),
            ]
        )
    headers = ["COMPANY", "CALLS USED", "LIVE RESERVE", "RESETS AT", "BACKFILL", "INVOICES LEFT",
               "BACKFILL ETA"]  # fmt: skip
    return ["visma quota (UTC)", _indent(render_table(headers, rows))]


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())
