"""``wh.risk``: the predictive risk score, trained and validated in the warehouse.

One row per student and school year (grades 8 to 11, year-end indicators), for
students still enrolled the next year, so nothing from the year they left leaks
into the features. The label is *did not graduate*: a dropout exit, or reaching
the expected graduation year without a diploma; students who moved away without
one are censored (left out), as NSC-style outcome reports do. Cohorts (expected
class of) train on the earlier ones and validate on the later ones, never both.

The steward trains (reading through the policy layer, every read audited); the
model file and its validation report are kept (``gov.risk_model``). Scoring runs on
whatever component rows a reader may see, so a score never draws on data the
reader could not read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from backbone import engines
from backbone.engines import Connection
from backbone.engines.duckdb import next_id
from backbone.errors import UserError, WarehouseError
from backbone.governance.access import Access, locked_connection
from backbone.governance.audit import last_change
from backbone.measures.indicators import Indicators, Roster, with_identifiers
from backbone.measures.risk_report import RiskReport
from backbone.model.calendar import school_year_sql
from backbone.model.descriptors import GRADE_LEVELS
from backbone.session import Session

# scikit-learn and joblib (under risk_model) load only to train or score.
if TYPE_CHECKING:
    from backbone.measures.risk_model import TrainedModels

__all__ = [
    "FEATURES",
    "SUBGROUPS",
    "LatestModel",
    "RiskModels",
    "TrainingReport",
    "TrainingRows",
]

FEATURES = (
    "attendance_rate",
    "days_absent",
    "suspension_days",
    "conduct_incidents",
    "state_offenses",
    "ela_mark",
    "math_mark",
    "ela_math_fails",
    "core_course_fails",
    "course_fails",
    "gpa",
    "credits_earned",
    "credits_gap",
    "grade",
    # the student's history: persistent risk shows across years (Bowers et al.
    # 2013: longitudinal flags are the most accurate)
    "attendance_rate_history",
    "mark_history",
    "gpa_history",
    "core_fails_to_date",
    "suspension_days_to_date",
    "behavior_to_date",
    "economic_disadvantaged_flag",
    "disability_flag",
    "english_learner_flag",
)
SUBGROUPS = ("sex", "race_ethnicity", "economic")
# reads and fits once more if another process changed the data while it fitted
FIT_ATTEMPTS = 2


@dataclass(frozen=True)
class LatestModel:
    """The most recently trained risk models, loaded and checked."""

    model_id: int
    trained: TrainedModels
    report: RiskReport
    """the validation report recorded when it was trained (the steward's)"""


@dataclass(frozen=True)
class TrainingRows:
    """Labelled person-years to train on, as the policy layer let them be read."""

    table: pa.Table
    min_cell_size: int
    """The strictest minimum cell size of the agreements they were read under: no
    subgroup smaller than it is reported."""


@dataclass(frozen=True)
class TrainingReport:
    model_id: int
    best: str
    report: RiskReport
    """Per model: AUC, precision and recall at the flagged fraction, calibration,
    subgroups; and the rule-based tiers' recall of the same non-graduates."""


def _grade_values() -> pa.Table:
    return pa.table(
        {
            "grade_level": [name for name, _ in GRADE_LEVELS],
            "grade": [n for _, n in GRADE_LEVELS],
        }
    )


def features_sql(persons: str = "persons") -> str:
    """Model features of evaluated persons (pure SQL over their indicators): the
    snapshot's values and, over the person's snapshots up to it, their history."""
    history = (
        "OVER (PARTITION BY p.unit ORDER BY p.school_year, p.as_of_date "
        "ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )
    return f"""
SELECT p.*, g.grade,
       p.cumulative_credits - p.credits_due AS credits_gap,
       avg(p.attendance_rate) {history} AS attendance_rate_history,
       avg(least(p.ela_mark, p.math_mark)) {history} AS mark_history,
       avg(p.gpa) {history} AS gpa_history,
       sum(p.core_course_fails) {history} AS core_fails_to_date,
       sum(p.suspension_days) {history} AS suspension_days_to_date,
       sum(p.conduct_incidents + 3 * p.state_offenses) {history} AS behavior_to_date,
       CAST(p.economic_disadvantaged AS INTEGER) AS economic_disadvantaged_flag,
       CAST(p.disability AS INTEGER) AS disability_flag,
       CAST(p.english_learner AS INTEGER) AS english_learner_flag,
       CASE WHEN p.hispanic_latino_ethnicity THEN 'Hispanic or Latino'
            ELSE coalesce(p.race, '(missing)') END AS race_ethnicity,
       CASE WHEN p.economic_disadvantaged THEN 'economically disadvantaged'
            WHEN NOT p.economic_disadvantaged THEN 'not disadvantaged'
            ELSE '(missing)' END AS economic
FROM {persons} p LEFT JOIN grades g USING (grade_level)
"""


def training_sql(*, start_month: int, min_grade: int = 8, max_grade: int = 11) -> str:
    """Labelled rows: features of year t for students enrolled in year t + 1;
    label 1 = no diploma by the expected year (a dropout, no diploma, a late one),
    NULL = outcome unknown (moved away without one: left out).

    A person's class (cohort) is fixed once, from the first grade seen, so a
    student held back stays in one class: never both trained and validated on.
    A diploma counts for the school year its date falls in (``start_month``)."""
    return f"""
WITH year_of AS (
    SELECT unit, {school_year_sql("graduation_date", start_month)} AS y
    FROM graduation
),
grad AS (SELECT unit, min(y) AS graduated FROM year_of GROUP BY unit),
last_year AS (SELECT max(y) AS y FROM year_of),
enr AS (
    SELECT unit, max(school_year) AS last_year,
           arg_max(coalesce(exit_withdraw_type, ''), entry_date) AS last_exit,
           coalesce(bool_or(exit_withdraw_type = 'Dropout'), false) AS dropped
    FROM enrollment GROUP BY unit
),
next_year AS (SELECT DISTINCT unit, school_year FROM enrollment),
class_of AS (
    SELECT unit, CAST(min(school_year + 12 - grade) AS INTEGER) AS cohort
    FROM features WHERE grade IS NOT NULL GROUP BY unit
),
feat AS (
    SELECT f.*, c.cohort FROM features f JOIN class_of c USING (unit)
    WHERE f.grade BETWEEN {min_grade} AND {max_grade}
)
SELECT feat.*,
       CASE WHEN grad.graduated <= feat.cohort THEN 0
            WHEN grad.graduated > feat.cohort THEN 1
            WHEN enr.dropped THEN 1
            WHEN enr.last_year >= feat.cohort AND enr.last_exit <> 'Transferred'
                THEN 1
       END AS label
FROM feat
JOIN next_year n ON n.unit = feat.unit AND n.school_year = feat.school_year + 1
LEFT JOIN grad ON grad.unit = feat.unit
LEFT JOIN enr ON enr.unit = feat.unit
WHERE feat.cohort <= (SELECT y FROM last_year)
"""


def _by_person(table: pa.Table) -> pa.Table:
    """One key per person across separate reads: the person id where known (each
    read keys its units afresh), else the read's own unit."""
    if table.num_rows == 0 or "person_id" not in table.column_names:
        return table
    key = pc.coalesce(
        pc.cast(table.column("person_id"), pa.string()), table.column("unit")
    )
    return table.set_column(table.column_names.index("unit"), "unit", key)


class RiskModels:
    def __init__(
        self,
        con: Connection,
        root: Path,
        clock: Callable[[], datetime],
        indicators: Indicators,
    ) -> None:
        self._con = con
        self._dir = root / "models"
        self._clock = clock
        self._indicators = indicators

    # --- training ---------------------------------------------------------------

    def training_rows(self, access: Access, s: Session | None = None) -> TrainingRows:
        """Labelled person-years from year-end snapshots, read through the policy
        layer (three audited reads; inside ``s`` when given), and the strictest
        minimum cell size of the agreements they were read under."""
        if s is not None:
            access = access.within(s)
        ends = [
            snap
            for snap in self._indicators.snapshots(s.con if s else None)
            if snap.as_of == self._indicators.year_bounds(snap.school_year)[1]
        ]
        if len(ends) < 2:
            raise UserError(
                "the risk model needs year-end indicators of at least two school "
                "years; run `backbone indicators compute` after the years end."
            )
        m = access.person_rows(
            "student_indicator",
            what="risk model training: year-end indicators",
            where={"as_of_date": [s.as_of for s in ends]},
        )
        persons = _by_person(self._indicators.evaluate(with_identifiers(m.table)))
        enrollment = _by_person(
            access.person_rows(
                "enrollment", what="risk model training: enrollment and exits"
            ).table
        )
        graduation = _by_person(
            access.person_rows("graduation", what="risk model training: diplomas").table
        )
        for name, table in (("enrollment", enrollment), ("graduation", graduation)):
            if table.num_rows == 0:
                raise UserError(f"the risk model needs {name} data; none is readable.")
        con = locked_connection(
            {
                "persons": persons,
                "grades": _grade_values(),
                "enrollment": enrollment,
                "graduation": graduation,
            }
        )
        try:
            con.execute(f"CREATE TEMP TABLE features AS {features_sql()}")
            labelled = training_sql(
                start_month=self._indicators.school_year_start_month
            )
            rows = engines.arrow(
                con, f"SELECT * FROM ({labelled}) WHERE label IS NOT NULL"
            )
        finally:
            con.close()
        return TrainingRows(rows, max(g.min_cell_size for g in m.grants))

    def train(
        self,
        s: Session,
        access: Access,
        *,
        validate_last: int = 2,
        flagged_fraction: float = 0.2,
    ) -> TrainingReport:
        """Train the models on earlier cohorts, validate them on the latest, keep
        both (``models/risk-N.joblib``) with their report: the steward's work
        (``derive``), in one unit of work. The training rows are read through
        ``access`` (the same principal's) inside it, each read audited, and the
        model's audit entry names them.

        While the models fit, the warehouse file is handed back
        (:meth:`Session.released`): other processes read and write meanwhile. If
        one changed anything by then (a new audit entry of a change), the rows are
        read and the models fitted once more; a second change refuses, writing
        nothing."""
        who = s.require("derive", "train the risk model", action="derive")
        for attempt in range(1, FIT_ATTEMPTS + 1):
            read = self.training_rows(access, s)
            rows = read.table
            if rows.num_rows == 0:
                raise UserError("no student has a known graduation outcome yet.")
            read_after = last_change(s.con)
            # the rows are in memory: give the warehouse back while the models fit
            with s.released():
                trained, report = _fitted(
                    read,
                    validate_last=validate_last,
                    flagged_fraction=flagged_fraction,
                )
            if last_change(s.con) == read_after:
                break
            if attempt == FIT_ATTEMPTS:
                raise WarehouseError(
                    "the warehouse changed while the risk model trained, "
                    f"{FIT_ATTEMPTS} times; nothing was saved. Train it again when "
                    "the submissions and computations under way are done."
                )
        version = max(int(v) for v in rows.column("definition_version").to_pylist())
        self._dir.mkdir(exist_ok=True)
        model_id = next_id(s.con, "gov.risk_model_id_seq")
        path = self._dir / f"risk-{model_id}.joblib"
        # a model's id is never handed out twice, so its file is never another's (a
        # unit of work that rolled back leaves an orphan file, not a wrong one); the
        # checksum kept in gov.risk_model is what a model is loaded by
        trained.save(path)
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        s.con.execute(
            "INSERT INTO gov.risk_model VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                model_id,
                s.clock(),
                who.user_id,
                version,
                trained.best,
                path.name,
                checksum,
                report.stored(),
            ],
        )
        s.record(
            "derive",
            "risk model",
            rows=rows.num_rows,
            detail={
                "model_id": model_id,
                "best": trained.best,
                "auc": {n: round(r.auc, 4) for n, r in trained.reports.items()},
            },
        )
        return TrainingReport(
            model_id, trained.best, report.model_copy(update={"model_id": model_id})
        )

    # --- using a model ----------------------------------------------------------

    def latest(self) -> LatestModel | None:
        """The latest trained models; None before the first training."""
        from backbone.measures.risk_model import TrainedModels

        row = self._con.execute(
            "SELECT model_id, file, checksum, report FROM gov.risk_model "
            "ORDER BY model_id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        path = self._dir / str(row[1])
        if not path.exists() or (
            hashlib.sha256(path.read_bytes()).hexdigest() != row[2]
        ):
            raise UserError(
                f"{path} is missing or altered; train the model again "
                "(`backbone risk train`)."
            )
        return LatestModel(
            int(row[0]),
            TrainedModels.load(path),
            RiskReport.parse(str(row[3]), model_id=int(row[0])),
        )

    def report(self, access: Access, model_id: int | None = None) -> RiskReport:
        """A model's validation report: the steward's, since it describes the
        persons the model was trained on."""
        access.require_steward("row_level_view", "read the risk model's report")
        row = self._con.execute(
            "SELECT model_id, trained_at, trained_by, report FROM gov.risk_model "
            + ("WHERE model_id = ? " if model_id is not None else "")
            + "ORDER BY model_id DESC LIMIT 1",
            [model_id] if model_id is not None else [],
        ).fetchone()
        if row is None:
            raise UserError(
                f"no risk model {model_id}; `backbone risk report` shows the latest."
                if model_id is not None
                else "no risk model trained yet; run `backbone risk train`."
            )
        access.log("read", f"risk model {row[0]} report")
        return RiskReport.parse(
            str(row[3]),
            model_id=int(row[0]),
            trained_at=str(row[1]),
            trained_by=row[2],
        )

    def score(self, roster: Roster, *, top: int = 3) -> pa.Table | None:
        """The roster's persons with ``risk_score`` and ``risk_factors`` (their
        history taken from the earlier year-end snapshots read with them), or
        None when no model is trained."""
        latest = self.latest()
        if latest is None or roster.table.num_rows == 0:
            return None
        trained = latest.trained
        now = roster.table.append_column(
            "_order", pa.array(range(roster.table.num_rows), pa.int64())
        )
        history = roster.history
        if history.num_rows:
            history = history.append_column(
                "_order", pa.nulls(history.num_rows, pa.int64())
            )
            persons = pa.concat_tables([now, history], promote_options="default")
        else:
            persons = now
        con = locked_connection({"persons": persons, "grades": _grade_values()})
        try:
            features = engines.arrow(
                con,
                f"SELECT * EXCLUDE (_order) FROM ({features_sql()}) "
                "WHERE _order IS NOT NULL ORDER BY _order",
            )
        finally:
            con.close()
        scores = trained.score(features)
        factors = trained.contributions(features, top=top)
        text = ["; ".join(_factor_label(name) for name, _ in row) for row in factors]
        return features.append_column(
            "risk_score", pa.array(np.round(scores, 4))
        ).append_column("risk_factors", pa.array(text, pa.string()))

    def ranked(self, roster: Roster, *, top: int = 3) -> pa.Table:
        """The roster worst first, as every door shows it: with a trained model,
        scored (``risk_score``, ``risk_factors``) and ordered by points, then by
        risk score (ties keep the roster's order); without one, the roster as it
        comes (already worst first)."""
        scored = self.score(roster, top=top)
        if scored is None:
            return roster.table
        return scored.sort_by([("points", "descending"), ("risk_score", "descending")])


def _fitted(
    read: TrainingRows, *, validate_last: int, flagged_fraction: float
) -> tuple[TrainedModels, RiskReport]:
    """Both models fitted on ``read`` and their validation report (pure: no
    warehouse)."""
    from backbone.measures.risk_model import train

    rows = read.table
    trained = train(
        rows,
        features=FEATURES,
        label="label",
        cohort="cohort",
        subgroups=SUBGROUPS,
        validate_last=validate_last,
        flagged_fraction=flagged_fraction,
        min_cell=read.min_cell_size,
    )
    report = {
        "features": list(FEATURES),
        "train_cohorts": list(trained.train_cohorts),
        "validate_cohorts": list(trained.validate_cohorts),
        "best": trained.best,
        "models": {
            name: _small_groups_blanked(asdict(r))
            for name, r in trained.reports.items()
        },
        "min_cell": read.min_cell_size,
        "tiers": _tier_recall(rows, trained.validate_cohorts),
        "label": "no diploma by the expected year (dropout, none, or late)",
    }
    return trained, RiskReport.model_validate(report)


def _small_groups_blanked(report: dict[str, Any]) -> dict[str, Any]:
    """A subgroup too small to report shows no counts either."""
    report["subgroups"] = [
        {**g, "n": None, "positives": None} if g["auc"] is None else g
        for g in report["subgroups"]
    ]
    return report


_LABELS = {
    "attendance_rate": "attendance",
    "days_absent": "days absent",
    "suspension_days": "suspensions",
    "conduct_incidents": "conduct incidents",
    "state_offenses": "state offenses",
    "ela_mark": "ELA marks",
    "math_mark": "math marks",
    "ela_math_fails": "ELA/math failures",
    "core_course_fails": "core course failures",
    "course_fails": "course failures",
    "gpa": "GPA",
    "credits_earned": "credits this year",
    "credits_gap": "credits behind",
    "grade": "grade",
    "attendance_rate_history": "attendance in earlier years",
    "mark_history": "marks in earlier years",
    "gpa_history": "GPA in earlier years",
    "core_fails_to_date": "core failures so far",
    "suspension_days_to_date": "suspensions so far",
    "behavior_to_date": "behavior incidents so far",
    "economic_disadvantaged_flag": "economic disadvantage",
    "disability_flag": "disability",
    "english_learner_flag": "English learner",
}


def _factor_label(feature: str) -> str:
    return _LABELS.get(feature, feature)


def _tier_recall(rows: pa.Table, validate: Sequence[int]) -> dict[str, Any]:
    """How many of the validation cohorts' non-graduates the rule-based ABC tiers
    flagged in the same rows: the baseline the score must beat."""
    cohort = np.asarray(rows.column("cohort").to_numpy(zero_copy_only=False))
    label = np.asarray(rows.column("label").to_numpy(zero_copy_only=False)) == 1
    tier = np.asarray(rows.column("tier").to_numpy(zero_copy_only=False)).astype(str)
    keep = np.isin(cohort, list(validate))
    label, tier = label[keep], tier[keep]
    out: dict[str, Any] = {"rows": int(keep.sum()), "non_graduates": int(label.sum())}
    for name, flagged in (
        ("high_risk", tier == "high risk"),
        ("watch_or_high_risk", np.isin(tier, ["watch", "high risk"])),
    ):
        hits = int((flagged & label).sum())
        out[name] = {
            "flagged": float(flagged.mean()) if len(flagged) else 0.0,
            "recall": hits / int(label.sum()) if label.sum() else None,
            "precision": hits / int(flagged.sum()) if flagged.sum() else None,
        }
    return out
