"""Migrations run frozen SQL: an old warehouse migrates the same whatever today's
declarations say, and every road (fresh, from any earlier version, from a warehouse
an earlier release wrote) ends at the schema ``model/schema/`` declares."""

from __future__ import annotations

import getpass
import gzip
import hashlib
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from backbone import Warehouse
from backbone.engines import next_id
from backbone.governance.audit import AuditEntry, AuditLog
from backbone.model.migrations import CURRENT_VERSION, MIGRATIONS, migrate
from backbone.model.schema import (
    ALL_TABLES,
    ID_SEQUENCES,
    create_sequence_sql,
    create_table_sql,
)
from backbone.settings import render_settings_toml
from backbone.warehouse import SchemaMigration

STORED_V4 = Path(__file__).parent / "data" / "v4-warehouse"

# sha256 of each shipped step (its description and statements). A step that has run
# in anyone's warehouse is never edited: change the schema by appending a step, and
# pin it here once it ships.
SHIPPED = {
    1: "81b6f13ce8df5db9061d17cec69e20d686cf7ce78c9699bc6e56f160df69a200",
    2: "ab6b567542686c7aa37b3e5904d1eb209ea01e918ef921fb2eac8c2ddb541541",
    3: "615e37e07a54be7206ac9bd1602c85ccceeaa8cfef5cb35611b1f3a249340db0",
    4: "a85b71ffde0b1f8cf32763d28254f930caea1892aa6b5851ec8aad13f6b56270",
    5: "8d6cd5ea2ad609bf65403696f008b13e1c39a9f464d476073aa047473e26ac16",
    6: "5fc698722121eaa86281bf1de5ed5c78b03d744be47699134791871da306073e",
    7: "8792b30da079c73c8c337e1f3dcff3b39f128ebfc5fd7a9fd7ede65e3e0cb774",
    8: "6dc8b374ab51d72bd7b4fabfca1881eec82a1f1f666ddf0902c3790152a24509",
}


def fingerprint(version: int) -> str:
    [step] = [m for m in MIGRATIONS if m.version == version]
    text = "\n;\n".join((step.description, *step.statements))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def schema_of(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[Any, ...]]]:
    """Everything that makes a schema, in a comparable form: columns in order with
    type, nullability and default; constraints; sequences; indexes."""
    queries = {
        "columns": "SELECT table_schema, table_name, ordinal_position, column_name, "
        "data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_catalog = current_database()",
        "constraints": "SELECT schema_name, table_name, constraint_type, "
        "constraint_column_names, expression FROM duckdb_constraints() "
        "WHERE database_name = current_database()",
        "sequences": "SELECT schema_name, sequence_name FROM duckdb_sequences() "
        "WHERE database_name = current_database()",
        "indexes": "SELECT schema_name, table_name, index_name, expressions "
        "FROM duckdb_indexes() WHERE database_name = current_database()",
    }
    return {
        what: sorted(map(tuple, con.execute(sql).fetchall()), key=repr)
        for what, sql in queries.items()
    }


def fresh_schema() -> dict[str, list[tuple[Any, ...]]]:
    con = duckdb.connect()
    migrate(con)
    return schema_of(con)


def test_every_shipped_step_runs_the_sql_it_shipped_with() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, CURRENT_VERSION + 1))
    changed = {
        version: fingerprint(version)
        for version, pinned in SHIPPED.items()
        if fingerprint(version) != pinned
    }
    assert changed == {}, (
        "a shipped migration was edited; restore it and append a new step instead"
    )


def test_a_fresh_warehouse_has_exactly_the_declared_schema() -> None:
    """The declarations and the migrations agree: a column added to a declaration
    without a migration step that adds it fails here."""
    declared = duckdb.connect()
    for schema in sorted({t.schema for t in ALL_TABLES}):
        declared.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for t in ALL_TABLES:
        # analytic facts keep their natural keys by validation (migration 4), and
        # the linker keeps link_edge's (migration 5): no index on either
        enforce_key = t.schema != "analytic" and t.qualified_name != (
            "identity.link_edge"
        )
        declared.execute(create_table_sql(t, enforce_key=enforce_key))
    for sequence in ID_SEQUENCES:
        declared.execute(create_sequence_sql(sequence))
    assert fresh_schema() == schema_of(declared)


def test_id_sequences_start_after_every_id_a_warehouse_already_used() -> None:
    """Ids came from ``max() + 1`` before step 9: its sequences go on after the
    largest id anywhere, a person only a merge's evidence still names included, so
    no id is ever handed out twice."""
    con = duckdb.connect()
    migrate(con, target=8)
    con.execute(
        "INSERT INTO identity.person (person_id, created_at) "
        "VALUES (3, TIMESTAMP '2025-01-01')"
    )
    con.execute(
        "INSERT INTO identity.person_event VALUES "
        "(2, 'merge', 3, 7, 1, '[]', TIMESTAMP '2025-01-02')"
    )
    migrate(con)
    assert next_id(con, "identity.person_id_seq") == 8
    assert next_id(con, "identity.person_id_seq") == 9
    assert next_id(con, "identity.link_run_id_seq") == 3
    assert next_id(con, "ops.submission_id_seq") == 1


@pytest.mark.parametrize("start", range(1, CURRENT_VERSION))
def test_migrating_from_an_earlier_version_ends_like_a_fresh_warehouse(
    start: int,
) -> None:
    con = duckdb.connect()
    migrate(con, target=start)
    con.execute(
        "INSERT INTO ref.partner (partner_id, name, kind, created_at) "
        "VALUES ('d1', 'District One', 'school_district', TIMESTAMP '2025-01-01')"
    )
    applied = migrate(con)
    assert [m.version for m in applied] == list(range(start + 1, CURRENT_VERSION + 1))
    assert schema_of(con) == fresh_schema()
    assert con.execute("SELECT partner_id, name FROM ref.partner").fetchall() == [
        ("d1", "District One")
    ]


def _rows(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]) -> list[Any]:
    listed = ", ".join(f'"{c}"' for c in columns)
    return sorted(
        map(tuple, con.execute(f"SELECT {listed} FROM {table}").fetchall()), key=repr
    )


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for schema, table, column in con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = current_database() "
        "ORDER BY table_schema, table_name, ordinal_position"
    ).fetchall():
        found.setdefault(f"{schema}.{table}", []).append(column)
    return found


def test_a_warehouse_an_earlier_release_wrote_migrates_with_its_data(
    tmp_path: Path,
) -> None:
    """tests/data/v4-warehouse was written by Backbone at schema version 4 (see
    make_v4_warehouse.py): a district, its agreement and feeds, and three files
    submitted (one with a quarantined row, one with six)."""
    path = tmp_path / "wh"
    shutil.copytree(STORED_V4, path, ignore=shutil.ignore_patterns("*.gz"))
    with (
        gzip.open(STORED_V4 / "backbone.duckdb.gz") as packed,
        (path / "backbone.duckdb").open("wb") as database,
    ):
        shutil.copyfileobj(packed, database)
    old = duckdb.connect(str(path / "backbone.duckdb"), read_only=True)
    old_tables = _tables(old)
    before = {
        table: _rows(old, table, columns) for table, columns in old_tables.items()
    }
    old.close()
    assert len(before["ops.schema_migration"]) == 4

    at = datetime(2026, 5, 4, 3, 2, 1)
    assert Warehouse.migrate(path, clock=lambda: at) == SchemaMigration(
        4, CURRENT_VERSION
    )

    with Warehouse.open(path, read_only=True) as wh:
        assert wh.schema_version == CURRENT_VERSION
        # one audit entry, who ran the step, from which version to which (a version
        # 4 warehouse kept no audit log: step 6 made it, so the chain starts here)
        [entry] = wh.audit.entries()
        assert (entry.seq, entry.action, entry.at) == (1, "migration", at)
        assert entry.actor == f"system:{getpass.getuser()}"
        assert entry.what == f"schema version 4 -> {CURRENT_VERSION}"
        assert entry.detail["steps"] == list(range(5, CURRENT_VERSION + 1))
        assert (entry.detail["from_version"], entry.detail["to_version"]) == (
            4,
            CURRENT_VERSION,
        )
        assert wh.audit.verify().ok
    # nothing to do, nothing recorded
    assert not Warehouse.migrate(path).changed
    with Warehouse.open(path, read_only=True) as wh:
        assert wh.audit.head().seq == 1
        assert {p.partner_id for p in wh.partners.list()} == {"b0", "d1", "c1", "f1"}
        assert sorted(f.feed_id for f in wh.feeds.list("d1")) == [
            "attendance",
            "records",
        ]
    con = duckdb.connect(str(path / "backbone.duckdb"), read_only=True)
    assert schema_of(con) == fresh_schema()
    # its three submissions keep their ids; the next is the fourth
    assert con.execute(
        "SELECT start_value FROM duckdb_sequences() "
        "WHERE sequence_name = 'submission_id_seq'"
    ).fetchone() == (4,)
    # every row the old warehouse held is still there, column for column (the
    # version and the migration log move on)
    changed = [
        table
        for table, columns in old_tables.items()
        if table not in ("ops.meta", "ops.schema_migration")
        and _rows(con, table, columns) != before[table]
    ]
    assert changed == []
    assert con.execute("SELECT count(*) FROM identity.partner_record").fetchone() == (
        4,
    )
    assert con.execute(
        "SELECT file_name, status, rows_read, rows_loaded, rows_quarantined "
        "FROM ops.submission ORDER BY submission_id"
    ).fetchall() == [
        ("students.csv", "loaded", 4, 4, 0),
        ("enroll.csv", "loaded", 4, 3, 1),
        ("attendance.csv", "loaded", 8, 2, 6),
    ]
    con.close()


def test_a_migration_is_audited_on_the_chain_the_warehouse_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wh"
    path.mkdir()
    (path / "backbone.toml").write_text(render_settings_toml(), encoding="utf-8")
    con = duckdb.connect(str(path / "backbone.duckdb"))
    migrate(con, target=CURRENT_VERSION - 1)
    earlier = datetime(2025, 1, 1)
    AuditLog(con, lambda: earlier).append(AuditEntry("read", "d1.analyst"))
    con.close()

    now = datetime(2026, 1, 2, 3, 4, 5)
    assert Warehouse.migrate(path, clock=lambda: now).changed
    with Warehouse.open(path, read_only=True) as wh:
        first, entry = wh.audit.entries()
        assert (first.action, first.at) == ("read", earlier)
        assert (entry.seq, entry.action, entry.at) == (2, "migration", now)
        assert entry.actor == f"system:{getpass.getuser()}"
        assert entry.what == (
            f"schema version {CURRENT_VERSION - 1} -> {CURRENT_VERSION}"
        )
        assert wh.audit.verify().ok
