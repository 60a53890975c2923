"""Funders' initiative outcomes: each program's participants against a matched
comparison group of non-participants from the same schools and grades.

``wh.outcomes.evaluate(access, initiative)`` reads nothing itself: the release gate
reads the permitted inputs (:data:`evaluation_sql.INPUTS`) for the reader — the
steward's evaluator, or the initiative's own funder, whose agreements give it
aggregates only — into a locked database, and runs :func:`_derive` there. That
builds one row per student and school year (:func:`evaluation_sql.person_years_sql`),
takes each program's new participants (their first year in the program, with the
initiative's least dosage), matches them within school × grade × year on their
baseline (:mod:`evaluation_stats`), and estimates each outcome. Every group of
students a number is computed from is a cell the gate protects like a count,
earlier releases included; only the published numbers come back.

Two samples, two designs (What Works Clearinghouse terms):

* ``baseline``: participants with a school year before their first (most of them):
  matched on that year's attendance, suspensions, marks, GPA and scores and on
  demographics; yearly outcomes as difference-in-differences, graduation and
  college enrollment as a matched comparison adjusted for the baseline;
* ``first year``: participants with no earlier year in the data (a program in a
  student's first school year): matched on demographics only, outcomes as an
  adjusted comparison — the weaker design, reported apart.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from backbone import engines
from backbone.engines import Connection
from backbone.engines.offload import EngineChoice, offloaded
from backbone.errors import UserError
from backbone.governance.release import Derived, Statistic, StatisticsRelease
from backbone.measures.evaluation_sql import (
    INPUTS,
    OPTIONAL_INPUTS,
    OUTCOME_SUBJECTS,
    assessment_subjects_sql,
    long_term_sql,
    participation_sql,
    person_years_sql,
)
from backbone.measures.initiatives import (
    OUTCOMES,
    Composite,
    Initiative,
    Initiatives,
    Outcome,
)
from backbone.model.calendar import on_time_deadline

# pandas, SciPy, scikit-learn and statsmodels (under evaluation_stats) load only
# when an evaluation runs, not whenever the warehouse opens.
if TYPE_CHECKING:
    import pandas as pd

    from backbone.governance.access import Access
    from backbone.measures import evaluation_stats as es

__all__ = [
    "BASELINE",
    "FIRST_YEAR",
    "CovariateBalance",
    "Evaluation",
    "EvaluationSettings",
    "Outcomes",
    "ProgramEffect",
    "ProgramResult",
]

BASELINE = "baseline"
FIRST_YEAR = "first year"
RANDOMIZED = "randomized"
DESIGNS = ("matched", RANDOMIZED)
YEARLY = tuple(code for code, o in OUTCOMES.items() if o.yearly)
LONG_TERM = tuple(code for code, o in OUTCOMES.items() if not o.yearly)
# outcomes of one family are estimated on the same students (those with all of
# them), so that they count one group of persons, not several nearly equal ones
FAMILY = {
    "attendance_rate": "enrolled",
    "suspended": "enrolled",
    "course_mark": "courses",
    "pass_rate": "courses",
    "gpa": "gpa",  # high school only: alone, so the marks keep younger students
    "ela_score": "tests",
    "math_score": "tests",
    "graduated": "graduation",
    "college_enrolled": "college",
}
DEMOGRAPHICS = (
    "female",
    "economic_disadvantaged",
    "english_learner",
    "disability",
    "hispanic",
    "race_not_white",
)
COVARIATE_LABELS = {
    "female": "Female",
    "economic_disadvantaged": "Economically disadvantaged",
    "english_learner": "English learner",
    "disability": "Disability",
    "hispanic": "Hispanic or Latino",
    "race_not_white": "Student of color",
    **{f"{c}_pre": f"Prior-year {OUTCOMES[c].label.lower()}" for c in YEARLY},
}
SUBGROUPS = {
    "female": ("Sex", {"1": "Female", "0": "Male"}),
    "economic_disadvantaged": (
        "Economic disadvantage",
        {"1": "Disadvantaged", "0": "Not disadvantaged"},
    ),
    "race_not_white": ("Race", {"1": "Students of color", "0": "White"}),
}


@dataclass(frozen=True)
class EvaluationSettings:
    ratio: int = 2
    """comparisons per participant"""
    caliper: float = 0.2
    """in standard deviations of the propensity score's logit"""
    dose_bands: int = 3
    design: str = "matched"
    """matched (a comparison group matched on the past) or randomized (students
    assigned at random between the program and ``control``)"""
    control: str | None = None
    """randomized: the program id under which the control arm's students are sent
    (only that arm is the comparison; other arms of the study are not)"""
    adjust: bool = False
    """randomized: adjust for last year's outcome and demographics (measured
    before assignment), where every analysed student has them"""


def _opt_float(value: object) -> float | None:
    return None if value is None else float(str(value))


def _opt_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class ProgramEffect:
    """One released effect of a program on an outcome (a dosage band's or a
    subgroup's too): every number None when it was suppressed."""

    sample: str | None
    outcome: str
    design: str | None
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    n_participants: int | None
    n_comparison: int | None
    suppressed: bool
    note: str
    band: str | None = None
    """the dosage band (dose rows)"""
    group: str | None = None
    """the subgroup's dimension, such as "Sex" (subgroup rows)"""
    value: str | None = None
    """the subgroup's value, such as "Female" (subgroup rows)"""
    published: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """the row as the report file publishes it (JSON types, keys in order)"""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ProgramEffect:
        return cls(
            sample=_opt_str(row.get("sample")),
            outcome=str(row["outcome"]),
            design=_opt_str(row.get("design")),
            effect=_opt_float(row.get("effect")),
            ci_low=_opt_float(row.get("ci_low")),
            ci_high=_opt_float(row.get("ci_high")),
            p_value=_opt_float(row.get("p_value")),
            n_participants=_opt_int(row.get("n_participants")),
            n_comparison=_opt_int(row.get("n_comparison")),
            suppressed=bool(row["suppressed"]),
            note=str(row.get("note") or ""),
            band=_opt_str(row.get("band")),
            group=_opt_str(row.get("group")),
            value=_opt_str(row.get("value")),
            published=row,
        )


@dataclass(frozen=True)
class CovariateBalance:
    """A covariate's standardized mean difference between participants and the
    comparison group, before and after matching, as released."""

    sample: str | None
    covariate: str
    label: str | None
    smd_before: float | None
    smd_after: float | None
    flag: str | None
    n_pool: int | None
    n_participants: int | None
    n_comparison: int | None
    suppressed: bool
    note: str
    published: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    """the row as the report file publishes it (JSON types, keys in order)"""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CovariateBalance:
        return cls(
            sample=_opt_str(row.get("sample")),
            covariate=str(row["covariate"]),
            label=_opt_str(row.get("label")),
            smd_before=_opt_float(row.get("smd_before")),
            smd_after=_opt_float(row.get("smd_after")),
            flag=_opt_str(row.get("flag")),
            n_pool=_opt_int(row.get("n_pool")),
            n_participants=_opt_int(row.get("n_participants")),
            n_comparison=_opt_int(row.get("n_comparison")),
            suppressed=bool(row["suppressed"]),
            note=str(row.get("note") or ""),
            published=row,
        )


@dataclass
class ProgramResult:
    program_id: str
    program_name: str
    roster: dict[str, int | None] = field(default_factory=dict)
    """new participants served (with the least dosage), found in district
    records, and matched (the baseline sample)"""
    effects: list[ProgramEffect] = field(default_factory=list)
    balance: list[CovariateBalance] = field(default_factory=list)
    dose: list[ProgramEffect] = field(default_factory=list)
    subgroups: list[ProgramEffect] = field(default_factory=list)
    ratios: dict[str, tuple[int, int]] = field(default_factory=dict)
    """per sample, comparisons per participant (used, asked): fewer when the pool
    of comparison students was too small for the ratio asked"""

    def not_equivalent(self) -> dict[str, list[str]]:
        """Per sample, the covariates on which the matched groups still differ by
        more than 0.25 SD (WWC): that sample's effects are not published."""
        from backbone.measures.evaluation_stats import NOT_EQUIVALENT

        out: dict[str, list[str]] = {}
        for b in self.balance:
            if b.flag == NOT_EQUIVALENT:
                out.setdefault(str(b.sample), []).append(b.label or b.covariate)
        return out

    def withheld(self) -> dict[str, str]:
        """Per sample whose effects are not published for imbalance, why, and what
        would work (one sentence each, for every door to say the same)."""
        return {
            sample: (
                "no effect published: the matched groups are not equivalent at "
                f"baseline (more than 0.25 SD apart on {', '.join(covariates)}); try "
                "--ratio 1, a tighter --caliper, or --design randomized if "
                "participants were assigned at random"
            )
            for sample, covariates in self.not_equivalent().items()
        }

    def why_no_effect(self, left_out: Mapping[str, str]) -> str | None:
        """Why no effect of the program was estimated (None when one was), from
        what was published: its roster, its balance and the inputs left out."""
        if self.effects:
            return None
        withheld = self.withheld()
        served, found = self.roster.get("served"), self.roster.get("found")
        matched = self.roster.get("matched")
        if served is None and "served" in self.roster:
            why = "its roster is suppressed (too few participants to show)"
        elif not served:
            why = (
                "no new participant with the initiative's least dosage in its "
                "period (check the program's roster, its session attendance, the "
                "initiative's dates and minimum dosage)"
            )
        elif not found:
            why = (
                "none of its participants is found in a district's enrollments in "
                "the year they took part (check linkage: `backbone link`)"
            )
        elif "control" in self.roster:  # a randomized design
            why = (
                "no student of the control arm is found in a district's enrollments"
                if not self.roster.get("control found")
                else "no outcome has data and variation in schools with both arms"
            )
        elif withheld:
            why = "; ".join(f"{sample}: {w}" for sample, w in withheld.items())
        elif not matched:
            why = (
                "no comparison student could be matched: there is nothing to match "
                "on (no demographics and no year before the program) or no "
                "non-participant at the participants' schools and grades"
            )
        else:
            why = "no outcome has data for the matched students"
        if left_out:
            why += "; left out for want of data: " + ", ".join(sorted(left_out))
        return f"{self.program_name} ({self.program_id}): {why}"


@dataclass
class Evaluation:
    initiative: Initiative
    release_id: int
    programs: list[ProgramResult]
    left_out: dict[str, str]
    cells: int
    suppressed: int
    agreements: tuple[str, ...]
    as_of: date
    unmeasured: dict[str, str] = field(default_factory=dict)
    """target outcomes nobody has a value of, and why"""

    def report(self) -> dict[str, Any]:
        """The published report as plain data (JSON types only): the initiative,
        the release, what was left out, and per program its roster, effects,
        balance, dose and subgroups, all as released."""
        return {
            "initiative": self.initiative.model_dump(mode="json"),
            "release_id": self.release_id,
            "as_of": self.as_of.isoformat(),
            "agreements": list(self.agreements),
            "left_out": self.left_out,
            "unmeasured": self.unmeasured,
            "programs": [
                {
                    "program_id": p.program_id,
                    "program_name": p.program_name,
                    "roster": p.roster,
                    "effects": [e.published for e in p.effects],
                    "balance": [b.published for b in p.balance],
                    "dose": [d.published for d in p.dose],
                    "subgroups": [g.published for g in p.subgroups],
                }
                for p in self.programs
            ],
        }

    def report_json(self) -> bytes:
        """:meth:`report` as indented UTF-8 JSON, the file a door writes or sends."""
        return json.dumps(self.report(), indent=2).encode("utf-8")


def _label(*parts: object) -> str:
    return json.dumps([str(p) for p in parts])


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


class _Collector:
    """Cells (groups of persons) and the statistics computed from them."""

    def __init__(self) -> None:
        self.members: dict[str, frozenset[str]] = {}
        self._by_members: dict[frozenset[str], str] = {}
        self.statistics: list[Statistic] = []

    def cell(self, label: str, units: Iterable[str]) -> str:
        """The group of exactly these persons (person-year keys ``unit@year``
        count their person); a group already formed keeps its first label, and a
        label is never given to two different groups."""
        persons = frozenset(u.rsplit("@", 1)[0] for u in units)
        if persons in self._by_members:
            return self._by_members[persons]
        if label in self.members:
            raise ValueError(f"cell {label} named for two different groups")
        self.members[label] = persons
        self._by_members[persons] = label
        return label

    def add(
        self, key: dict[str, str], cells: Sequence[str], values: dict[str, Any]
    ) -> None:
        self.statistics.append(Statistic(key, tuple(cells), values))

    def derived(self) -> Derived:
        labels: list[str] = []
        units: list[str] = []
        for label, members in self.members.items():
            for u in sorted(members):
                labels.append(label)
                units.append(u)
        # a statistic of a group nobody is in has nothing to publish
        statistics = [
            s for s in self.statistics if all(self.members.get(c) for c in s.cells)
        ]
        return Derived(
            pa.table({"label": pa.array(labels, pa.string()), "unit": units}),
            statistics,
        )


def _frame_for_program(
    years: pd.DataFrame,
    participation: pd.DataFrame,
    program_id: str,
    initiative: Initiative,
    first_year: int | None,
    last_year: int | None,
) -> tuple[pd.DataFrame, dict[str, set[str]]]:
    """Candidate person-years: the program's new participants (treated) and the
    students of the same school, grade and year who had not taken part in it by
    then (some join later: their earlier years are fair comparisons, though the
    intervals do not model one student counted on both sides); and the roster."""
    import pandas as pd

    part = participation[participation["program_id"] == program_id]
    first = part.groupby("unit", as_index=False)["school_year"].min()
    lo = -9999 if first_year is None else first_year
    hi = 9999 if last_year is None else last_year
    # new participants: first in the program during the initiative's period
    new = first[first["school_year"].between(lo, hi)]
    spells = part.merge(new, on=["unit", "school_year"])
    enough = pd.Series(True, index=spells.index)
    if initiative.min_dosage.sessions:
        enough &= spells["sessions"].fillna(-1) >= initiative.min_dosage.sessions
    if initiative.min_dosage.hours:
        enough &= spells["hours"].fillna(-1) >= initiative.min_dosage.hours
    served = spells[enough]
    treated = served[["unit", "school_year", "sessions"]].rename(
        columns={"sessions": "dose"}
    )
    rows = years.merge(treated, on=["unit", "school_year"], how="left", indicator=True)
    rows["treated"] = rows.pop("_merge") == "both"
    # comparisons had not taken part in the program by that year (students who
    # join later are fair comparisons before they join: leaving them out would
    # drop the very students whose bad year got them referred)
    joined = rows["unit"].map(first.set_index("unit")["school_year"])
    rows = rows[rows["treated"] | joined.isna() | (joined > rows["school_year"])]
    rows = rows.copy()
    # the matcher's unit is the person-year (a person may compare in two years);
    # the gate's cells count persons
    rows["person"] = rows["unit"]
    rows["unit"] = rows["unit"] + "@" + rows["school_year"].astype(str)
    found = set(rows.loc[rows["treated"], "person"])
    # the roster: new participants with the least dosage, and those of them found
    # in district records that year (the match rate)
    roster = {"served": set(served["unit"]), "found": found}
    rows["stratum"] = (
        rows["school_id"].astype(str)
        + "|"
        + rows["grade"].astype(str)
        + "|"
        + rows["school_year"].astype(str)
    )
    strata = set(rows.loc[rows["treated"], "stratum"])
    return rows[rows["stratum"].isin(strata)].reset_index(drop=True), roster


def _add_roster(
    col: _Collector, program_id: str, roster: Mapping[str, Iterable[str]]
) -> None:
    """A statistic per part of the roster: when every participant served was
    found the two groups are one cell (a 100 % match rate), and each part still
    has it."""
    for part, units in roster.items():
        cell = col.cell(_label(program_id, "roster", part), sorted(set(units)))
        col.add({"kind": "roster", "program": program_id, "part": part}, [cell], {})


def _randomized_program(
    col: _Collector,
    program_id: str,
    control: str,
    frame_all: pd.DataFrame,
    participation: pd.DataFrame,
    period: tuple[int | None, int | None],
    outcomes: Mapping[str, Outcome],
    adjust: bool = False,
) -> None:
    """A program whose students were assigned at random: those assigned to it
    against those assigned to ``control``, in the school year they were assigned
    (their first in either arm, within the initiative's period), the difference in
    means within schools (the randomization blocks)."""
    import pandas as pd

    from backbone.measures import evaluation_stats as es

    lo = -9999 if period[0] is None else period[0]
    hi = 9999 if period[1] is None else period[1]
    # each student's assignment is their first spell in either arm (intention to
    # treat: a control student who joins the program later stays a control); a
    # student in both arms from the same year is not a clean case and is left out
    spells = participation[participation["program_id"].isin([program_id, control])]
    first = spells.groupby(["unit", "program_id"], as_index=False)["school_year"].min()
    first = first.sort_values(["unit", "school_year"])
    earliest = first.groupby("unit")["school_year"].transform("min")
    first = first[first["school_year"] == earliest]
    first = first[~first["unit"].duplicated(keep=False)]
    first = first[first["school_year"].between(lo, hi)]
    arm = first[first["program_id"] == program_id]
    ctl = first[first["program_id"] == control]
    assigned = pd.concat(
        [arm.assign(treated=True), ctl.assign(treated=False)], ignore_index=True
    )[["unit", "school_year", "treated"]]
    rows = frame_all.merge(assigned, on=["unit", "school_year"])
    found = rows.loc[rows["treated"], "unit"]
    roster = {
        "served": arm["unit"],
        "found": found,
        "control": ctl["unit"],
        "control found": rows.loc[~rows["treated"], "unit"],
    }
    _add_roster(col, program_id, roster)
    for outcome in outcomes:
        post = f"{outcome}_post"
        if rows[post].nunique(dropna=True) <= 1:
            continue  # no data, or no variation
        before = [f"{outcome}_pre", *DEMOGRAPHICS] if adjust else []
        est = es.randomized(rows, outcome, block="school_id", covariates=before)
        if est.effect is None:
            continue
        cells = [
            col.cell(_label(program_id, RANDOMIZED, outcome, group), units)
            for group, units in (
                ("participants", est.treated_units),
                ("comparison", est.comparison_units),
            )
        ]
        row = _estimate_row(est, outcome)
        row["effect_size"] = _effect_size(
            est.effect,
            outcome,
            rows.loc[rows["unit"].isin(set(est.comparison_units)), post].std(),
        )
        col.add(
            {
                "kind": "effect",
                "program": program_id,
                "sample": RANDOMIZED,
                "outcome": outcome,
            },
            cells,
            row,
        )


def _with_outcomes(
    years: pd.DataFrame, long_term: pd.DataFrame, as_of: date, start_month: int
) -> pd.DataFrame:
    """Each person-year with its yearly outcomes (``_post``), the year before's
    (``_pre``), and graduation and college enrollment judged against the class the
    student was expected in (grades 9–12 only; unknown until the window ends or
    when the student left the community's schools)."""
    import pandas as pd

    out = years.copy()
    for code in YEARLY:
        out[f"{code}_post"] = out[code] * OUTCOMES[code].scale
    prior = years[["unit", "school_year", *YEARLY]].copy()
    prior["school_year"] = prior["school_year"] + 1
    prior = prior.rename(columns={c: f"{c}_pre" for c in YEARLY})
    for code in YEARLY:
        prior[f"{code}_pre"] = prior[f"{code}_pre"] * OUTCOMES[code].scale
    out = out.merge(prior, on=["unit", "school_year"], how="left")
    out["has_baseline"] = out["attendance_rate_pre"].notna()
    lt = long_term.set_index("unit")
    high = out["grade"].between(9, 12)
    expected = (out["school_year"] + (12 - out["grade"])).where(high)
    deadlines = {
        year: on_time_deadline(int(year), start_month)
        for year in expected.dropna().unique()
    }
    deadline = pd.to_datetime(expected.map(deadlines))
    grad_date = pd.to_datetime(out["unit"].map(lt["graduation_date"]))
    left = out["unit"].map(lt["left_community"]).fillna(False).astype(bool)
    first_term = pd.to_datetime(out["unit"].map(lt["first_term"]))
    today = pd.Timestamp(as_of)
    on_time = grad_date.notna() & (grad_date <= deadline)
    graduated = np.where(on_time, 1.0, 0.0)
    # known once the class's deadline has passed (before it, only those who
    # already graduated would be "known": a 100% rate), for students still here
    known = high & (deadline < today) & ~left
    out["graduated_post"] = np.where(known, graduated * 100.0, np.nan)
    college_deadline = deadline + pd.DateOffset(years=1)
    enrolled = grad_date.notna() & first_term.notna() & (first_term <= college_deadline)
    known_college = high & (college_deadline < today) & ~left
    out["college_enrolled_post"] = np.where(
        known_college, np.where(enrolled, 100.0, 0.0), np.nan
    )
    out["grade_band"] = np.select(
        [out["grade"] <= 5, out["grade"] <= 8], ["K–5", "6–8"], "9–12"
    )
    return out


def _round(value: Any, digits: int) -> float | None:
    number = _num(value)
    return None if number is None else round(number, digits)


def _usable(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Covariates with some variation among the candidates (others cannot be
    matched or adjusted on)."""
    keep = []
    for c in columns:
        values = frame[c].dropna()
        if len(values) and values.nunique() > 1:
            keep.append(c)
    return keep


def _scale(outcome: str) -> float:
    """100 for a yes/no outcome (a percentage); 1 for a measure (and a composite,
    which adds measures only)."""
    return OUTCOMES[outcome].scale if outcome in OUTCOMES else 1.0


def _effect_size(effect: float, outcome: str, spread: float | None) -> float | None:
    """Hedges-style effect size of a measured outcome: the effect over the
    comparison students' spread in the estimation sample (None for a yes/no one)."""
    if _scale(outcome) != 1.0 or not (spread and spread > 0):
        return None
    return _num(round(effect / spread, 2))


def _estimate_row(est: es.Estimate, outcome: str) -> dict[str, Any]:
    if _scale(outcome) != 1.0:
        # a yes/no outcome's group mean is a count over the group: only the
        # (adjusted) difference and its interval are published
        means: dict[str, float | None] = dict.fromkeys(
            (
                "mean_treated_pre",
                "mean_treated_post",
                "mean_comparison_pre",
                "mean_comparison_post",
            )
        )
    else:
        means = {
            "mean_treated_pre": _round(est.mean_treated_pre, 2),
            "mean_treated_post": _round(est.mean_treated_post, 2),
            "mean_comparison_pre": _round(est.mean_comparison_pre, 2),
            "mean_comparison_post": _round(est.mean_comparison_post, 2),
        }
    return {
        **means,
        "outcome": outcome,
        "design": est.design,
        "effect": _num(est.effect),
        "ci_low": _num(est.ci_low),
        "ci_high": _num(est.ci_high),
        "p_value": _num(est.p_value),
        "reason": est.reason,
    }


def _one(
    matched: es.Matched, outcome: str, adjust: list[str], did: bool
) -> list[tuple[str, es.Estimate]]:
    from backbone.measures import evaluation_stats as es

    return [("", es.estimate(matched, outcome, adjust, baseline=did))]


def _family(outcome: str) -> str:
    """The family an outcome is estimated in; a composite is a family of its own."""
    return FAMILY.get(outcome, outcome)


def _complete_cases(
    matched: es.Matched, outcomes: Mapping[str, Outcome], baseline: bool
) -> dict[str, es.Matched]:
    """Per family, the matched sample with each outcome kept only where every
    outcome of the family is observed (before and after, for a yearly outcome in
    the baseline sample): one family, one group of students."""
    out: dict[str, es.Matched] = {}
    for family in dict.fromkeys(_family(o) for o in outcomes):
        members = [o for o in outcomes if _family(o) == family]
        frame = matched.frame.copy()
        columns = [
            c
            for o in members
            for c in (
                (f"{o}_post", f"{o}_pre")
                if baseline and outcomes[o].yearly
                else (f"{o}_post",)
            )
        ]
        complete = frame[columns].notna().all(axis=1)
        frame.loc[~complete, columns] = np.nan
        out[family] = replace(matched, frame=frame)
    return out


def _band_name(position: int, bands: int) -> str:
    names = {
        2: ("lower half of dosage", "upper half of dosage"),
        3: (
            "lowest third of dosage",
            "middle third of dosage",
            "highest third of dosage",
        ),
    }
    if bands in names:
        return names[bands][position]
    return f"dosage band {position + 1} of {bands}"


def _safely(
    run: Callable[[], list[tuple[str, es.Estimate]]],
) -> list[tuple[str, es.Estimate]]:
    """Estimates of small subsets (bands, subgroups): a subset too small for its
    regression has no estimate rather than stopping the evaluation."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            return run()
    except (ZeroDivisionError, np.linalg.LinAlgError, RuntimeWarning):
        return []


def matching_ratio(asked: int, participants: int, pool: int) -> int:
    """Comparisons per participant: k of them need k times as many students as
    participants; when the pool is smaller the ratio comes down (to 1:1 at least)
    rather than matching some participants k times and leaving others unmatched."""
    return max(1, min(asked, pool // max(participants, 1)))


def _analyse_sample(
    col: _Collector,
    program_id: str,
    sample: str,
    frame: pd.DataFrame,
    targets: Sequence[str],
    settings: EvaluationSettings,
    outcomes: Mapping[str, Outcome],
) -> None:
    import pandas as pd

    from backbone.measures import evaluation_stats as es

    baseline = sample == BASELINE
    covariates = _usable(
        frame,
        [*(f"{c}_pre" for c in YEARLY if baseline), *DEMOGRAPHICS],
    )
    if not frame["treated"].any() or frame["treated"].all() or not covariates:
        return
    ratio = matching_ratio(
        settings.ratio, int(frame["treated"].sum()), int((~frame["treated"]).sum())
    )
    try:
        matched = es.match(frame, covariates, ratio=ratio, caliper=settings.caliper)
    except es.EvaluationError:
        return
    if matched.treated_matched == 0:
        return
    m = matched.frame
    pool = frame.loc[~frame["treated"], "unit"]
    pooled = col.cell(_label(program_id, sample, "pool", "comparison"), pool)
    m_t = col.cell(
        _label(program_id, sample, "matched", "participants"),
        m.loc[m["treated"], "unit"],
    )
    m_c = col.cell(
        _label(program_id, sample, "matched", "comparison"),
        m.loc[~m["treated"], "unit"],
    )
    shown = [c for c in covariates if not c.endswith(es.MISSING_SUFFIX)]
    # "before": the participants analysed against every eligible non-participant
    # (all participants offered would differ from those matched by a handful,
    # and publishing both would count that handful)
    before = es.balance(
        pd.concat([m[m["treated"]], frame[~frame["treated"]]]), shown
    ).set_index("covariate")
    after = es.balance(m, shown, weights="weight").set_index("covariate")
    for c in shown:
        col.add(
            {
                "kind": "balance",
                "program": program_id,
                "sample": sample,
                "covariate": c,
            },
            [pooled, m_t, m_c],
            {
                "label": COVARIATE_LABELS.get(c, c),
                "kind": str(after.at[c, "kind"]),
                # standardized differences only (rounded): a group's mean of a
                # yes/no covariate over its students would count them
                "smd_before": _round(before.at[c, "smd"], 3),
                "smd_after": _round(after.at[c, "smd"], 3),
                "flag": str(after.at[c, "flag"]),
            },
        )
    col.add(
        {"kind": "match", "program": program_id, "sample": sample},
        [m_t, m_c, pooled],
        {
            "caliper": settings.caliper,
            "ratio": ratio,
            "ratio_asked": settings.ratio,
        },
    )
    # A matched comparison still differing by more than 0.25 SD at baseline on any
    # covariate (stricter than WWC, which asks it of the outcome's pretest) is not
    # evidence of an effect; the balance table says where
    if any(after.at[c, "flag"] == es.NOT_EQUIVALENT for c in shown):
        return
    adjust = list(covariates)
    by_family = _complete_cases(matched, outcomes, baseline)
    for outcome in outcomes:
        yearly = outcomes[outcome].yearly
        did = baseline and yearly
        post = f"{outcome}_post"
        family_matched = by_family[_family(outcome)]
        if family_matched.frame[post].nunique(dropna=True) <= 1:
            continue  # no data, or no variation: nothing to estimate an effect of
        found_est = _safely(partial(_one, family_matched, outcome, adjust, did))
        if not found_est:
            continue
        est = found_est[0][1]
        if est.effect is None or est.n_treated < 2:
            continue
        family = _family(outcome)
        t_cell = col.cell(
            _label(program_id, sample, family, "participants"), est.treated_units
        )
        c_cell = col.cell(
            _label(program_id, sample, family, "comparison"), est.comparison_units
        )
        row = _estimate_row(est, outcome)
        row["effect_size"] = _effect_size(
            est.effect,
            outcome,
            family_matched.frame.loc[
                family_matched.frame["unit"].isin(set(est.comparison_units)), post
            ].std(),
        )
        col.add(
            {
                "kind": "effect",
                "program": program_id,
                "sample": sample,
                "outcome": outcome,
            },
            [t_cell, c_cell],
            row,
        )
        # dosage and subgroups for the targets, in the main (baseline) sample
        if outcome not in targets or not baseline:
            continue
        if "dose" in m and m.loc[m["treated"], "dose"].notna().any():
            bands = _safely(
                partial(
                    es.dose_response,
                    family_matched,
                    outcome,
                    adjust,
                    baseline=did,
                    bands=settings.dose_bands,
                )
            )
            for position, (_range, b_est) in enumerate(bands):
                if b_est.effect is None:
                    continue
                # named by rank, not by the sessions at its ends: the band's
                # highest and lowest dose are each one student's
                band = _band_name(position, len(bands))
                cells = [
                    col.cell(_label(program_id, sample, family, "dose", band, g), units)
                    for g, units in (
                        ("participants", b_est.treated_units),
                        ("comparison", b_est.comparison_units),
                    )
                ]
                col.add(
                    {
                        "kind": "dose",
                        "program": program_id,
                        "sample": sample,
                        "outcome": outcome,
                        "band": band,
                    },
                    cells,
                    _estimate_row(b_est, outcome),
                )
        for column, (title, names) in SUBGROUPS.items():
            if column not in m:
                continue
            for value, s_est in _safely(
                partial(
                    es.subgroups, family_matched, outcome, adjust, column, baseline=did
                )
            ):
                if s_est.effect is None:
                    continue
                name = names.get(str(value).removesuffix(".0"), str(value))
                cells = [
                    col.cell(_label(program_id, sample, family, column, name, g), units)
                    for g, units in (
                        ("participants", s_est.treated_units),
                        ("comparison", s_est.comparison_units),
                    )
                ]
                row = _estimate_row(s_est, outcome)
                row["group"] = title
                row["value"] = name
                col.add(
                    {
                        "kind": "subgroup",
                        "program": program_id,
                        "sample": sample,
                        "outcome": outcome,
                        "group": title,
                        "value": name,
                    },
                    cells,
                    row,
                )


def _known_only_where_sent(
    frame: pd.DataFrame, graduation_senders: set[str], any_college: bool
) -> None:
    """A student whose district sends no diplomas (or none the reader may see) has
    an unknown graduation, and so college entry, not 0 %; with no college term
    sent at all, college entry is unknown for everyone."""
    unknown = ~frame["district"].isin(graduation_senders)
    frame.loc[unknown, ["graduated_post", "college_enrolled_post"]] = np.nan
    if not any_college:
        frame["college_enrolled_post"] = np.nan


def _add_composite(frame: pd.DataFrame, composite: Composite) -> None:
    """A composite's value before and after, each student's, from its parts: known
    only where every part is."""
    for when in ("post", "pre"):
        columns = [f"{o}_{when}" for o in composite.of]
        if not all(c in frame for c in columns):
            continue
        parts = frame[columns]
        value = parts.mean(axis=1) if composite.combine == "mean" else parts.sum(axis=1)
        frame[f"{composite.code}_{when}"] = value.where(parts.notna().all(axis=1))


def _note_unmeasured(
    con: Connection, col: _Collector, initiative: Initiative, frame_all: pd.DataFrame
) -> None:
    """Why each of the initiative's target outcomes has no value for anyone: a
    note (a reason code and, for test scores, the canonical subjects sent — no
    persons, no counts) the evaluation words and prints, never a silent gap."""
    for outcome in initiative.target_outcomes:
        if frame_all[f"{outcome}_post"].notna().any():
            continue
        values: dict[str, Any] = {"why": "no_data"}
        if outcome in OUTCOME_SUBJECTS:
            sent = [r[0] for r in con.execute(assessment_subjects_sql()).fetchall()]
            subjects = [str(x) for x in sent if x is not None]
            shown = ", ".join(subjects[:5]) + (
                f" and {len(subjects) - 5} more" if len(subjects) > 5 else ""
            )
            values = (
                {"why": "other_subjects", "found": shown}
                if subjects
                else {"why": "unlabelled" if sent else "no_assessments"}
            )
        col.add({"kind": "unmeasured", "outcome": outcome}, (), values)


def _unmeasured_sentence(outcome: str, values: Mapping[str, Any]) -> str:
    why = values.get("why")
    wanted = " or ".join(repr(x) for x in OUTCOME_SUBJECTS.get(outcome, ()))
    if why == "other_subjects":
        return (
            f"the assessments sent are labelled {values.get('found')}; it is read "
            f"from academic_subject {wanted} (map the partner's label to one in the "
            "feed's mapping)"
        )
    if why == "unlabelled":
        return (
            "the assessments sent carry no academic_subject; it is read from "
            f"academic_subject {wanted} (or an identifier naming the subject)"
        )
    if why == "no_assessments":
        return "no partner has sent student_assessment"
    if outcome not in OUTCOMES:
        return "no student has a value of every part of it"
    return "no partner sends the data it is computed from"


def _derive(
    con: Connection,
    initiative: Initiative,
    start_month: int,
    as_of: date,
    settings: EvaluationSettings,
    choice: EngineChoice | None = None,
) -> Derived:
    # the heavy derivations, on the engine chosen, from the gate's permitted
    # inputs (the tables of the locked database: what this reader may read)
    # (and the schools: no person in them)
    with offloaded(choice or EngineChoice(), con, [*INPUTS, "school"]) as run:
        years = run.frame(person_years_sql())
        participation = run.frame(participation_sql(start_month))
    sql, params = long_term_sql(as_of, start_month)
    long_term = engines.frame(con, sql, params)
    frame_all = _with_outcomes(years, long_term, as_of, start_month)
    senders = engines.frame(con, "SELECT DISTINCT provider FROM graduation")
    any_college = engines.frame(con, "SELECT 1 FROM college LIMIT 1").shape[0] > 0
    _known_only_where_sent(frame_all, set(senders["provider"]), any_college)
    for composite in initiative.composite_outcomes:
        _add_composite(frame_all, composite)
    first_year, last_year = initiative.period_years(start_month)
    col = _Collector()
    _note_unmeasured(con, col, initiative, frame_all)
    catalog = initiative.outcomes()
    outcomes = {
        code: catalog[code]
        for code in dict.fromkeys([*initiative.target_outcomes, *catalog])
    }
    if settings.design == RANDOMIZED:
        assert settings.control is not None
        for program_id in initiative.programs:
            _randomized_program(
                col,
                program_id,
                settings.control,
                frame_all,
                participation,
                (first_year, last_year),
                outcomes,
                settings.adjust,
            )
        return col.derived()
    for program_id in initiative.programs:
        frame, roster = _frame_for_program(
            frame_all, participation, program_id, initiative, first_year, last_year
        )
        _add_roster(col, program_id, roster)
        for sample, part in (
            (BASELINE, frame[frame["has_baseline"]]),
            (FIRST_YEAR, frame[~frame["has_baseline"]]),
        ):
            _analyse_sample(
                col,
                program_id,
                sample,
                part.reset_index(drop=True),
                initiative.target_outcomes,
                settings,
                outcomes,
            )
    return col.derived()


class Outcomes:
    """``wh.outcomes``: evaluations of funders' initiatives."""

    def __init__(
        self,
        initiatives: Initiatives,
        con: Connection,
        start_month: int,
        engine: Callable[[str | None], EngineChoice] = lambda _kind: EngineChoice(),
    ) -> None:
        self._initiatives = initiatives
        self._con = con
        self._start_month = start_month
        self._engine = engine

    def evaluate(
        self,
        access: Access,
        initiative_id: str,
        *,
        as_of: date | None = None,
        settings: EvaluationSettings | None = None,
        engine: str | None = None,
    ) -> Evaluation:
        """Each of the initiative's programs against its matched comparison group,
        through the release gate. The steward may evaluate any initiative; a
        funder only its own. ``engine`` (``duckdb``, ``spark``) overrides
        ``engine.kind``: on Spark, the person-years and participations are derived
        there from the gate's permitted inputs, and only those."""
        initiative = self._initiatives.get(initiative_id)
        access.require_own_or_steward_aggregate(
            initiative.funder, f"evaluation of {initiative_id}"
        )
        settings = settings or EvaluationSettings()
        choice = self._engine(engine)
        _check_design(settings, self._con)
        today = as_of or access.on
        names = dict(
            self._con.execute(
                "SELECT program_id, program_name FROM ref.program"
            ).fetchall()
        )
        release = access.statistics(
            INPUTS,
            lambda con: _derive(
                con, initiative, self._start_month, today, settings, choice
            ),
            definition={
                "name": f"evaluation of {initiative_id}",
                "initiative": initiative.model_dump(mode="json"),
                "as_of": today.isoformat(),
                "design": settings.design,
                **(
                    {"control": settings.control, "blocks": "school"}
                    if settings.design == RANDOMIZED
                    else {
                        "matching": {
                            "ratio": settings.ratio,
                            "caliper": settings.caliper,
                            "exact": ["school", "grade", "school year"],
                        }
                    }
                ),
            },
            optional=OPTIONAL_INPUTS,
        )
        return _report(initiative, release, names, today)


def _check_design(settings: EvaluationSettings, con: Connection) -> None:
    if settings.design not in DESIGNS:
        raise UserError(
            f"design {settings.design!r} is not one of {', '.join(DESIGNS)}."
        )
    if settings.design != RANDOMIZED:
        if settings.control is not None or settings.adjust:
            raise UserError(
                "--control and --adjust are for a randomized design; add "
                "--design randomized, or leave them out for a matched comparison "
                "(which always adjusts for what it matched on)."
            )
        return
    if settings.control is None:
        raise UserError(
            "a randomized design compares with its control arm: name the program "
            "its students are sent under, --control PROGRAM."
        )
    known = con.execute(
        "SELECT 1 FROM ref.program WHERE program_id = ?", [settings.control]
    ).fetchall()
    if not known:
        raise UserError(
            f"no program {settings.control!r}: register the control arm as a program "
            "(`backbone partner import`) and send its students' participation."
        )


def _report(
    initiative: Initiative,
    release: StatisticsRelease,
    names: dict[str, str],
    as_of: date,
) -> Evaluation:
    programs = {p: ProgramResult(p, names.get(p, p)) for p in initiative.programs}
    unmeasured: dict[str, str] = {}
    for st in release.statistics:
        kind = st.key["kind"]
        if kind == "unmeasured":
            unmeasured[st.key["outcome"]] = _unmeasured_sentence(
                st.key["outcome"], st.values or {}
            )
            continue
        result = programs[st.key["program"]]
        n = list(st.persons.values())
        if kind == "roster":
            result.roster[st.key["part"]] = n[0]
            continue
        row: dict[str, Any] = {
            "sample": st.key.get("sample"),
            # a suppressed statistic keeps its shape, every number None
            **dict.fromkeys(
                ("effect", "ci_low", "ci_high", "p_value", "design", "effect_size")
            ),
            **dict.fromkeys(
                ("smd_before", "smd_after", "flag", "label", "kind")
                if kind == "balance"
                else ()
            ),
            **(st.values or {}),
            "suppressed": st.values is None,
            "note": st.note,
        }
        if kind == "effect" or kind in ("dose", "subgroup"):
            row.setdefault("outcome", st.key.get("outcome"))
            row["n_participants"], row["n_comparison"] = n[0], n[1]
            if kind == "dose":
                row["band"] = st.key["band"]
            if kind == "subgroup":
                row["group"], row["value"] = st.key["group"], st.key["value"]
            {
                "effect": result.effects,
                "dose": result.dose,
                "subgroup": result.subgroups,
            }[kind].append(ProgramEffect.from_row(row))
        elif kind == "balance":
            row["covariate"] = st.key["covariate"]
            row["n_pool"], row["n_participants"], row["n_comparison"] = n
            result.balance.append(CovariateBalance.from_row(row))
        elif kind == "match":
            if st.values:
                used, asked = st.values.get("ratio"), st.values.get("ratio_asked")
                if used is not None and asked is not None:
                    result.ratios[str(st.key["sample"])] = (int(used), int(asked))
            if st.key.get("sample") == BASELINE:
                result.roster["matched"] = n[0]
    return Evaluation(
        initiative,
        release.release_id,
        list(programs.values()),
        release.left_out,
        release.cells,
        release.suppressed,
        release.agreements,
        as_of,
        unmeasured,
    )
