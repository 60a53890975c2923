"""The risk model's training rows, worked out by hand: who is labelled a
non-graduate, who is left out, and that nothing from the year a student left
reaches the features."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa

from backbone.governance.access import locked_connection
from backbone.measures.risk import FEATURES, features_sql, training_sql


def _person(unit: str, year: int, grade: str, **values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "unit": unit,
        "person_id": None,
        "school_year": year,
        "as_of_date": date(year, 6, 30),
        "grade_level": grade,
        "attendance_rate": 0.95,
        "ela_mark": 80.0,
        "math_mark": 80.0,
        "gpa": 3.0,
        "core_course_fails": 0,
        "suspension_days": 0.0,
        "conduct_incidents": 0,
        "state_offenses": 0,
        "cumulative_credits": 5.0,
        "credits_due": 5.0,
        "economic_disadvantaged": False,
        "disability": False,
        "english_learner": False,
        "hispanic_latino_ethnicity": False,
        "race": "White",
        "sex": "Female",
        "tier": "on track",
    }
    return {**base, **values}


def _enrolled(unit: str, year: int, exit_type: str | None = None) -> dict[str, Any]:
    return {
        "unit": unit,
        "school_year": year,
        "entry_date": date(year - 1, 8, 25),
        "exit_withdraw_type": exit_type,
    }


def _rows() -> list[dict[str, Any]]:
    persons = pa.Table.from_pylist(
        [
            # g: graduates with the class of 2024 → label 0
            _person("g", 2022, "Tenth grade", attendance_rate=0.90),
            _person("g", 2023, "Eleventh grade", attendance_rate=0.80),
            # d: drops out in 2023 (grade 11) → label 1; its 2023 year (the year it
            # left) has no next year, so only 2022 is a training row
            _person("d", 2022, "Tenth grade"),
            _person("d", 2023, "Eleventh grade"),
            # m: moves away in 2023 with no diploma → unknown, left out
            _person("m", 2022, "Eleventh grade"),
            # n: finishes grade 12 in 2024 without a diploma → label 1
            _person("n", 2023, "Eleventh grade"),
            # y: class of 2027, after the last graduation year → left out, even
            # though early: only its dropping out could be known yet
            _person("y", 2023, "Ninth grade"),
        ]
    )
    enrollment = pa.Table.from_pylist(
        [
            _enrolled("g", 2022),
            _enrolled("g", 2023),
            _enrolled("g", 2024, "Graduated"),
            _enrolled("d", 2022),
            _enrolled("d", 2023, "Dropout"),
            _enrolled("m", 2022),
            _enrolled("m", 2023, "Transferred"),
            _enrolled("n", 2023),
            _enrolled("n", 2024, "End of school year"),
            _enrolled("y", 2023),
            _enrolled("y", 2024),
        ]
    )
    graduation = pa.Table.from_pylist(
        [{"unit": "g", "graduation_date": date(2024, 6, 5)}]
    )
    grades = pa.table(
        {
            "grade_level": [
                "Ninth grade",
                "Tenth grade",
                "Eleventh grade",
                "Twelfth grade",
            ],
            "grade": [9, 10, 11, 12],
        }
    )
    con = locked_connection(
        {
            "persons": persons,
            "enrollment": enrollment,
            "graduation": graduation,
            "grades": grades,
        }
    )
    try:
        con.execute(f"CREATE TEMP TABLE features AS {features_sql()}")
        rows: list[dict[str, Any]] = (
            con.sql(
                f"SELECT unit, school_year, cohort, label, attendance_rate_history "
                f"FROM ({training_sql(start_month=7)}) ORDER BY unit, school_year"
            )
            .to_arrow_table()
            .to_pylist()
        )
        return rows
    finally:
        con.close()


def test_labels_and_censoring_are_as_worked_out_by_hand() -> None:
    got = {(r["unit"], r["school_year"]): (r["cohort"], r["label"]) for r in _rows()}
    assert got == {
        ("g", 2022): (2024, 0),
        ("g", 2023): (2024, 0),
        ("d", 2022): (2024, 1),
        ("m", 2022): (2023, None),
        ("n", 2023): (2024, 1),
    }


def test_history_features_use_only_the_years_up_to_the_row() -> None:
    history = {
        (r["unit"], r["school_year"]): r["attendance_rate_history"] for r in _rows()
    }
    assert history[("g", 2022)] == 0.90
    assert abs(history[("g", 2023)] - 0.85) < 1e-12


def test_the_model_never_sees_sex_or_race() -> None:
    assert not {"sex", "race", "race_ethnicity", "hispanic_latino_ethnicity"} & set(
        FEATURES
    )
