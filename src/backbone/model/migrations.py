"""Schema versions. Each migration moves a warehouse one version forward.

Opening a warehouse applies every migration it lacks, in one transaction; a warehouse
written by a newer Backbone is refused (we never guess at a future schema). To change
the schema, append a migration: never edit an applied one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import duckdb

from backbone.engines.duckdb import transaction
from backbone.errors import SchemaVersionError
from backbone.model.descriptors import descriptor_rows
from backbone.model.schema import (
    ANALYTIC_TABLES,
    CALENDAR_TABLES,
    GOVERNANCE_TABLES,
    IDENTITY_TABLES,
    INGEST_TABLES,
    LINKAGE_TABLES,
    MEASURE_TABLES,
    OPS_TABLES,
    POLICY_TABLES,
    REF_TABLES,
    SCHEMAS,
    create_table_sql,
)
from backbone.version import __version__

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "Migration", "migrate", "schema_version"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Sequence[str]
    seed: Callable[[duckdb.DuckDBPyConnection], None] | None = None


def _seed_descriptors(con: duckdb.DuckDBPyConnection) -> None:
    con.executemany(
        "INSERT INTO ref.descriptor VALUES (?, ?, ?, ?, ?)", descriptor_rows()
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "canonical model: partners, descriptors, identity, analytic facts",
        (
            *(f"CREATE SCHEMA IF NOT EXISTS {s}" for s in SCHEMAS),
            *(
                create_table_sql(t)
                for t in (*OPS_TABLES, *REF_TABLES, *IDENTITY_TABLES, *ANALYTIC_TABLES)
            ),
        ),
        _seed_descriptors,
    ),
    Migration(
        2,
        "school years and instructional calendars",
        tuple(create_table_sql(t) for t in CALENDAR_TABLES),
    ),
    Migration(
        3,
        "partner contacts, agreement versions, commitments, feeds, data-use requests",
        (
            "CREATE SCHEMA IF NOT EXISTS gov",
            *(create_table_sql(t) for t in GOVERNANCE_TABLES),
        ),
    ),
    Migration(
        4,
        "ingestion: quarantine, per-entity counts, replacements, raw-file decisions; "
        "analytic tables keep their natural keys by validation, not an index",
        (
            *(create_table_sql(t) for t in INGEST_TABLES),
            "ALTER TABLE gov.feed ADD COLUMN mode VARCHAR DEFAULT 'replace-period'",
            *(
                statement
                for t in ANALYTIC_TABLES
                for statement in (
                    f"CREATE TABLE analytic.{t.name}__v4 AS SELECT * FROM {t.qualified_name}",
                    f"DROP TABLE {t.qualified_name}",
                    create_table_sql(t, enforce_key=False),
                    f"INSERT INTO {t.qualified_name} SELECT * FROM analytic.{t.name}__v4",
                    f"DROP TABLE analytic.{t.name}__v4",
                )
            ),
        ),
    ),
    Migration(
        5,
        "identity resolution: link runs, evidence, clerical review, person events, "
        "privacy-preserving encodings; the school a partner names",
        (
            "ALTER TABLE identity.partner_record ADD COLUMN IF NOT EXISTS school_name VARCHAR",
            "ALTER TABLE identity.person ADD COLUMN IF NOT EXISTS retired_at TIMESTAMP",
            "ALTER TABLE identity.person ADD COLUMN IF NOT EXISTS merged_into BIGINT",
            # link_edge is rewritten in bulk each run; its key is kept by the linker
            *(
                create_table_sql(t, enforce_key=t.name != "link_edge")
                for t in LINKAGE_TABLES
            ),
        ),
    ),
    Migration(
        6,
        "policy: users and tokens, the hash-chained audit log, the release ledger, "
        "the differential-privacy budget, purges; families' consent",
        tuple(
            # analytic tables keep their natural keys by validation (see migration 4)
            create_table_sql(t, enforce_key=t.schema != "analytic")
            for t in POLICY_TABLES
        ),
    ),
    Migration(
        7,
        "early warning: indicator components per record and snapshot day, "
        "versioned indicator definitions, trained risk models",
        tuple(
            create_table_sql(t, enforce_key=t.schema != "analytic")
            for t in MEASURE_TABLES
        ),
    ),
    Migration(
        8,
        "funders' initiatives: description, target outcomes, minimum dosage",
        (
            "ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS description VARCHAR",
            "ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS target_outcomes VARCHAR[]",
            "ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS min_sessions INTEGER",
            "ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS min_hours DOUBLE",
            "ALTER TABLE ref.initiative ADD COLUMN IF NOT EXISTS definition VARCHAR",
        ),
    ),
)

CURRENT_VERSION = MIGRATIONS[-1].version


def schema_version(con: duckdb.DuckDBPyConnection) -> int:
    """The warehouse's schema version; 0 for an empty database."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'ops' AND table_name = 'meta'"
    ).fetchone()
    if not exists or exists[0] == 0:
        return 0
    row = con.execute(
        "SELECT value FROM ops.meta WHERE key = 'schema_version'"
    ).fetchone()
    return int(row[0]) if row else 0


def migrate(
    con: duckdb.DuckDBPyConnection,
    *,
    target: int = CURRENT_VERSION,
    where: str = "this warehouse",
) -> list[Migration]:
    """Bring the database to ``target``; returns the migrations applied."""
    current = schema_version(con)
    if current > CURRENT_VERSION:
        raise SchemaVersionError(
            f"{where} has schema version {current}, but this Backbone "
            f"({__version__}) reads versions up to {CURRENT_VERSION}. Upgrade Backbone "
            "to open it; nothing was changed."
        )
    pending = [m for m in MIGRATIONS if current < m.version <= target]
    if not pending:
        return []
    with transaction(con):
        for migration in pending:
            for statement in migration.statements:
                con.execute(statement)
            if migration.seed is not None:
                migration.seed(con)
            con.execute(
                "INSERT INTO ops.schema_migration VALUES (?, ?, ?, ?)",
                [
                    migration.version,
                    migration.description,
                    datetime.now(UTC).replace(tzinfo=None),
                    __version__,
                ],
            )
        con.execute(
            "INSERT OR REPLACE INTO ops.meta VALUES ('schema_version', ?)",
            [str(pending[-1].version)],
        )
    return pending
