import pytest

from backbone import Warehouse
from backbone.errors import UserError
from backbone.model.codes import canonical_code_sql


def test_sql_names_partner_descriptor_and_column() -> None:
    sql = canonical_code_sql("code", "d'04", "AttendanceEventCategoryDescriptor")
    assert "m.partner_id = 'd''04'" in sql
    assert "CAST(code AS VARCHAR)" in sql
    assert sql.startswith("coalesce(")


def test_local_codes_translate_and_unknown_ones_are_null(warehouse: Warehouse) -> None:
    with warehouse.session() as s:  # a new warehouse: set up by its holder
        warehouse.descriptor_maps.set(
            s,
            "d04",
            "AttendanceEventCategoryDescriptor",
            {"1": "Excused Absence", "2": "Unexcused Absence", "3": "Tardy"},
        )
    expr = canonical_code_sql("code", "d04", "AttendanceEventCategoryDescriptor")
    rows = warehouse._con.execute(
        f"SELECT code, {expr} FROM (VALUES ('2'), ('3'), ('9'), ('Tardy')) t(code) "
        "ORDER BY code"
    ).fetchall()
    assert rows == [
        ("2", "Unexcused Absence"),
        ("3", "Tardy"),
        ("9", None),
        ("Tardy", "Tardy"),  # canonical values pass through
    ]
    # another partner's '2' means nothing here
    other = canonical_code_sql("'2'", "d02", "AttendanceEventCategoryDescriptor")
    assert warehouse._con.execute(f"SELECT {other}").fetchone() == (None,)


def test_maps_refuse_values_that_are_not_canonical(warehouse: Warehouse) -> None:
    with (
        pytest.raises(
            UserError,
            match="'Skipped' is not a AttendanceEventCategoryDescriptor value; use one of",
        ),
        warehouse.session() as s,
    ):
        warehouse.descriptor_maps.set(
            s, "d04", "AttendanceEventCategoryDescriptor", {"S": "Skipped"}
        )
    with (
        pytest.raises(UserError, match="no descriptor 'MoodDescriptor'; use one of"),
        warehouse.session() as s,
    ):
        warehouse.descriptor_maps.set(s, "d04", "MoodDescriptor", {"H": "Happy"})
    assert (
        warehouse.descriptor_maps.get("d04", "AttendanceEventCategoryDescriptor") == {}
    )
