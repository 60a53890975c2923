"""``ops``: the warehouse's own bookkeeping (meta, migrations, submissions)."""

from __future__ import annotations

from backbone.model.schema.core import Table, _c

__all__ = ["INGEST_TABLES", "OPS_TABLES"]

OPS_TABLES = (
    Table(
        "ops",
        "meta",
        (_c("key", "VARCHAR", required=True), _c("value", "VARCHAR")),
        ("key",),
        doc="Warehouse facts: schema_version, created_at, created_by.",
    ),
    Table(
        "ops",
        "schema_migration",
        (
            _c("version", "INTEGER", required=True),
            _c("description", "VARCHAR", required=True),
            _c("applied_at", "TIMESTAMP", required=True),
            _c("backbone_version", "VARCHAR", required=True),
        ),
        ("version",),
        doc="Every migration applied to this warehouse, in order.",
    ),
    Table(
        "ops",
        "submission",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("partner_id", "VARCHAR", required=True),
            _c("feed", "VARCHAR", required=True),
            _c("file_name", "VARCHAR", required=True),
            _c("sha256", "VARCHAR", required=True, doc="checksum of the raw file"),
            _c("size_bytes", "BIGINT", required=True),
            _c("raw_path", "VARCHAR", required=True, doc="path under raw/"),
            _c("received_at", "TIMESTAMP", required=True),
            _c("status", "VARCHAR", required=True),
            _c("rows_read", "BIGINT"),
            _c("rows_loaded", "BIGINT"),
            _c("rows_quarantined", "BIGINT"),
            _c("note", "VARCHAR"),
            _c(
                "rows_skipped",
                "BIGINT",
                doc="rows the mapping's skip_when left out (added by migration 11)",
            ),
        ),
        ("submission_id",),
        doc="One row per file a partner submitted; counts reconcile.",
    ),
)


# Added by migration 4: what ingestion records.
INGEST_TABLES = (
    Table(
        "ops",
        "submission_target",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("entity", "VARCHAR", required=True),
            _c("rows_in", "BIGINT", required=True),
            _c("rows_loaded", "BIGINT", required=True),
            _c("rows_quarantined", "BIGINT", required=True),
            _c(
                "rows_replaced",
                "BIGINT",
                required=True,
                doc="earlier rows this load replaced",
            ),
            _c(
                "periods",
                "SMALLINT[]",
                doc="school years replaced (feed mode replace-period)",
            ),
            _c(
                "rows_skipped",
                "BIGINT",
                doc="rows the section's skip_when left out (added by migration 11)",
            ),
        ),
        ("submission_id", "entity"),
        doc="Per canonical entity a submission fed: rows in = loaded + quarantined.",
    ),
    Table(
        "ops",
        "quarantine",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("entity", "VARCHAR", required=True),
            _c(
                "source_row",
                "BIGINT",
                required=True,
                doc="row number as the partner sees it",
            ),
            _c("rules", "VARCHAR[]", required=True),
            _c("messages", "VARCHAR[]", required=True),
            _c(
                "record",
                "JSON",
                required=True,
                doc="the row as sent, declared columns only",
            ),
        ),
        ("submission_id", "entity", "source_row"),
        doc="Rows refused, with every reason; exported, fixed and resubmitted.",
    ),
    Table(
        "ops",
        "replacement",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("entity", "VARCHAR", required=True),
            _c("replaced_submission_id", "BIGINT", required=True),
            _c("rows", "BIGINT", required=True),
        ),
        ("submission_id", "entity", "replaced_submission_id"),
        doc="Which earlier submissions' rows a replace-period load replaced (their raw files keep them).",
    ),
    Table(
        "ops",
        "raw_decision",
        (
            _c("submission_id", "BIGINT", required=True),
            _c("undeclared_columns", "VARCHAR[]", required=True),
            _c(
                "decision",
                "VARCHAR",
                doc="keep / purge; NULL while awaiting the steward",
            ),
            _c("reason", "VARCHAR"),
            _c("decided_by", "VARCHAR"),
            _c("decided_at", "TIMESTAMP"),
        ),
        ("submission_id",),
        doc="Raw files holding columns no agreement allows: kept or purged, and why.",
    ),
)
