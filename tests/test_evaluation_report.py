"""The evaluation report is built below the door: the same bytes for the CLI's
file, a web page's download or an API's response."""

from __future__ import annotations

import json
from datetime import date

from backbone.measures.initiatives import Initiative
from backbone.measures.outcomes import Evaluation, ProgramEffect, ProgramResult


def _evaluation() -> Evaluation:
    effect = {
        "outcome": "attendance_rate",
        "sample": "baseline",
        "effect": 0.031,
        "ci_low": 0.004,
        "ci_high": 0.058,
        "n_participants": 40,
        "n_comparison": 80,
        "suppressed": False,
        "note": "",
    }
    return Evaluation(
        initiative=Initiative(
            initiative_id="INIT-ATTEND",
            funder="f01",
            name="Attendance",
            begin=date(2024, 8, 1),
            programs=("PRG-MENTOR",),
            target_outcomes=("attendance_rate",),
        ),
        release_id=7,
        programs=[
            ProgramResult(
                "PRG-MENTOR",
                "Mentoring",
                roster={"served": 45, "found": 42, "matched": 40},
                effects=[ProgramEffect.from_row(effect)],
            )
        ],
        left_out={"assessment": "no agreement shares it"},
        cells=12,
        suppressed=3,
        agreements=("DSA-D1",),
        as_of=date(2026, 6, 30),
    )


def test_the_report_is_plain_data_and_its_json_reads_back_the_same() -> None:
    ev = _evaluation()
    report = ev.report()
    assert report["release_id"] == 7 and report["as_of"] == "2026-06-30"
    assert report["initiative"]["begin"] == "2024-08-01"
    assert report["agreements"] == ["DSA-D1"]
    assert report["left_out"] == {"assessment": "no agreement shares it"}
    (program,) = report["programs"]
    assert program["program_id"] == "PRG-MENTOR"
    assert program["roster"]["matched"] == 40
    assert program["effects"][0]["effect"] == 0.031
    # the door reads typed fields; the file keeps the row as released
    (typed,) = ev.programs[0].effects
    assert (typed.effect, typed.ci_low, typed.n_comparison) == (0.031, 0.004, 80)
    assert typed.band is None and not typed.suppressed
    assert list(program["effects"][0])[:2] == ["outcome", "sample"]
    body = ev.report_json()
    assert isinstance(body, bytes) and json.loads(body) == report
    assert body.startswith(b'{\n  "initiative"')  # indented, for a person too


def test_graduation_is_unknown_for_students_of_a_district_that_sends_none() -> None:
    """d1 sends diplomas: its non-graduate counts 0 %. d2 sends none: its students'
    graduation, and college entry, are unknown — not 0 %."""
    import numpy as np
    import pandas as pd

    from backbone.measures.outcomes import _known_only_where_sent

    frame = pd.DataFrame(
        {
            "district": ["d1", "d1", "d2"],
            "graduated_post": [100.0, 0.0, 0.0],
            "college_enrolled_post": [100.0, 0.0, 0.0],
        }
    )
    _known_only_where_sent(frame, {"d1"}, any_college=True)
    assert frame["graduated_post"].tolist()[:2] == [100.0, 0.0]
    assert np.isnan(frame.at[2, "graduated_post"])
    assert np.isnan(frame.at[2, "college_enrolled_post"])
    _known_only_where_sent(frame, {"d1"}, any_college=False)
    assert frame["college_enrolled_post"].isna().all()


def test_a_reading_score_stands_in_for_ela_only_when_there_is_none() -> None:
    """u1 has an ELA score (2500) and a reading benchmark (200): ELA 2500, never
    their mean. u2 has only reading (210): that is its ELA score. u3's test has no
    subject but an identifier naming ELA."""
    import duckdb

    from backbone.measures.evaluation_sql import assessment_scores_sql

    con = duckdb.connect()
    con.execute(
        "CREATE TABLE assessment AS SELECT * FROM (VALUES "
        "('u1', 2026, 'English Language Arts', 'T1', 2500.0), "
        "('u1', 2026, 'Reading', 'R', 200.0), ('u2', 2026, 'Reading', 'R', 210.0), "
        "('u2', 2026, 'Mathematics', 'M', 300.0), ('u3', 2026, NULL, 'STATE-ELA', 2400.0)"
        ") t(unit, school_year, academic_subject, assessment_identifier, scale_score)"
    )
    assert con.execute(f"{assessment_scores_sql()} ORDER BY 1").fetchall() == [
        ("u1", 2026, 2500.0, None),
        ("u2", 2026, 210.0, 300.0),
        ("u3", 2026, 2400.0, None),
    ]
