"""Graduates' college outcomes (NSC StudentTracker for High Schools style) on a small
locked database shaped like the release gate's: one table per entity with provider,
unit and record, plus the reference tables. Each expected answer is worked out by
hand in the comments; the windows are those of ``graduate_outcomes_sql``'s
docstring."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from backbone.governance.access import locked_connection
from backbone.measures.college_sql import (
    COLLEGE_MEASURES,
    graduate_outcomes_column_names,
    graduate_outcomes_sql,
)

AS_OF = date(2027, 6, 30)
D = date

# --- the fixture ------------------------------------------------------------------

KEYS = [("provider", pa.string()), ("unit", pa.string()), ("record", pa.string())]
SCHEMAS: dict[str, list[tuple[str, pa.DataType]]] = {
    "graduation": [
        *KEYS,
        ("school_id", pa.string()),
        ("graduation_date", pa.date32()),
        ("diploma_type", pa.string()),
        ("class_of_school_year", pa.int16()),
    ],
    "postsecondary_enrollment": [
        *KEYS,
        ("institution_id", pa.string()),
        ("term_name", pa.string()),
        ("term_begin_date", pa.date32()),
        ("term_end_date", pa.date32()),
        ("enrollment_status", pa.string()),
        ("credits_attempted", pa.decimal128(5, 2)),
        ("credits_earned", pa.decimal128(5, 2)),
        ("term_gpa", pa.decimal128(4, 2)),
    ],
    "postsecondary_event": [
        *KEYS,
        ("event_date", pa.date32()),
        ("postsecondary_event_category", pa.string()),
        ("institution_id", pa.string()),
        ("degree_type", pa.string()),
    ],
    "demographics": [
        *KEYS,
        ("as_of_date", pa.date32()),
        ("sex", pa.string()),
        ("hispanic_latino_ethnicity", pa.bool_()),
        ("race", pa.string()),
        ("economic_disadvantaged", pa.bool_()),
        ("english_learner", pa.bool_()),
        ("disability", pa.bool_()),
    ],
    "school": [
        ("school_id", pa.string()),
        ("partner_id", pa.string()),
        ("name", pa.string()),
        ("school_level", pa.string()),
    ],
    "postsecondary_institution": [
        ("institution_id", pa.string()),
        ("name", pa.string()),
        ("level", pa.string()),
        ("control", pa.string()),
        ("state", pa.string()),
    ],
}


def _grad(
    provider: str, unit: str, record: str, school: str, day: date, class_of: int | None
) -> dict[str, Any]:
    return {
        "provider": provider,
        "unit": unit,
        "record": record,
        "school_id": school,
        "graduation_date": day,
        "diploma_type": "Regular diploma",
        "class_of_school_year": class_of,
    }


def _term(
    unit: str,
    record: str,
    institution: str,
    begin: date,
    end: date | None,
    provider: str = "col",
) -> dict[str, Any]:
    season = "Fall" if begin.month >= 7 else "Spring"
    return {
        "provider": provider,
        "unit": unit,
        "record": record,
        "institution_id": institution,
        "term_name": f"{season} {begin.year}",
        "term_begin_date": begin,
        "term_end_date": end,
        "enrollment_status": "Full-time",
        "credits_attempted": None,
        "credits_earned": None,
        "term_gpa": None,
    }


def _event(
    unit: str,
    record: str,
    day: date,
    category: str,
    degree_type: str | None = None,
    provider: str = "col",
) -> dict[str, Any]:
    return {
        "provider": provider,
        "unit": unit,
        "record": record,
        "event_date": day,
        "postsecondary_event_category": category,
        "institution_id": None,
        "degree_type": degree_type,
    }


def _demo(
    provider: str, unit: str, record: str, day: date, **values: object
) -> dict[str, Any]:
    row: dict[str, Any] = {"provider": provider, "unit": unit, "record": record}
    row["as_of_date"] = day
    for col in (
        "sex",
        "hispanic_latino_ethnicity",
        "race",
        "economic_disadvantaged",
        "english_learner",
        "disability",
    ):
        row[col] = values.get(col)
    return row


G25 = D(2025, 6, 5)  # the class of 2025's graduation day
FALL25 = (D(2025, 8, 25), D(2025, 12, 15))
SPRING26 = (D(2026, 1, 15), D(2026, 5, 10))
FALL26 = (D(2026, 8, 25), D(2026, 12, 15))
SPRING27 = (D(2027, 1, 15), D(2027, 5, 10))
ELA, MATH = "Remedial Enrollment - ELA", "Remedial Enrollment - Math"
DEGREE = "College Degree Received"

ROWS: dict[str, list[dict[str, Any]]] = {
    "graduation": [
        _grad("d1", "uA", "gA", "HS1", G25, 2025),
        _grad("d1", "uB", "gB", "HS1", G25, None),
        _grad("d2", "uC", "gC", "HS2", G25, 2025),
        _grad("d1", "uD", "gD", "HS1", G25, 2025),
        _grad("d1", "uE", "gE", "HS1", D(2027, 6, 1), 2027),
        _grad("d2", "uF", "gF", "HS2", D(2018, 6, 8), 2018),
        # G has two graduations: the later one (d1) is not the graduation
        _grad("d1", "uG", "gG1", "HS1", G25, 2025),
        _grad("d2", "uG", "gG2", "HS2", D(2024, 12, 20), None),
        _grad("d1", "uI", "gI", "HS1", G25, 2025),
        _grad("d1", "uJ", "gJ", "HS1", G25, 2025),
        _grad("d1", "uK", "gK", "HS1", G25, 2025),
        # graduating after as_of: not a graduate yet
        _grad("d1", "uL", "gL", "HS1", D(2027, 7, 15), 2027),
    ],
    "postsecondary_enrollment": [
        _term("uA", "tA1", "U4", *FALL25),
        _term("uA", "tA2", "U4", *SPRING26),
        _term("uA", "tA3", "U4", *FALL26),
        _term("uA", "tA4", "U4", *SPRING27),
        _term("uA", "tA5", "U4", D(2027, 8, 25), D(2027, 12, 15)),  # registered ahead
        _term("uB", "tB1", "C2", *FALL25),
        _term("uB", "tB2", "C2", *SPRING26),
        _term("uC", "tC1", "C2", *SPRING26),
        _term("uC", "tC2", "C2", *FALL26),
        _term("uE", "tE1", "U4", D(2027, 8, 25), D(2027, 12, 15)),
        _term("uF", "tF1", "P4", D(2018, 8, 25), D(2018, 12, 15), provider="nsc"),
        _term("uF", "tF2", "P4", D(2019, 8, 25), D(2019, 12, 15), provider="nsc"),
        _term("uF", "tF3", "P4", D(2022, 1, 15), D(2022, 5, 10), provider="nsc"),
        _term("uG", "tG0", "C2", D(2025, 1, 15), D(2025, 5, 10)),
        _term("uG", "tG1", "U4", *FALL25),
        _term("uH", "tH1", "U4", *FALL25),  # H never graduated
        _term("uI", "tI0", "C2", D(2025, 1, 15), D(2025, 5, 10)),  # dual enrollment
        _term("uI", "tI1", "C2", *FALL25),
        _term("uI", "tI2", "P4", D(2025, 8, 25), None),
        _term("uJ", "tJ0", "C2", D(2025, 7, 1), D(2025, 8, 10)),  # summer bridge
        _term("uK", "tK1", "X9", D(2025, 10, 15), None),  # X9: not in the reference
    ],
    "postsecondary_event": [
        _event("uC", "eC1", SPRING26[0], MATH),
        _event("uF", "eF1", D(2022, 5, 20), DEGREE, "Bachelor's degree", "nsc"),
        _event("uF", "eF2", D(2019, 5, 1), "Certification Received", None, "nsc"),
        _event("uF", "eF3", D(2018, 8, 25), ELA),
        _event("uH", "eH1", D(2025, 8, 25), MATH),
    ],
    "demographics": [
        _demo(
            "d1",
            "uA",
            "dA1",
            D(2024, 10, 1),
            sex="Female",
            race="White",
            hispanic_latino_ethnicity=False,
            economic_disadvantaged=True,
            english_learner=False,
            disability=False,
        ),
        # after graduation: not used
        _demo("d1", "uA", "dA2", D(2025, 9, 1), sex="Female", economic_disadvantaged=False),
        _demo(
            "d1",
            "uB",
            "dB1",
            D(2024, 10, 1),
            sex="Female",
            race="Black or African American",
            hispanic_latino_ethnicity=False,
            economic_disadvantaged=True,
            english_learner=True,
            disability=False,
        ),
        # a community organization that shares sex only: latest for sex, nothing else
        _demo("cbo", "uB", "dB2", D(2025, 5, 1), sex="Male"),
        _demo(
            "d2",
            "uC",
            "dC1",
            D(2025, 3, 1),
            sex="Female",
            race="Asian",
            hispanic_latino_ethnicity=True,
            economic_disadvantaged=False,
            english_learner=True,
            disability=True,
        ),
        _demo("d1", "uH", "dH1", D(2024, 10, 1), sex="Male"),
    ],
    "school": [
        {"school_id": "HS1", "partner_id": "d1", "name": "North High", "school_level": "High"},
        {"school_id": "HS2", "partner_id": "d2", "name": "South High", "school_level": "High"},
    ],
    "postsecondary_institution": [
        {"institution_id": "U4", "name": "State U", "level": "Four-year", "control": "Public", "state": "NY"},
        {"institution_id": "C2", "name": "County CC", "level": "Two-year", "control": "Public", "state": "NY"},
        {"institution_id": "P4", "name": "Private C", "level": "Four-year", "control": "Private", "state": "PA"},
    ],
}  # fmt: skip


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    tables = {
        name: pa.Table.from_pylist(ROWS[name], schema=pa.schema(cols))
        for name, cols in SCHEMAS.items()
    }
    c = locked_connection(tables)
    yield c
    c.close()


def _run(
    con: duckdb.DuckDBPyConnection, as_of: date = AS_OF, **kw: Any
) -> tuple[list[str], list[dict[str, Any]]]:
    kw.setdefault("start_month", 7)
    sql, params = graduate_outcomes_sql(as_of, **kw)
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return names, [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


PERSON = [
    "high_school_id",
    "class_of",
    "graduation_date",
    "enrolled_first_fall",
    "enrolled_year_one",
    "enrolled_year_two",
    "first_level",
    "first_control",
    "persisted",
    "remedial_ela",
    "remedial_math",
    "degree_within_6",
    "degree_level",
    "sex",
    "race",
    "hispanic_latino_ethnicity",
    "economic_disadvantaged",
    "english_learner",
    "disability",
]
N = None
NO_DEMO = (N, N, N, N, N, N)

# Class of 2025 (graduated 2025-06-05), read on 2027-06-30: first fall is
# 2025-08-15..10-31 (elapsed), year one ends 2026-06-05, year two 2027-06-05 (both
# elapsed), the persistence fall is 2026-08-01..12-31 (elapsed); six years end
# 2031-06-05 (not elapsed: degree NULL).
EXPECTED: dict[str, tuple[tuple[object, ...], set[tuple[str, str]]]] = {
    # A: fall 2025 at a public four-year, fall 2026 again: persists. All four
    # terms are in year two; tA5 (fall 2027) is in no window. Demographics from
    # dA1 (dA2 is after graduation).
    "uA": (
        ("HS1", 2025, G25, "yes", "yes", "yes", "Four-year", "Public", "yes",
         "no", "no", N, N, "Female", "White", False, True, False, False),
        {("d1", "gA"), ("col", "tA1"), ("col", "tA2"), ("col", "tA3"),
         ("col", "tA4"), ("d1", "dA1")},
    ),
    # B: two-year in fall and spring, nothing the next fall: does not persist.
    # class_of from the date (June 2025 -> 2025). Sex from the later cbo row,
    # the rest from the district's.
    "uB": (
        ("HS1", 2025, G25, "yes", "yes", "yes", "Two-year", "Public", "no",
         "no", "no", N, N, "Male", "Black or African American", False, True,
         True, False),
        {("d1", "gB"), ("col", "tB1"), ("col", "tB2"), ("d1", "dB1"),
         ("cbo", "dB2")},
    ),
    # C: delayed (spring 2026 first): no first fall, yes year one; persistence
    # only asked of first-fall enrollees (NULL); remedial math only. tC2 (fall
    # 2026) counts for year two.
    "uC": (
        ("HS2", 2025, G25, "no", "yes", "yes", "Two-year", "Public", N,
         "no", "yes", N, N, "Female", "Asian", True, False, True, True),
        {("d2", "gC"), ("col", "tC1"), ("col", "tC2"), ("col", "eC1"),
         ("d2", "dC1")},
    ),
    # D: never enrolled: three noes, the rest not asked; the graduation alone.
    "uD": (
        ("HS1", 2025, G25, "no", "no", "no", N, N, N, N, N, N, N, *NO_DEMO),
        {("d1", "gD")},
    ),
    # E: graduated 2027-06-01; on 2027-06-30 no window has passed: all NULL, and
    # the registered fall 2027 term made no value.
    "uE": (
        ("HS1", 2027, D(2027, 6, 1), N, N, N, N, N, N, N, N, N, N, *NO_DEMO),
        {("d1", "gE")},
    ),
    # F: class of 2018 (2018-06-08): private four-year falls 2018 and 2019
    # (persists; 2019-08-25 is within 730 days, by 2020-06-07), remedial ELA on
    # 2018-08-25, bachelor's on 2022-05-20 (six years end 2024-06-08). The
    # certification (eF2) is no degree and tF3 (2022) is in no window.
    "uF": (
        ("HS2", 2018, D(2018, 6, 8), "yes", "yes", "yes", "Four-year", "Private",
         "yes", "yes", "no", "yes", "Bachelor's", *NO_DEMO),
        {("d2", "gF"), ("nsc", "tF1"), ("nsc", "tF2"), ("nsc", "eF1"),
         ("col", "eF3")},
    ),
    # G: graduated mid-year 2024-12-20 (d2, earliest of two; class 2025 by the
    # July 1 rule; first fall is fall 2025, the next after Oct 31). Spring 2025 at a
    # two-year is the first college (year one ends 2025-12-20), fall 2025 at a
    # four-year is the first fall; nothing in fall 2026: no persistence. The d1
    # graduation row made nothing.
    "uG": (
        ("HS2", 2025, D(2024, 12, 20), "yes", "yes", "yes", "Two-year", "Public",
         "no", "no", "no", N, N, *NO_DEMO),
        {("d2", "gG2"), ("col", "tG0"), ("col", "tG1")},
    ),
    # I: spring 2025 before graduating is dual enrollment (not counted, not
    # used); two fall terms on one day, one without an end: four-year first.
    "uI": (
        ("HS1", 2025, G25, "yes", "yes", "yes", "Four-year", "Private", "no",
         "no", "no", N, N, *NO_DEMO),
        {("d1", "gI"), ("col", "tI1"), ("col", "tI2")},
    ),
    # J: a summer bridge ending 2025-08-10 does not touch Aug 15: no first fall,
    # but yes year one.
    "uJ": (
        ("HS1", 2025, G25, "no", "yes", "yes", "Two-year", "Public", N,
         "no", "no", N, N, *NO_DEMO),
        {("d1", "gJ"), ("col", "tJ0")},
    ),
    # K: a term without an end beginning 2025-10-15 is a first fall; its college is
    # not in the reference table: level and control Unknown.
    "uK": (
        ("HS1", 2025, G25, "yes", "yes", "yes", "Unknown", "Unknown", "no",
         "no", "no", N, N, *NO_DEMO),
        {("d1", "gK"), ("col", "tK1")},
    ),
}  # fmt: skip


def _by_unit(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault(r["unit"], []).append(r)
    return out


def _input_keys() -> set[tuple[str, str, str]]:
    return {
        (r["provider"], r["unit"], r["record"])
        for name in (
            "graduation",
            "postsecondary_enrollment",
            "postsecondary_event",
            "demographics",
        )
        for r in ROWS[name]
    }


# --- tests ------------------------------------------------------------------------


def test_columns_in_order(con: duckdb.DuckDBPyConnection) -> None:
    names, _ = _run(con)
    assert names == ["provider", "unit", "record", *PERSON]
    assert tuple(names) == graduate_outcomes_column_names()
    assert list(COLLEGE_MEASURES) == names[6:16]
    sql, params = graduate_outcomes_sql(AS_OF, start_month=7)
    types = {r[0]: r[1] for r in con.execute(f"DESCRIBE ({sql})", params).fetchall()}
    assert types["class_of"] == "SMALLINT"
    assert types["graduation_date"] == "DATE"
    assert all(types[c] == "VARCHAR" for c in COLLEGE_MEASURES)


def test_every_graduate_worked_out_by_hand(con: duckdb.DuckDBPyConnection) -> None:
    _, rows = _run(con)
    units = _by_unit(rows)
    # H has college records but no graduation; L graduates after as_of
    assert set(units) == set(EXPECTED)
    for unit, (values, records) in EXPECTED.items():
        got = units[unit]
        assert {(r["provider"], r["record"]) for r in got} == records, unit
        assert len(got) == len(records), unit  # each record once
        for r in got:  # the person's values repeated on every record
            assert tuple(r[c] for c in PERSON) == values, (unit, r["record"])


def test_records_are_real_and_include_the_graduation(
    con: duckdb.DuckDBPyConnection,
) -> None:
    _, rows = _run(con)
    keys = {(r["provider"], r["unit"], r["record"]) for r in rows}
    assert len(keys) == len(rows)
    assert keys <= _input_keys()
    grads = {(g["provider"], g["unit"], g["record"]) for g in ROWS["graduation"]}
    for unit, got in _by_unit(rows).items():
        mine = {(r["provider"], r["unit"], r["record"]) for r in got} & grads
        assert len(mine) == 1, unit  # exactly one graduation record: the one used
    assert ("d1", "uG", "gG1") not in keys


def test_windows_not_yet_elapsed_are_null(con: duckdb.DuckDBPyConnection) -> None:
    # On 2026-09-01 the class of 2025 has passed its first fall and year one
    # (2026-06-05), not year two (2027-06-05) nor the persistence fall
    # (ends 2026-12-31): those, and remediation (two years), are NULL. A's fall 2026
    # term (tA3) made no value yet; tA4 (2027) is in no elapsed window.
    _, rows = _run(con, date(2026, 9, 1))
    units = _by_unit(rows)
    a = units["uA"][0]
    assert (
        a["enrolled_first_fall"],
        a["enrolled_year_one"],
        a["enrolled_year_two"],
        a["first_level"],
        a["persisted"],
        a["remedial_ela"],
        a["remedial_math"],
    ) == ("yes", "yes", None, "Four-year", None, None, None)
    assert {r["record"] for r in units["uA"]} == {"gA", "tA1", "tA2", "dA1"}
    # C's remediation is within two years but that window is open
    c = units["uC"][0]
    assert (c["enrolled_year_one"], c["remedial_math"]) == ("yes", None)
    assert {r["record"] for r in units["uC"]} == {"gC", "tC1", "dC1"}
    # E graduated after 2026-09-01: not a graduate yet
    assert "uE" not in units
    # on 2025-10-31 the first fall has not ended
    _, rows = _run(con, date(2025, 10, 31))
    assert {r["enrolled_first_fall"] for r in rows if r["unit"] == "uA"} == {None}
    _, rows = _run(con, date(2025, 11, 1))
    assert {r["enrolled_first_fall"] for r in rows if r["unit"] == "uA"} == {"yes"}


def test_degree_years_parameter(con: duckdb.DuckDBPyConnection) -> None:
    # three years from 2018-06-08 end 2021-06-08, before the 2022 bachelor's: no
    names, rows = _run(con, degree_years=3)
    assert "degree_within_3" in names and "degree_within_6" not in names
    f = [r for r in rows if r["unit"] == "uF"]
    assert {(r["degree_within_3"], r["degree_level"]) for r in f} == {("no", None)}
    assert "eF1" not in {r["record"] for r in f}
    # four years end 2022-06-08: yes
    _, rows = _run(con, degree_years=4)
    f = [r for r in rows if r["unit"] == "uF"]
    assert {(r["degree_within_4"], r["degree_level"]) for r in f} == {
        ("yes", "Bachelor's")
    }
    for bad in (0, 21, True):
        with pytest.raises(ValueError):
            graduate_outcomes_sql(AS_OF, start_month=7, degree_years=bad)


@pytest.mark.parametrize(("start_month", "class_of"), [(7, 2025), (6, 2026), (1, 2025)])
def test_a_class_from_the_date_follows_the_school_year_start(
    con: duckdb.DuckDBPyConnection, start_month: int, class_of: int
) -> None:
    # B graduated on 2025-06-05 with no class stated: the school year of the date
    _, rows = _run(con, start_month=start_month)
    assert {r["class_of"] for r in rows if r["unit"] == "uB"} == {class_of}
    # A's stated class stands whatever the calendar
    assert {r["class_of"] for r in rows if r["unit"] == "uA"} == {2025}


def test_without_demographics(con: duckdb.DuckDBPyConnection) -> None:
    names, rows = _run(con, demographics=False)
    assert names == ["provider", "unit", "record", *PERSON]
    assert all(r["sex"] is None and r["disability"] is None for r in rows)
    assert not any(r["record"].startswith("d") for r in rows)


def test_pure_and_parameterised() -> None:
    sql, params = graduate_outcomes_sql(AS_OF, start_month=7)
    assert sql.count("?") == len(params)
    assert params[sql[: sql.index("?")].count("?")] == AS_OF  # the first is as_of
    assert "2027" not in sql  # the day is a parameter
    assert graduate_outcomes_sql(AS_OF, start_month=7) == (sql, params)


def test_transpiles_to_spark() -> None:
    sqlglot = pytest.importorskip("sqlglot")
    variants: list[dict[str, Any]] = [{}, {"demographics": False}, {"degree_years": 4}]
    for kw in variants:
        sql, _ = graduate_outcomes_sql(AS_OF, start_month=7, **kw)
        (spark,) = sqlglot.transpile(sql, read="duckdb", write="spark")
        assert "ROW_NUMBER" in spark.upper()


def test_measures_describe_every_outcome() -> None:
    assert list(COLLEGE_MEASURES) == PERSON[3:13]
    assert COLLEGE_MEASURES["persisted"].denominator == (
        "of graduates enrolled in the first fall"
    )
    assert all(m.label and m.denominator for m in COLLEGE_MEASURES.values())
