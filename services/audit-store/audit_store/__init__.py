"""audit-store: the immutable, tamper-evident event log in PostgreSQL, lineage and replay."""

SERVICE_NAME = "audit-store"
