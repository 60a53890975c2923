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
