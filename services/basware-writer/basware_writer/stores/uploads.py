"""SmartPDF uploads claimed in PostgreSQL before they start, so an invoice reaches Basware
once: an upload is not an upsert, and a second one would be a second document. One upload is
live per invoice (tenant, entity id): a claim of another version of an invoice with a live
upload does not succeed (docs/basware-p2p.md §10.8). An upload whose attachment download
found Visma's quota spent waits here, parked until the window resets (`quota_until`),
for the follow-up of any instance (docs/visma-net.md §8.3)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from basware_writer.domain import LiveUpload, UploadIntent, accepted_uploads
from basware_writer.stores.accepted import AcceptedStore
from basware_writer.stores.stored_changes import dump_changes, load_changes


def _intent(row: asyncpg.Record) -> UploadIntent:
    return UploadIntent(
        changes=load_changes(row["changes"]),
        payload_hash=row["payload_hash"],
        invoice_number=row["invoice_number"],
        invoice_date=row["invoice_date"],
        started_at=row["started_at"],
        sent_at=row["sent_at"],
        bum_id=row["bum_id"],
        quota_until=row["quota_until"],
    )


def _by_tenant(rows: Sequence[asyncpg.Record]) -> dict[str, list[UploadIntent]]:
    claimed: dict[str, list[UploadIntent]] = {}
    for row in sorted(rows, key=lambda r: r["started_at"]):
        claimed.setdefault(row["tenant"], []).append(_intent(row))
    return claimed


def _keys(intents: Sequence[UploadIntent]) -> tuple[list[str], list[str]]:
    return [i.change.entity_id for i in intents], [i.payload_hash for i in intents]


class UploadStore:
    def __init__(self, pool: asyncpg.Pool, accepted: AcceptedStore) -> None:
        self._pool = pool
        self._accepted = accepted

    async def claim_new(
        self, tenant: str, intents: Sequence[UploadIntent], owner: str
    ) -> tuple[list[UploadIntent], list[tuple[UploadIntent, str | None]]]:
        """The intents this call may upload (no writer started them before), and those
        uploaded before, with their bumId. The rest are being uploaded by another writer."""
        if not intents:
            return [], []
        ids, hashes = _keys(intents)
        rows = await self._pool.fetch(
            """
            INSERT INTO writer_uploads (tenant, entity_id, payload_hash, supplier_number,
                invoice_number, invoice_date, changes, state, claimed_by)
            SELECT $1, r.entity_id, r.payload_hash, r.supplier, r.number, r.date,
                   r.changes::jsonb, 'uploading', $8
            FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::date[], $7::text[])
                 AS r(entity_id, payload_hash, supplier, number, date, changes)
            ON CONFLICT DO NOTHING
            RETURNING entity_id, payload_hash
            """,
            tenant,
            ids,
            hashes,
            [i.change.supplier_number for i in intents],
            [i.invoice_number for i in intents],
            [i.invoice_date for i in intents],
            [dump_changes(i.changes) for i in intents],
            owner,
        )
        claimed = {(r["entity_id"], r["payload_hash"]) for r in rows}
        mine = [i for i in intents if (i.change.entity_id, i.payload_hash) in claimed]
        others = [i for i in intents if (i.change.entity_id, i.payload_hash) not in claimed]
        if not others:
            return mine, []
        done = await self._pool.fetch(
            """
            SELECT u.entity_id, u.payload_hash, u.bum_id FROM writer_uploads u
            JOIN unnest($2::text[], $3::text[]) AS r(entity_id, hash)
              ON u.entity_id = r.entity_id AND u.payload_hash = r.hash
            WHERE u.tenant = $1 AND u.state = 'uploaded'
            """,
            tenant,
            *_keys(others),
        )
        bum_ids = {(r["entity_id"], r["payload_hash"]): r["bum_id"] for r in done}
        uploaded = [
            (i, bum_ids[(i.change.entity_id, i.payload_hash)])
            for i in others
            if (i.change.entity_id, i.payload_hash) in bum_ids
        ]
        return mine, uploaded

    async def live_uploads(
        self, tenant: str, intents: Sequence[UploadIntent]
    ) -> dict[str, LiveUpload]:
        """The live upload of each of these invoices that has one, by entity id."""
        if not intents:
            return {}
        rows = await self._pool.fetch(
            """
            SELECT entity_id, payload_hash, state, bum_id, invoice_number, invoice_date,
                   quota_until IS NOT NULL AND sent_at IS NULL AS waiting_for_quota
            FROM writer_uploads
            WHERE tenant = $1 AND entity_id = ANY($2::text[]) AND NOT superseded
            """,
            tenant,
            [i.change.entity_id for i in intents],
        )
        return {
            r["entity_id"]: LiveUpload(
                payload_hash=r["payload_hash"],
                uploaded=r["state"] == "uploaded",
                bum_id=r["bum_id"],
                invoice_number=r["invoice_number"],
                invoice_date=r["invoice_date"],
                waiting_for_quota=r["waiting_for_quota"],
            )
            for r in rows
        }

    async def replace(self, tenant: str, intent: UploadIntent, owner: str) -> bool:
        """A forced re-upload: the invoice's live upload (its Basware document gone or
        rejected) makes way for this version's claim. False: another writer claimed first."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                DELETE FROM writer_uploads
                WHERE tenant = $1 AND entity_id = $2 AND (NOT superseded OR payload_hash = $3)
                """,
                tenant,
                intent.change.entity_id,
                intent.payload_hash,
            )
            claimed = await conn.fetchval(
                """
                INSERT INTO writer_uploads (tenant, entity_id, payload_hash, supplier_number,
                    invoice_number, invoice_date, changes, state, claimed_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, 'uploading', $8)
                ON CONFLICT DO NOTHING
                RETURNING true
                """,
                tenant,
                intent.change.entity_id,
                intent.payload_hash,
                intent.change.supplier_number,
                intent.invoice_number,
                intent.invoice_date,
                dump_changes(intent.changes),
                owner,
            )
        return bool(claimed)

    async def take_over_waiting(
        self, tenant: str, intent: UploadIntent, owner: str, timeout_seconds: float
    ) -> UploadIntent | None:
        """A later version of an invoice whose upload waits for Visma's quota (nothing of it
        sent, nobody uploading it now) takes its place, answering for its changes too; None
        when that upload went on meanwhile."""
        async with self._pool.acquire() as conn, conn.transaction():
            earlier = await conn.fetchrow(
                """
                DELETE FROM writer_uploads
                WHERE tenant = $1 AND entity_id = $2 AND NOT superseded
                  AND quota_until IS NOT NULL AND sent_at IS NULL
                  AND writer_claim_open(claimed_by, $3)
                RETURNING changes
                """,
                tenant,
                intent.change.entity_id,
                timeout_seconds,
            )
            if earlier is None:
                return None
            seen = {c.event_id for c in intent.changes}
            changes = (
                *(c for c in load_changes(earlier["changes"]) if c.event_id not in seen),
                *intent.changes,
            )
            taking = intent.model_copy(update={"changes": changes})
            await conn.execute(
                """
                INSERT INTO writer_uploads (tenant, entity_id, payload_hash, supplier_number,
                    invoice_number, invoice_date, changes, state, claimed_by)
                VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, 'uploading', $8)
                """,
                tenant,
                taking.change.entity_id,
                taking.payload_hash,
                taking.change.supplier_number,
                taking.invoice_number,
                taking.invoice_date,
                dump_changes(taking.changes),
                owner,
            )
        return taking

    async def wait_for_quota(
        self, tenant: str, intents: Sequence[tuple[UploadIntent, datetime]], owner: str
    ) -> None:
        """Nothing of these was sent: parked until Visma's window resets, for any writer."""
        if not intents:
            return
        ids, hashes = _keys([intent for intent, _ in intents])
        await self._pool.execute(
            """
            UPDATE writer_uploads u SET quota_until = r.until, claimed_by = NULL
            FROM unnest($2::text[], $3::text[], $4::timestamptz[]) AS r(entity_id, hash, until)
            WHERE u.tenant = $1 AND u.entity_id = r.entity_id AND u.payload_hash = r.hash
              AND u.claimed_by = $5 AND u.sent_at IS NULL
            """,
            tenant,
            ids,
            hashes,
            [until for _, until in intents],
            owner,
        )

    async def claim_quota_due(
        self, owner: str, timeout_seconds: float, limit: int
    ) -> dict[str, list[UploadIntent]]:
        """Uploads parked for Visma's quota whose window has reset, oldest first."""
        rows = await self._pool.fetch(
            """
            UPDATE writer_uploads u SET claimed_by = $1
            FROM (
                SELECT tenant, entity_id, payload_hash FROM writer_uploads
                WHERE quota_until <= now() AND state = 'uploading' AND sent_at IS NULL
                  AND writer_claim_open(claimed_by, $2)
                ORDER BY started_at LIMIT $3
                FOR UPDATE SKIP LOCKED
            ) c
            WHERE u.tenant = c.tenant AND u.entity_id = c.entity_id
              AND u.payload_hash = c.payload_hash
            RETURNING u.*
            """,
            owner,
            timeout_seconds,
            limit,
        )
        return _by_tenant(rows)

    async def quota_waits(self) -> dict[str, tuple[int, datetime | None]]:
        """Per tenant: uploads parked for Visma's quota, and the latest time they wait for."""
        rows = await self._pool.fetch(
            """
            SELECT tenant, count(*) AS n, max(quota_until) AS until FROM writer_uploads
            WHERE quota_until IS NOT NULL AND sent_at IS NULL GROUP BY tenant
            """
        )
        return {r["tenant"]: (r["n"], r["until"]) for r in rows}

    async def uploaded(self, tenant: str, done: Sequence[tuple[UploadIntent, str | None]]) -> None:
        """Basware has these PDFs (bumId when known): done, and remembered as accepted."""
        if not done:
            return
        ids, hashes = _keys([intent for intent, _ in done])
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                """
                UPDATE writer_uploads u
                SET state = 'uploaded', bum_id = coalesce(r.bum_id, u.bum_id), claimed_by = NULL
                FROM unnest($2::text[], $3::text[], $4::text[]) AS r(entity_id, hash, bum_id)
                WHERE u.tenant = $1 AND u.entity_id = r.entity_id AND u.payload_hash = r.hash
                """,
                tenant,
                ids,
                hashes,
                [bum_id for _, bum_id in done],
            )
            await self._accepted.remember(tenant, accepted_uploads(done), conn)

    async def abandon(self, tenant: str, intents: Sequence[UploadIntent]) -> None:
        """Nothing reached Basware (refused before the PDF was sent): a later send may try."""
        if not intents:
            return
        ids, hashes = _keys(intents)
        await self._pool.execute(
            """
            DELETE FROM writer_uploads u
            USING unnest($2::text[], $3::text[]) AS r(entity_id, hash)
            WHERE u.tenant = $1 AND u.entity_id = r.entity_id AND u.payload_hash = r.hash
              AND u.state = 'uploading'
            """,
            tenant,
            ids,
            hashes,
        )

    async def hand_off(self, tenant: str, intents: Sequence[UploadIntent], owner: str) -> None:
        """Whether Basware got the PDF is unknown: the follow-up looks for it there."""
        if not intents:
            return
        ids, hashes = _keys(intents)
        await self._pool.execute(
            """
            UPDATE writer_uploads u SET claimed_by = NULL
            FROM unnest($2::text[], $3::text[]) AS r(entity_id, hash)
            WHERE u.tenant = $1 AND u.entity_id = r.entity_id AND u.payload_hash = r.hash
              AND u.claimed_by = $4
            """,
            tenant,
            ids,
            hashes,
            owner,
        )

    async def sending(self, tenant: str, intent: UploadIntent) -> None:
        """The PDF's PUT starts: from now on the document may be in Basware."""
        await self._pool.execute(
            """
            UPDATE writer_uploads SET sent_at = now(), quota_until = NULL
            WHERE tenant = $1 AND entity_id = $2 AND payload_hash = $3
            """,
            tenant,
            intent.change.entity_id,
            intent.payload_hash,
        )

    async def put_answered(self, tenant: str, intent: UploadIntent, bum_id: str) -> None:
        """Basware's storage took the PDF: known at once, before the upload is settled."""
        await self._pool.execute(
            """
            UPDATE writer_uploads SET bum_id = $4
            WHERE tenant = $1 AND entity_id = $2 AND payload_hash = $3
            """,
            tenant,
            intent.change.entity_id,
            intent.payload_hash,
            bum_id,
        )

    async def looked_up(self, tenant: str, intents: Sequence[UploadIntent]) -> None:
        """These unconfirmed uploads were looked for in Basware just now."""
        if not intents:
            return
        ids, hashes = _keys(intents)
        await self._pool.execute(
            """
            UPDATE writer_uploads u SET looked_at = now()
            FROM unnest($2::text[], $3::text[]) AS r(entity_id, hash)
            WHERE u.tenant = $1 AND u.entity_id = r.entity_id AND u.payload_hash = r.hash
            """,
            tenant,
            ids,
            hashes,
        )

    async def claim_unconfirmed(
        self,
        owner: str,
        timeout_seconds: float,
        limit: int,
        look_every_seconds: float,
        answered_limit: int,
    ) -> dict[str, list[UploadIntent]]:
        """Uploads that started but were never confirmed, whose writer stopped following them
        (handed off, or dead): up to `limit` to look for in Basware, not looked for in the
        last `look_every_seconds`, and up to `answered_limit` whose PUT was answered (they
        are delivered without asking Basware anything, so the lookups' pace is not theirs:
        a writer killed after a batch's uploads, before its results, leaves many)."""
        rows = await self._pool.fetch(
            """
            WITH answered AS (
                SELECT tenant, entity_id, payload_hash FROM writer_uploads
                WHERE state = 'uploading' AND bum_id IS NOT NULL AND quota_until IS NULL
                  AND writer_claim_open(claimed_by, $2)
                ORDER BY started_at LIMIT $5
                FOR UPDATE SKIP LOCKED
            ), to_look_for AS (
                SELECT tenant, entity_id, payload_hash FROM writer_uploads
                WHERE state = 'uploading' AND bum_id IS NULL AND quota_until IS NULL
                  AND writer_claim_open(claimed_by, $2)
                  AND (looked_at IS NULL OR looked_at < now() - make_interval(secs => $4))
                ORDER BY started_at LIMIT $3
                FOR UPDATE SKIP LOCKED
            )
            UPDATE writer_uploads u SET claimed_by = $1
            FROM (SELECT * FROM answered UNION ALL SELECT * FROM to_look_for) c
            WHERE u.tenant = c.tenant AND u.entity_id = c.entity_id
              AND u.payload_hash = c.payload_hash
            RETURNING u.*
            """,
            owner,
            timeout_seconds,
            limit,
            look_every_seconds,
            answered_limit,
        )
        return _by_tenant(rows)

    async def restart(self, tenant: str, intent: UploadIntent) -> None:
        """An unconfirmed upload is sent again: its clock starts anew."""
        await self._pool.execute(
            """
            UPDATE writer_uploads SET started_at = now(), sent_at = NULL
            WHERE tenant = $1 AND entity_id = $2 AND payload_hash = $3
            """,
            tenant,
            intent.change.entity_id,
            intent.payload_hash,
        )

    async def open_count(self) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT tenant, count(*) AS n FROM writer_uploads "
            "WHERE state = 'uploading' GROUP BY tenant"
        )
        return {r["tenant"]: r["n"] for r in rows}
