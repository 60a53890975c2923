"""The early-warning risk model, on planted synthetic cohorts and tiny hand examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from backbone.errors import UserError
from backbone.measures.risk_model import (
    MODELS,
    TrainedModels,
    _calibration,
    _precision_recall,
    _threshold_at,
    split_cohorts,
    train,
)

FEATURES = ("absences", "gpa_drop", "suspensions", "mobility")
COHORTS = (2019, 2020, 2021, 2022, 2023)


def planted(seed: int = 7, n: int = 3000) -> pa.Table:
    """A latent risk drives four features (absences most) and not graduating.

    School C's outcomes ignore the latent risk, so the model predicts them badly;
    school D has only a handful of students in the validation cohorts.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    absences = 2.0 * z + rng.normal(scale=0.5, size=n)
    gpa_drop = 0.6 * z + rng.normal(size=n)
    suspensions = 0.4 * z + rng.normal(size=n)
    mobility = 0.3 * z + rng.normal(size=n)
    cohort = rng.choice(COHORTS, size=n)
    school = rng.choice(np.array(["A", "B", "C"]), p=[0.45, 0.35, 0.20], size=n)
    p = 1 / (1 + np.exp(-(-1.2 + 2.0 * z)))
    label = rng.random(n) < p
    is_c = school == "C"
    label[is_c] = rng.random(int(is_c.sum())) < 0.3
    # Eight students at school D, all in the last cohort.
    school[np.flatnonzero(cohort == 2023)[:8]] = "D"
    school_mask = rng.random(n) < 0.05
    gpa_mask = rng.random(n) < 0.05
    return pa.table(
        {
            "absences": absences,
            "gpa_drop": pa.array(gpa_drop, mask=gpa_mask),
            "suspensions": suspensions,
            "mobility": mobility,
            "did_not_graduate": label,
            "class_of": cohort.astype(np.int64),
            "school": pa.array(school.tolist(), mask=school_mask),
        }
    )


def fit(table: pa.Table, **kwargs: Any) -> TrainedModels:
    return train(
        table,
        features=FEATURES,
        label="did_not_graduate",
        cohort="class_of",
        subgroups=("school",),
        **kwargs,
    )


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return planted()


@pytest.fixture(scope="module")
def trained(table: pa.Table) -> TrainedModels:
    return fit(table)


def validation_rows(table: pa.Table, trained: TrainedModels) -> pa.Table:
    keep = pc.is_in(table.column("class_of"), pa.array(trained.validate_cohorts))
    return table.filter(keep)


def test_better_model_finds_the_planted_risk(trained: TrainedModels) -> None:
    assert set(trained.reports) == set(MODELS)
    best = trained.reports[trained.best]
    assert best.auc >= 0.75
    assert best.auc == max(r.auc for r in trained.reports.values())


def test_last_two_cohorts_validate_and_never_train(
    table: pa.Table, trained: TrainedModels
) -> None:
    assert trained.train_cohorts == (2019, 2020, 2021)
    assert trained.validate_cohorts == (2022, 2023)
    assert not set(trained.train_cohorts) & set(trained.validate_cohorts)
    report = trained.reports["logistic"]
    valid = validation_rows(table, trained)
    assert report.n_validate == valid.num_rows
    assert report.n_train == table.num_rows - valid.num_rows
    assert report.positives_validate == pc.sum(valid["did_not_graduate"]).as_py()


def test_precision_recall_at_flagged_fraction_by_hand() -> None:
    # Ten students, highest score first; four did not graduate.
    scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1])
    labels = np.array([1, 0, 1, 1, 0, 0, 1, 0, 0, 0])
    # Flag 30%: the top three (0.95, 0.9, 0.8) hold two of the four positives.
    threshold = _threshold_at(scores, 0.3)
    assert threshold == 0.8
    precision, recall = _precision_recall(scores >= threshold, labels)
    assert precision == pytest.approx(2 / 3)
    assert recall == pytest.approx(2 / 4)
    # Flag 50%: the top five hold three of the four positives.
    threshold = _threshold_at(scores, 0.5)
    precision, recall = _precision_recall(scores >= threshold, labels)
    assert (threshold, precision, recall) == (0.6, 3 / 5, 3 / 4)


def test_ties_at_the_cut_are_all_flagged() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    # Two of five asked for, but the second place is shared by three students.
    threshold = _threshold_at(scores, 0.4)
    assert threshold == 0.5
    assert int((scores >= threshold).sum()) == 4


def test_calibration_bins_by_hand() -> None:
    scores = np.array([0.05, 0.08, 0.55, 0.95, 1.0])
    labels = np.array([0, 1, 1, 1, 0])
    bins = _calibration(scores, labels)
    assert [(b.lower, b.upper, b.n) for b in bins] == [
        (0.0, 0.1, 2),
        (0.5, 0.6, 1),
        (0.9, 1.0, 2),  # a score of exactly 1 lands in the top bin
    ]
    assert bins[0].predicted == pytest.approx(0.065)
    assert bins[0].observed == pytest.approx(0.5)


def test_report_matches_its_own_threshold(
    table: pa.Table, trained: TrainedModels
) -> None:
    valid = validation_rows(table, trained)
    y = valid.column("did_not_graduate").to_numpy(zero_copy_only=False)
    for name in MODELS:
        report = trained.reports[name]
        scores = trained.score(valid, model=name)
        flagged = scores >= report.threshold
        assert flagged.mean() == pytest.approx(report.flagged_fraction, abs=0.01)
        assert report.precision == pytest.approx((flagged & y).sum() / flagged.sum())
        assert report.recall == pytest.approx((flagged & y).sum() / y.sum())


def test_calibration_covers_every_validation_student(trained: TrainedModels) -> None:
    for report in trained.reports.values():
        assert sum(b.n for b in report.calibration) == report.n_validate
        assert all(b.n > 0 for b in report.calibration)
        assert all(b.lower <= b.predicted <= b.upper for b in report.calibration)


def test_small_group_suppressed_and_badly_predicted_group_flagged(
    table: pa.Table, trained: TrainedModels
) -> None:
    report = trained.reports[trained.best]
    by_value = {g.value: g for g in report.subgroups if g.group == "school"}
    assert set(by_value) == {"A", "B", "C", "D", "(missing)"}
    d = by_value["D"]
    assert d.n == 8
    assert (d.auc, d.precision, d.recall, d.flagged, d.gap) == (
        None,
        None,
        None,
        None,
        False,
    )
    assert by_value["C"].auc is not None and by_value["C"].auc < report.auc - 0.05
    assert by_value["C"].gap
    # Groups are judged at the overall threshold, not their own.
    valid = validation_rows(table, trained)
    in_a = pc.fill_null(pc.equal(valid.column("school"), "A"), False).to_numpy(
        zero_copy_only=False
    )
    y = valid.column("did_not_graduate").to_numpy(zero_copy_only=False)[in_a]
    flagged = trained.score(valid)[in_a] >= report.threshold
    assert by_value["A"].recall == pytest.approx((flagged & y).sum() / y.sum())
    assert by_value["A"].flagged == pytest.approx(flagged.mean())


def test_contributions_name_the_driving_feature_first(
    trained: TrainedModels,
) -> None:
    ref = trained.reference
    # High absences, the other features a little above typical, one missing.
    row = pa.table(
        {
            "absences": [ref["absences"] + 5.0, ref["absences"]],
            "gpa_drop": pa.array([None, ref["gpa_drop"]], type=pa.float64()),
            "suspensions": [ref["suspensions"] + 0.5, ref["suspensions"]],
            "mobility": [ref["mobility"] + 0.5, ref["mobility"]],
        }
    )
    for name in MODELS:
        high, typical = trained.contributions(row, top=3, model=name)
        assert high[0][0] == "absences"
        values = [v for _, v in high]
        assert values == sorted(values, reverse=True)
        assert all(v > 0 for v in values)
        assert "gpa_drop" not in [f for f, _ in high]  # missing → median → nothing
        assert typical == []  # a typical student has nothing raising the score
    assert trained.score(row)[0] > 0.8


def test_save_and_load_give_identical_scores(
    tmp_path: Path, table: pa.Table, trained: TrainedModels
) -> None:
    path = tmp_path / "risk.joblib"
    trained.save(path)
    loaded = TrainedModels.load(path)
    assert loaded.best == trained.best
    assert loaded.reports == trained.reports
    for name in MODELS:
        assert np.array_equal(
            loaded.score(table, model=name), trained.score(table, model=name)
        )


def test_validation_cohort_without_positives_is_refused(table: pa.Table) -> None:
    held_back = pc.greater_equal(table.column("class_of"), 2022)
    labels = pc.if_else(held_back, False, table.column("did_not_graduate"))
    broken = table.set_column(
        table.schema.get_field_index("did_not_graduate"), "did_not_graduate", labels
    )
    # Everyone in the validation cohorts graduated: nothing to check the model on.
    with pytest.raises(UserError, match=r"validation cohorts \(2022, 2023\) have no"):
        fit(broken)


def test_missing_feature_and_too_few_cohorts_are_refused(table: pa.Table) -> None:
    with pytest.raises(UserError, match="absences"):
        fit(table.drop_columns(["absences"]))
    with pytest.raises(UserError, match="at least 3 cohorts"):
        split_cohorts([2022, 2023, 2023])
    assert split_cohorts([2023, 2021, 2022, 2021]) == ((2021,), (2022, 2023))
