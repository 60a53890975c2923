"""The evaluation's method run straight on the demo simulation's truth (no files,
no linkage): each student's school years as the evaluation builds them, and each
program's planted effect over exactly the participants an estimate counted."""

from __future__ import annotations

import numpy as np
import pandas as pd

from backbone.demo.simulate import simulate
from backbone.measures import evaluation_stats as es

PLANTED = {
    "attendance_rate": "effect_attendance_pp_realized",
    "course_mark": "effect_marks_realized",
}


def person_years(students: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(school years per student with last year's values, participations)."""
    sim = simulate(students, 6, seed)
    seg = sim.tables["segments"].to_pandas()
    events = sim.tables["attendance_events"].to_pandas()
    absent = (
        events[events["category"] != "Tardy"].groupby("segment").size().rename("absent")
    )
    seg = seg.join(absent, on="segment")
    seg["absent"] = seg["absent"].fillna(0)
    seg["days"] = seg["exit_day"] - seg["entry_day"]
    marks = sim.tables["marks"].to_pandas().groupby("segment")["numeric_grade"]
    seg = seg.join(marks.sum().rename("mark_total"), on="segment")
    seg = seg.join(marks.count().rename("marks"), on="segment")
    seg = seg.sort_values(["person_key", "school_year", "entry_day"])
    years = seg.groupby(["person_key", "school_year"]).agg(
        days=("days", "sum"),
        absent=("absent", "sum"),
        mark_total=("mark_total", "sum"),
        marks=("marks", "sum"),
        school=("school", "last"),
        grade=("grade", "last"),
    )
    years = years[years["days"] > 0].reset_index()
    years["attendance_rate"] = 100 * (1 - years["absent"] / years["days"])
    years["course_mark"] = np.where(
        years["marks"] > 0, years["mark_total"] / years["marks"].clip(lower=1), np.nan
    )
    persons = sim.tables["persons"].to_pandas().set_index("person_key")
    for col, src in (
        ("female", "sex"),
        ("economic_disadvantaged", "economic_disadvantaged"),
        ("english_learner", "english_learner"),
        ("disability", "disability"),
    ):
        values = persons[src]
        years[col] = (
            ((values == "Female") if src == "sex" else values.astype(bool))
            .reindex(years["person_key"])
            .to_numpy(dtype=float)
        )
    prior = years[["person_key", "school_year", "attendance_rate", "course_mark"]]
    prior = prior.assign(school_year=prior["school_year"] + 1).rename(
        columns={
            "attendance_rate": "attendance_rate_pre",
            "course_mark": "course_mark_pre",
        }
    )
    years = years.merge(prior, on=["person_key", "school_year"], how="left")
    years = years.rename(
        columns={
            "attendance_rate": "attendance_rate_post",
            "course_mark": "course_mark_post",
        }
    )
    return years, sim.tables["participation"].to_pandas()


def evaluate_program(
    years: pd.DataFrame, participation: pd.DataFrame, program: str, min_sessions: int
) -> dict[str, tuple[es.Estimate, float]]:
    """Each planted outcome's difference-in-differences estimate for the program's
    new participants with a baseline year, and the planted effect over exactly the
    participants it counted."""
    part = participation[participation["program_id"] == program]
    first = part.sort_values("school_year").groupby("person_key").head(1)
    joined = first.set_index("person_key")["school_year"]
    served = first[first["sessions_attended"] >= min_sessions]
    treated_keys = pd.MultiIndex.from_frame(served[["person_key", "school_year"]])
    rows = years[years["attendance_rate_pre"].notna()].copy()
    index = pd.MultiIndex.from_frame(rows[["person_key", "school_year"]])
    rows["treated"] = index.isin(treated_keys)
    when = rows["person_key"].map(joined)
    rows = rows[rows["treated"] | when.isna() | (when > rows["school_year"])].copy()
    rows["unit"] = (
        rows["person_key"].astype(str) + "@" + rows["school_year"].astype(str)
    )
    rows["stratum"] = (
        rows["school"].astype(str)
        + "|"
        + rows["grade"].astype(str)
        + "|"
        + rows["school_year"].astype(str)
    )
    strata = set(rows.loc[rows["treated"], "stratum"])
    rows = rows[rows["stratum"].isin(strata)].reset_index(drop=True)
    covariates = [
        "attendance_rate_pre",
        "course_mark_pre",
        "female",
        "economic_disadvantaged",
        "english_learner",
        "disability",
    ]
    covariates = [c for c in covariates if rows[c].dropna().nunique() > 1]
    matched = es.match(rows, covariates)
    truth = served.set_index(
        served["person_key"].astype(str) + "@" + served["school_year"].astype(str)
    )
    out = {}
    for outcome, column in PLANTED.items():
        est = es.estimate(matched, outcome, covariates, baseline=True)
        if est.effect is None:
            continue
        planted = truth.loc[list(est.treated_units), column].mean(skipna=True)
        out[outcome] = (est, float(planted) if planted == planted else 0.0)
    return out
