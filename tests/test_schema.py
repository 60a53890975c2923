import duckdb
import pytest

from backbone.errors import UserError
from backbone.model import DESCRIPTORS, descriptor_uri, parse_descriptor_uri
from backbone.model.descriptors import descriptor_rows, grade_level_name
from backbone.model.migrations import CURRENT_VERSION, migrate
from backbone.model.schema import (
    ALL_TABLES,
    ANALYTIC_TABLES,
    Column,
    Table,
    create_table_sql,
)


def test_create_table_sql_is_plain_ddl() -> None:
    table = Table(
        "ref",
        "thing",
        (Column("id", "VARCHAR", nullable=False), Column("n", "INTEGER")),
        ("id",),
    )
    assert create_table_sql(table) == (
        "CREATE TABLE ref.thing (\n"
        "    id VARCHAR NOT NULL,\n"
        "    n INTEGER,\n"
        "    PRIMARY KEY (id)\n"
        ")"
    )


@pytest.mark.parametrize("table", ANALYTIC_TABLES, ids=lambda t: t.name)
def test_every_analytic_row_carries_provider_and_submission(table: Table) -> None:
    names = [c.name for c in table.columns]
    assert names[0] == "provider_partner_id"
    assert "submission_id" in names
    assert table.primary_key[0] == "provider_partner_id"
    if table.person_level:
        assert names[1] == "student_local_id"


def test_no_identifying_field_in_analytic_tables() -> None:
    identifying = {"first_name", "last_surname", "middle_name", "birth_date", "address"}
    for table in ANALYTIC_TABLES:
        assert identifying.isdisjoint(c.name for c in table.columns), table.name


def test_every_descriptor_a_column_names_is_shipped() -> None:
    for table in ALL_TABLES:
        for column in table.columns:
            if column.descriptor:
                assert column.descriptor in DESCRIPTORS, (table.name, column.name)


def test_table_names_are_unique() -> None:
    names = [t.qualified_name for t in ALL_TABLES]
    assert len(names) == len(set(names))


def test_descriptor_uris_round_trip() -> None:
    uri = descriptor_uri("AttendanceEventCategoryDescriptor", "Unexcused Absence")
    assert uri == "uri://ed-fi.org/AttendanceEventCategoryDescriptor#Unexcused Absence"
    parsed = parse_descriptor_uri(uri)
    assert parsed.namespace == "uri://ed-fi.org"
    assert parsed.descriptor_name == "AttendanceEventCategoryDescriptor"
    assert parsed.code_value == "Unexcused Absence"
    local = parse_descriptor_uri(
        "uri://doe.k12.de.us/AttendanceEventCategoryDescriptor#SGE"
    )
    assert local.namespace == "uri://doe.k12.de.us"
    assert local.code_value == "SGE"


@pytest.mark.parametrize(
    "bad", ["Unexcused", "uri://ed-fi.org/Thing#X", "uri://x/ADescriptor#"]
)
def test_malformed_descriptor_uri_is_a_user_error(bad: str) -> None:
    with pytest.raises(UserError, match="not an Ed-Fi descriptor URI"):
        parse_descriptor_uri(bad)


def test_grade_levels_are_ordered_by_grade_number() -> None:
    assert grade_level_name(0) == "Kindergarten"
    assert grade_level_name(9) == "Ninth grade"
    rows = {(r[0], r[1]): r[4] for r in descriptor_rows()}
    assert rows[("GradeLevelDescriptor", "Twelfth grade")] == 12


def test_migrations_build_every_declared_table_and_seed_descriptors() -> None:
    con = duckdb.connect()
    applied = migrate(con)
    assert [m.version for m in applied] == list(range(1, CURRENT_VERSION + 1))
    existing = {
        f"{s}.{n}"
        for s, n in con.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
        ).fetchall()
    }
    assert {t.qualified_name for t in ALL_TABLES} <= existing
    count = con.execute("SELECT count(*) FROM ref.descriptor").fetchone()
    assert count is not None and count[0] == len(descriptor_rows())
    assert migrate(con) == []  # idempotent
