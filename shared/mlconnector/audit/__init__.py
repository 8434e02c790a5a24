"""The audit log's read side, shared by audit-store, the CLI and the console.

audit-store owns the table and is its only writer (its recorder); what a row holds
(`rows`), how rows are read back (`stored`), where each record stands (`status`), its
lineage, replay and chain verification live here, so that every reader uses one code.
"""
