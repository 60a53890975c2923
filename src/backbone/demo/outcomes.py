"""The demo's funders: each initiative evaluated by the steward against its
planted truth, and a funder's own view through the release gate."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from backbone.errors import PolicyDenied
from backbone.measures.evaluation_charts import evaluation_charts

if TYPE_CHECKING:
    from backbone.demo.users import DemoUsers
    from backbone.warehouse import Warehouse

__all__ = ["outcomes_tour", "planted_truth"]

# the truth file's realized effect for each outcome the simulation plants
_TRUTH_COLUMNS = {
    "attendance_rate": "effect_attendance_pp_realized",
    "course_mark": "effect_marks_realized",
    "ela_score": "effect_scale_score",
    "math_score": "effect_scale_score",
}


def planted_truth(truth: Path, min_sessions: int) -> dict[tuple[str, str], float]:
    """Each program's mean planted effect over its new participants with a prior
    school year and the least dosage (the baseline sample's participants)."""
    p = pq.read_table(truth / "program_participation.parquet").to_pandas()
    first = p.sort_values("school_year").groupby(["person_key", "program_id"]).head(1)
    first = first[
        (first["sessions_attended"] >= min_sessions)
        & (first["school_year"] > p["school_year"].min())
    ]
    out: dict[tuple[str, str], float] = {}
    for program, rows in first.groupby("program_id"):
        for outcome, column in _TRUTH_COLUMNS.items():
            out[(str(program), outcome)] = float(rows[column].mean(skipna=True) or 0.0)
    return out


def outcomes_tour(
    wh: Warehouse, users: DemoUsers, truth: Path, charts: Path
) -> list[str]:
    lines = ["Initiative outcomes (matched comparison; planted truth in brackets):"]
    steward = wh.access(users.steward, "program_evaluation")
    for initiative in wh.initiatives.list():
        ev = wh.outcomes.evaluate(steward, initiative.initiative_id)
        planted = planted_truth(truth, initiative.min_dosage.sessions)
        evaluation_charts(ev, charts, planted)
        for p in ev.programs:
            withheld = p.withheld().get("baseline")
            if withheld:
                lines.append(
                    f"  {initiative.initiative_id} {p.program_name}: {withheld}"
                )
            for e in p.effects:
                if e.sample != "baseline" or e.outcome not in (
                    "attendance_rate",
                    "course_mark",
                ):
                    continue
                if e.effect is None or e.ci_low is None or e.ci_high is None:
                    shown = "suppressed"
                else:
                    covered = (
                        e.ci_low
                        <= planted.get((p.program_id, e.outcome), 0.0)
                        <= e.ci_high
                    )
                    shown = (
                        f"{e.effect:+.2f} [{e.ci_low:+.2f}, {e.ci_high:+.2f}]"
                        f" n={e.n_participants}/{e.n_comparison} "
                        f"(truth {planted.get((p.program_id, e.outcome), 0.0):+.2f}"
                        f"{', inside' if covered else ', OUTSIDE'})"
                    )
                lines.append(
                    f"  {initiative.initiative_id} {p.program_name}, "
                    f"{initiative.outcomes()[e.outcome].label.lower()}: {shown}"
                )
    funder, viewer = next(iter(users.viewers.items()))
    own = next(i for i in wh.initiatives.list(funder))
    access = wh.access(viewer, "initiative_outcomes")
    ev = wh.outcomes.evaluate(access, own.initiative_id)
    lines.append(
        f"  {funder} evaluates its own {own.initiative_id}: release {ev.release_id}, "
        f"{ev.cells} groups, {ev.suppressed} suppressed (aggregates only)."
    )
    other = next(i for i in wh.initiatives.list() if i.funder != funder)
    try:
        wh.outcomes.evaluate(access, other.initiative_id)
        lines.append(f"  {funder} evaluated {other.initiative_id}: THIS IS A LEAK.")
    except PolicyDenied as refused:
        lines.append(f"  {funder} asks for {other.initiative_id}: refused ({refused}).")
    lines.append(
        "  Shared measurement: `backbone outcomes scorecard`, `outcomes college "
        "--out DIR` (college-going charts) and `outcomes what-we-get PARTNER`."
    )
    return lines
