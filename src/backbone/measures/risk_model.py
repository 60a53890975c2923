"""Early-warning risk model: the probability that a student does not graduate.

Two scikit-learn models (an L2-regularized logistic regression and a gradient-boosted
tree ensemble) are trained on the earlier cohorts and validated on the later ones, so
the reported numbers describe how the model would have done on students it had never
seen, the way it is used in practice. Each model's report gives:

* AUC on the validation cohorts;
* precision and recall when the top ``flagged_fraction`` of validation scores are
  flagged (the score at that cut is the ``threshold``);
* calibration in ten equal-width bins of predicted probability;
* the same metrics for each value of each subgroup column, at the overall threshold,
  suppressed for small cells and marked ``gap`` when clearly worse or better than
  overall.

:meth:`TrainedModels.contributions` explains a score by ablation: how much each
feature raises the score compared with a typical (training median) value.

The caller hands over a :class:`pyarrow.Table`; this module never touches the
warehouse. Saved models are joblib pickles: only load files this warehouse wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from backbone.errors import UserError

__all__ = [
    "MODELS",
    "CalibrationBin",
    "GroupMetrics",
    "ModelReport",
    "TrainedModels",
    "split_cohorts",
    "train",
]

MODELS = ("logistic", "gradient_boosting")

MISSING = "(missing)"
CALIBRATION_BINS = 10
AUC_GAP = 0.05
RECALL_GAP = 0.10

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class CalibrationBin:
    """Validation students whose predicted probability fell in ``[lower, upper)``."""

    lower: float
    upper: float
    predicted: float  # mean predicted probability in the bin
    observed: float  # share of the bin with the bad outcome
    n: int


@dataclass(frozen=True)
class GroupMetrics:
    """Validation metrics for one value of one subgroup column (e.g. sex = Female)."""

    group: str
    value: str
    n: int
    positives: int
    auc: float | None  # None when suppressed (small cell) or undefined
    precision: float | None  # at the overall flagged threshold
    recall: float | None
    flagged: float | None  # fraction of the group flagged
    gap: bool  # clearly different from overall (only for unsuppressed groups)


@dataclass(frozen=True)
class ModelReport:
    """How one model did on the validation cohorts."""

    model: str
    auc: float
    precision: float
    recall: float
    flagged_fraction: float
    threshold: float
    calibration: tuple[CalibrationBin, ...]
    subgroups: tuple[GroupMetrics, ...]
    n_train: int
    n_validate: int
    positives_train: int
    positives_validate: int


@dataclass
class TrainedModels:
    """Both fitted models, their validation reports, and what is needed to score."""

    features: tuple[str, ...]
    train_cohorts: tuple[int, ...]
    validate_cohorts: tuple[int, ...]
    reports: dict[str, ModelReport]
    best: str
    estimators: dict[str, Any]
    reference: dict[str, float]

    def score(self, table: pa.Table, model: str | None = None) -> FloatArray:
        """Probability of the bad outcome for each row; default the best model."""
        return _predict(self._estimator(model), _feature_matrix(table, self.features))

    def contributions(
        self, table: pa.Table, top: int = 3, model: str | None = None
    ) -> list[list[tuple[str, float]]]:
        """Per row, up to ``top`` features that raise the score most, largest first.

        A feature's contribution is score(x) - score(x with that feature at its
        training median). Missing values are set to the median first, so a missing
        value contributes nothing (rather than whatever the model makes of
        missingness). Features that do not raise the score are left out.
        """
        if top < 1:
            raise UserError("Ask for at least one contributing factor (top >= 1).")
        estimator = self._estimator(model)
        x = _feature_matrix(table, self.features)
        if x.shape[0] == 0:
            return []
        ref = np.array([self.reference[f] for f in self.features], dtype=np.float64)
        x = np.where(np.isnan(x), ref, x)
        base = _predict(estimator, x)
        contrib = np.empty_like(x)
        for j in range(len(self.features)):
            ablated = x.copy()
            ablated[:, j] = ref[j]
            contrib[:, j] = base - _predict(estimator, ablated)
        # Stable sort on the negated values: ties keep the declared feature order.
        order = np.argsort(-contrib, axis=1, kind="stable")[:, :top]
        values = np.take_along_axis(contrib, order, axis=1)
        names = np.asarray(self.features, dtype=object)[order]
        return [
            [
                (str(n), float(v))
                for n, v in zip(row_names, row_values, strict=True)
                if v > 0
            ]
            for row_names, row_values in zip(
                names.tolist(), values.tolist(), strict=True
            )
        ]

    def save(self, path: Path) -> None:
        """Write the models and reports to ``path`` (a joblib pickle)."""
        joblib.dump(self, path)

    @classmethod
    def load(cls, path: Path) -> TrainedModels:
        """Read models written by :meth:`save`. Only load files you trust."""
        if not Path(path).is_file():
            raise UserError(f"There is no saved risk model at {path}.")
        loaded = joblib.load(path)
        if not isinstance(loaded, cls):
            raise UserError(f"{path} is not a saved Backbone risk model.")
        return loaded

    def _estimator(self, model: str | None) -> Any:
        name = self.best if model is None else model
        if name not in self.estimators:
            raise UserError(
                f"Unknown risk model {name!r}; choose one of {', '.join(MODELS)}."
            )
        return self.estimators[name]


def split_cohorts(
    cohorts: Sequence[int], validate_last: int = 2
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Split distinct cohorts into (training, validation): the last ones validate."""
    if validate_last < 1:
        raise UserError("At least one cohort must be kept back for validation.")
    distinct = tuple(sorted({int(c) for c in cohorts}))
    if len(distinct) < validate_last + 1:
        raise UserError(
            f"The risk model needs at least {validate_last + 1} cohorts "
            f"({validate_last} to validate on and at least one to train on), "
            f"but the data has {len(distinct)}."
        )
    return distinct[:-validate_last], distinct[-validate_last:]


def train(
    table: pa.Table,
    *,
    features: Sequence[str],
    label: str,
    cohort: str,
    subgroups: Sequence[str] = (),
    validate_last: int = 2,
    flagged_fraction: float = 0.2,
    min_cell: int = 10,
    seed: int = 0,
) -> TrainedModels:
    """Fit both models on the earlier cohorts and report on the later ones."""
    features = tuple(features)
    _check_inputs(table, features, label, cohort, subgroups, flagged_fraction)

    x = _feature_matrix(table, features)
    y = _label_vector(table, label)
    cohorts = _cohort_vector(table, cohort)
    train_cohorts, validate_cohorts = split_cohorts(
        np.unique(cohorts).tolist(), validate_last
    )
    assert not set(train_cohorts) & set(validate_cohorts)
    is_train = np.isin(cohorts, train_cohorts)
    is_valid = np.isin(cohorts, validate_cohorts)
    _check_both_classes(y[is_train], "training", train_cohorts)
    _check_both_classes(y[is_valid], "validation", validate_cohorts)

    x_train, y_train = x[is_train], y[is_train]
    x_valid, y_valid = x[is_valid], y[is_valid]
    empty = [f for j, f in enumerate(features) if np.isnan(x_train[:, j]).all()]
    if empty:
        raise UserError(
            "These features have no values in the training cohorts, so the model "
            f"cannot use them: {', '.join(empty)}."
        )
    reference = {f: float(np.nanmedian(x_train[:, j])) for j, f in enumerate(features)}
    groups = {g: _group_vector(table, g)[is_valid] for g in subgroups}

    estimators: dict[str, Any] = {}
    reports: dict[str, ModelReport] = {}
    for name in MODELS:
        estimator = _make_estimator(name, seed)
        estimator.fit(x_train, y_train)
        estimators[name] = estimator
        reports[name] = _report(
            name,
            _predict(estimator, x_valid),
            y_valid,
            groups,
            flagged_fraction=flagged_fraction,
            min_cell=min_cell,
            n_train=len(y_train),
            positives_train=int(y_train.sum()),
        )
    # Ties go to the first (simpler) model in MODELS.
    best = max(MODELS, key=lambda m: reports[m].auc)
    return TrainedModels(
        features=features,
        train_cohorts=train_cohorts,
        validate_cohorts=validate_cohorts,
        reports=reports,
        best=best,
        estimators=estimators,
        reference=reference,
    )


# --- building blocks -----------------------------------------------------------------


def _make_estimator(name: str, seed: int) -> Any:
    if name == "logistic":
        return Pipeline(
            [
                ("impute", SimpleImputer(strategy="median", add_indicator=False)),
                ("scale", StandardScaler()),
                (
                    "model",
                    LogisticRegression(C=1.0, max_iter=1000, class_weight=None),
                ),
            ]
        )
    if name == "gradient_boosting":
        # Handles missing values natively, so no imputer.
        return HistGradientBoostingClassifier(
            max_iter=200,
            learning_rate=0.05,
            max_leaf_nodes=15,
            l2_regularization=1.0,
            random_state=seed,
            class_weight=None,
        )
    raise AssertionError(f"unknown model {name}")


def _predict(estimator: Any, x: FloatArray) -> FloatArray:
    if x.shape[0] == 0:
        return np.empty(0, dtype=np.float64)
    return np.asarray(estimator.predict_proba(x)[:, 1], dtype=np.float64)


def _check_inputs(
    table: pa.Table,
    features: tuple[str, ...],
    label: str,
    cohort: str,
    subgroups: Sequence[str],
    flagged_fraction: float,
) -> None:
    if not features:
        raise UserError("The risk model needs at least one feature.")
    if len(set(features)) != len(features):
        raise UserError("A feature is listed more than once.")
    if not 0 < flagged_fraction <= 1:
        raise UserError(
            f"The flagged fraction must be between 0 and 1; got {flagged_fraction}."
        )
    names = set(table.column_names)
    for role, columns in (
        ("outcome", [label]),
        ("cohort", [cohort]),
        ("subgroup", list(subgroups)),
    ):
        for column in columns:
            if column not in names:
                raise UserError(f"The {role} column {column!r} is not in the data.")


def _feature_matrix(table: pa.Table, features: Sequence[str]) -> FloatArray:
    """Features as a float matrix, nulls as NaN (always a plain array: see below)."""
    missing = [f for f in features if f not in table.column_names]
    if missing:
        raise UserError(
            f"These feature columns are not in the data: {', '.join(missing)}."
        )
    # Plain arrays at fit and predict alike, so sklearn never warns about names.
    x = np.empty((table.num_rows, len(features)), dtype=np.float64)
    for j, f in enumerate(features):
        x[:, j] = _as_float(table, f, "feature")
    return x


def _as_float(table: pa.Table, column: str, role: str) -> FloatArray:
    try:
        values = pc.cast(table.column(column), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise UserError(
            f"The {role} column {column!r} must be numeric "
            f"(it is {table.schema.field(column).type})."
        ) from exc
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)


def _label_vector(table: pa.Table, label: str) -> npt.NDArray[np.int64]:
    y = _as_float(table, label, "outcome")
    if np.isnan(y).any():
        raise UserError(
            f"The outcome column {label!r} has {int(np.isnan(y).sum())} missing "
            "values; leave out students whose outcome is not known yet."
        )
    if not np.isin(y, (0.0, 1.0)).all():
        raise UserError(
            f"The outcome column {label!r} must be true/false or 0/1 "
            "(1 = the outcome to warn about)."
        )
    return y.astype(np.int64)


def _cohort_vector(table: pa.Table, cohort: str) -> npt.NDArray[np.int64]:
    c = _as_float(table, cohort, "cohort")
    if np.isnan(c).any():
        raise UserError(
            f"The cohort column {cohort!r} has {int(np.isnan(c).sum())} missing values."
        )
    if not (c == np.round(c)).all():
        raise UserError(f"The cohort column {cohort!r} must hold whole numbers.")
    return c.astype(np.int64)


def _group_vector(table: pa.Table, column: str) -> npt.NDArray[np.str_]:
    values = pc.fill_null(pc.cast(table.column(column), pa.string()), MISSING)
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.str_)


def _check_both_classes(
    y: npt.NDArray[np.int64], part: str, cohorts: tuple[int, ...]
) -> None:
    listed = ", ".join(str(c) for c in cohorts)
    positives = int(y.sum())
    if positives == 0:
        raise UserError(
            f"The {part} cohorts ({listed}) have no students with the outcome, so "
            "the model cannot be trained or checked; check the outcome column or "
            "use cohorts whose outcome is known."
        )
    if positives == len(y):
        raise UserError(
            f"Every student in the {part} cohorts ({listed}) has the outcome, so "
            "the model cannot be trained or checked; check the outcome column."
        )


# --- metrics ---------------------------------------------------------------------------


def _threshold_at(scores: FloatArray, fraction: float) -> float:
    """The score of the k-th highest row, k = round(fraction * n) (at least 1).

    Rows scoring at least this are flagged, so ties at the cut are all flagged.
    """
    k = min(len(scores), max(1, round(fraction * len(scores))))
    return float(np.sort(scores)[::-1][k - 1])


def _precision_recall(
    flagged: BoolArray, y: npt.NDArray[np.int64]
) -> tuple[float | None, float | None]:
    hits = int((flagged & (y == 1)).sum())
    n_flagged = int(flagged.sum())
    positives = int(y.sum())
    precision = hits / n_flagged if n_flagged else None
    recall = hits / positives if positives else None
    return precision, recall


def _auc(y: npt.NDArray[np.int64], scores: FloatArray) -> float | None:
    if len(np.unique(y)) < 2:
        return None
    return float(roc_auc_score(y, scores))


def _calibration(
    scores: FloatArray, y: npt.NDArray[np.int64]
) -> tuple[CalibrationBin, ...]:
    # A score of exactly 1.0 belongs in the top bin.
    index = np.minimum(
        (scores * CALIBRATION_BINS).astype(np.int64), CALIBRATION_BINS - 1
    )
    counts = np.bincount(index, minlength=CALIBRATION_BINS)
    predicted = np.bincount(index, weights=scores, minlength=CALIBRATION_BINS)
    observed = np.bincount(
        index, weights=y.astype(np.float64), minlength=CALIBRATION_BINS
    )
    return tuple(
        CalibrationBin(
            lower=i / CALIBRATION_BINS,
            upper=(i + 1) / CALIBRATION_BINS,
            predicted=float(predicted[i] / counts[i]),
            observed=float(observed[i] / counts[i]),
            n=int(counts[i]),
        )
        for i in range(CALIBRATION_BINS)
        if counts[i]
    )


def _group_metrics(
    group: str,
    value: str,
    scores: FloatArray,
    y: npt.NDArray[np.int64],
    flagged: BoolArray,
    *,
    min_cell: int,
    overall_auc: float,
    overall_recall: float,
) -> GroupMetrics:
    n = len(y)
    positives = int(y.sum())
    if min(n, positives, n - positives) < min_cell:
        return GroupMetrics(group, value, n, positives, None, None, None, None, False)
    auc = _auc(y, scores)
    precision, recall = _precision_recall(flagged, y)
    gap = (auc is not None and abs(auc - overall_auc) >= AUC_GAP) or (
        recall is not None and abs(recall - overall_recall) >= RECALL_GAP
    )
    return GroupMetrics(
        group=group,
        value=value,
        n=n,
        positives=positives,
        auc=auc,
        precision=precision,
        recall=recall,
        flagged=float(flagged.mean()) if n else None,
        gap=gap,
    )


def _report(
    name: str,
    scores: FloatArray,
    y: npt.NDArray[np.int64],
    groups: dict[str, npt.NDArray[np.str_]],
    *,
    flagged_fraction: float,
    min_cell: int,
    n_train: int,
    positives_train: int,
) -> ModelReport:
    threshold = _threshold_at(scores, flagged_fraction)
    flagged = scores >= threshold
    auc = _auc(y, scores)
    precision, recall = _precision_recall(flagged, y)
    # Validation was checked to have both classes and at least one row is flagged.
    assert auc is not None and precision is not None and recall is not None
    subgroups = [
        _group_metrics(
            group,
            str(value),
            scores[values == value],
            y[values == value],
            flagged[values == value],
            min_cell=min_cell,
            overall_auc=auc,
            overall_recall=recall,
        )
        for group, values in groups.items()
        for value in np.unique(values)
    ]
    return ModelReport(
        model=name,
        auc=auc,
        precision=precision,
        recall=recall,
        flagged_fraction=flagged_fraction,
        threshold=threshold,
        calibration=_calibration(scores, y),
        subgroups=tuple(subgroups),
        n_train=n_train,
        n_validate=len(y),
        positives_train=positives_train,
        positives_validate=int(y.sum()),
    )
