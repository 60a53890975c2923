"""Schema versions. Each migration moves a warehouse one version forward.

Migrating applies every migration a warehouse lacks, in one transaction; a warehouse
written by a newer Backbone is refused (we never guess at a future schema). Each step
carries its own frozen SQL, exactly as it ran when it shipped (``frozen_ddl/NNNN.sql``),
never built from today's declarations in ``model/schema/``: a table that gains a column
later must not change what an old step creates. To change the schema, change the
declaration and append a migration that brings every warehouse there; never edit an
applied one (tests pin their text and check that a fresh warehouse matches the
declarations).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from backbone.engines import Connection
from backbone.engines.duckdb import transaction
from backbone.engines.sql import literal
from backbone.errors import SchemaVersionError
from backbone.model.descriptors import descriptor_rows
from backbone.version import __version__

__all__ = ["CURRENT_VERSION", "MIGRATIONS", "Migration", "migrate", "schema_version"]


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: Sequence[str]
    seed: Callable[[Connection], None] | None = None


def frozen_statements(version: int) -> tuple[str, ...]:
    """The statements of ``frozen_ddl/NNNN.sql``: ``--`` lines are comments, and a
    statement ends with ``;`` at the end of a line."""
    script = (
        resources.files("backbone.model")
        .joinpath(f"frozen_ddl/{version:04d}.sql")
        .read_text("utf-8")
    )
    body = "\n".join(
        line for line in script.splitlines() if not line.lstrip().startswith("--")
    )
    return tuple(
        statement.strip()
        for statement in re.split(r";[ \t]*$", body, flags=re.MULTILINE)
        if statement.strip()
    )


def _seed_descriptors(con: Connection) -> None:
    # columns named: ref.descriptor as migration 1 made it, whatever it gains later
    con.executemany(
        "INSERT INTO ref.descriptor "
        "(descriptor_name, code_value, namespace, short_description, ordinal) "
        "VALUES (?, ?, ?, ?, ?)",
        descriptor_rows(),
    )


# Step 9, frozen as it shipped: each id sequence and every column that held its ids
# when ``max() + 1`` handed them out. A sequence starts after the largest of them, so
# an id of a row since deleted (a person in a merge's evidence, a purged run) is
# never handed out again.
_IDS_IN_USE_V9: dict[str, tuple[tuple[str, str], ...]] = {
    "ops.submission_id_seq": (
        ("ops.submission", "submission_id"),
        ("ops.submission_target", "submission_id"),
        ("ops.quarantine", "submission_id"),
        ("ops.replacement", "submission_id"),
        ("ops.replacement", "replaced_submission_id"),
        ("ops.raw_decision", "submission_id"),
        ("identity.partner_record", "submission_id"),
    ),
    "identity.link_run_id_seq": (
        ("identity.link_run", "run_id"),
        ("identity.link_edge", "run_id"),
        ("identity.person_event", "run_id"),
    ),
    "identity.person_id_seq": (
        ("identity.person", "person_id"),
        ("identity.person", "merged_into"),
        ("identity.record_person", "person_id"),
        ("identity.person_event", "person_id"),
        ("identity.person_event", "other_person_id"),
    ),
    "gov.commitment_id_seq": (
        ("gov.commitment", "commitment_id"),
        ("gov.commitment_update", "commitment_id"),
    ),
    "gov.release_id_seq": (
        ("gov.release", "release_id"),
        ("gov.release_cell", "release_id"),
        ("gov.release_member", "release_id"),
        ("gov.dp_spend", "release_id"),
    ),
    "gov.purge_id_seq": (("gov.purge", "purge_id"),),
    "gov.risk_model_id_seq": (("gov.risk_model", "model_id"),),
}


def _create_id_sequences(con: Connection) -> None:
    for sequence, columns in _IDS_IN_USE_V9.items():
        largest = " UNION ALL ".join(
            f"SELECT max({column}) AS id FROM {table}" for table, column in columns
        )
        row = con.execute(f"SELECT coalesce(max(id), 0) FROM ({largest})").fetchone()
        start = int(row[0]) + 1 if row else 1
        # DDL takes no parameter: the start is a number we computed
        con.execute(f"CREATE SEQUENCE {sequence} START WITH {literal(start)}")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "canonical model: partners, descriptors, identity, analytic facts",
        frozen_statements(1),
        _seed_descriptors,
    ),
    Migration(2, "school years and instructional calendars", frozen_statements(2)),
    Migration(
        3,
        "partner contacts, agreement versions, commitments, feeds, data-use requests",
        frozen_statements(3),
    ),
    Migration(
        4,
        "ingestion: quarantine, per-entity counts, replacements, raw-file decisions; "
        "analytic tables keep their natural keys by validation, not an index",
        frozen_statements(4),
    ),
    Migration(
        5,
        "identity resolution: link runs, evidence, clerical review, person events, "
        "privacy-preserving encodings; the school a partner names",
        frozen_statements(5),
    ),
    Migration(
        6,
        "policy: users and tokens, the hash-chained audit log, the release ledger, "
        "the differential-privacy budget, purges; families' consent",
        frozen_statements(6),
    ),
    Migration(
        7,
        "early warning: indicator components per record and snapshot day, "
        "versioned indicator definitions, trained risk models",
        frozen_statements(7),
    ),
    Migration(
        8,
        "funders' initiatives: description, target outcomes, minimum dosage",
        frozen_statements(8),
    ),
    Migration(
        9,
        "ids from sequences: submissions, link runs, persons, commitments, releases, "
        "purges and risk models, each starting after the largest id already used",
        (),
        _create_id_sequences,
    ),
    Migration(
        10,
        "the release audit's state kept between releases: units and their atoms, "
        "atoms, the known and target rows over them, how far it is in step",
        (
            "CREATE TABLE gov.release_unit (unit VARCHAR NOT NULL, "
            "atom BIGINT NOT NULL)",
            "CREATE TABLE gov.release_atom (atom BIGINT NOT NULL, "
            "units BIGINT NOT NULL, threshold INTEGER NOT NULL)",
            "CREATE TABLE gov.release_row (row_id BIGINT NOT NULL, "
            "atom BIGINT NOT NULL)",
            "CREATE TABLE gov.release_row_info (row_id BIGINT NOT NULL, "
            "kind VARCHAR NOT NULL, threshold INTEGER NOT NULL)",
            "CREATE TABLE gov.release_audit_state (identity VARCHAR NOT NULL, "
            "through_release BIGINT NOT NULL, next_atom BIGINT NOT NULL, "
            "next_row BIGINT NOT NULL)",
        ),
    ),
    Migration(
        11,
        "rows a mapping skips on purpose, counted per submission and entity; "
        "schools and programs that close; a birth year and quarter for partners "
        "that send no full birth date",
        (
            "ALTER TABLE identity.partner_record ADD COLUMN birth_year SMALLINT",
            "ALTER TABLE identity.partner_record ADD COLUMN birth_quarter SMALLINT",
            "ALTER TABLE ops.submission ADD COLUMN rows_skipped BIGINT",
            "ALTER TABLE ops.submission_target ADD COLUMN rows_skipped BIGINT",
            "ALTER TABLE ref.school ADD COLUMN closed_on DATE",
            "ALTER TABLE ref.program ADD COLUMN closed_on DATE",
        ),
    ),
    Migration(
        12,
        "a second factor for signing in to the web site: each user's TOTP secret",
        ("ALTER TABLE gov.principal ADD COLUMN totp_secret VARCHAR",),
    ),
    Migration(
        13,
        "who issued each API token, and whether after a second factor: a token "
        "that reaches the API stands in for a second factor an agreement requires",
        (
            "ALTER TABLE gov.api_token ADD COLUMN issued_by VARCHAR",
            "ALTER TABLE gov.api_token ADD COLUMN after_second_factor BOOLEAN",
        ),
    ),
    Migration(
        14,
        "the sign-in throttle, shared by the command line, the web site and the API",
        (
            "CREATE TABLE gov.sign_in_failure (subject VARCHAR NOT NULL, "
            "failures INTEGER NOT NULL, last_failed_at TIMESTAMP NOT NULL, "
            "PRIMARY KEY (subject))",
        ),
    ),
    Migration(
        15,
        "a steward admin's confirmation that a partner serves the person of a record",
        (
            "CREATE TABLE gov.held_confirmation (partner_id VARCHAR NOT NULL, "
            "local_id VARCHAR NOT NULL, person_id BIGINT NOT NULL, "
            "confirmed_by VARCHAR NOT NULL, "
            "confirmed_at TIMESTAMP NOT NULL, reason VARCHAR NOT NULL, "
            "PRIMARY KEY (partner_id, local_id))",
        ),
    ),
    Migration(
        16,
        "each user's last second-factor code taken, so that none is taken twice",
        (
            "CREATE TABLE gov.second_factor_step (user_id VARCHAR NOT NULL, "
            "last_step BIGINT NOT NULL, PRIMARY KEY (user_id))",
        ),
    ),
    # Append new steps here, with their SQL inline or in frozen_ddl/NNNN.sql.
)

CURRENT_VERSION = MIGRATIONS[-1].version


def schema_version(con: Connection) -> int:
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
    con: Connection,
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
                "INSERT INTO ops.schema_migration "
                "(version, description, applied_at, backbone_version) "
                "VALUES (?, ?, ?, ?)",
                [
                    migration.version,
                    migration.description,
                    datetime.now(UTC).replace(tzinfo=None),
                    __version__,
                ],
            )
        con.execute(
            "INSERT OR REPLACE INTO ops.meta (key, value) VALUES ('schema_version', ?)",
            [str(pending[-1].version)],
        )
    return pending
