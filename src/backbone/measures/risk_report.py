"""The risk model's validation report as typed records: what ``backbone risk
report``, the demo and later a web page show. It is stored with the model as JSON
(``gov.risk_model.report``) and read back through :meth:`RiskReport.parse`."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = [
    "CalibrationBand",
    "ModelValidation",
    "RiskReport",
    "SubgroupValidation",
    "TierRecall",
    "TiersBaseline",
]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, protected_namespaces=())


class CalibrationBand(_Record):
    """Validation students whose predicted probability fell in ``[lower, upper)``."""

    lower: float
    upper: float
    predicted: float
    observed: float
    n: int


class SubgroupValidation(_Record):
    """The model on one value of one subgroup; counts None (and every metric) when
    the group is smaller than the minimum cell."""

    group: str
    value: str
    n: int | None
    positives: int | None
    auc: float | None
    precision: float | None
    recall: float | None
    flagged: float | None
    gap: bool


class ModelValidation(_Record):
    """How one model did on the validation cohorts."""

    model: str
    auc: float
    precision: float
    recall: float
    flagged_fraction: float
    threshold: float
    calibration: tuple[CalibrationBand, ...]
    subgroups: tuple[SubgroupValidation, ...]
    n_train: int
    n_validate: int
    positives_train: int
    positives_validate: int


class TierRecall(_Record):
    flagged: float
    recall: float | None
    precision: float | None


class TiersBaseline(_Record):
    """How many of the same non-graduates the rule-based ABC tiers flagged."""

    rows: int
    non_graduates: int
    high_risk: TierRecall
    watch_or_high_risk: TierRecall


class RiskReport(_Record):
    """A trained model pair's validation report."""

    features: tuple[str, ...]
    train_cohorts: tuple[int, ...]
    validate_cohorts: tuple[int, ...]
    best: str
    models: dict[str, ModelValidation]
    min_cell: int
    tiers: TiersBaseline
    label: str
    model_id: int | None = None
    """set when read back from the warehouse, with when and by whom it was trained"""
    trained_at: str | None = None
    trained_by: str | None = None

    @property
    def best_model(self) -> ModelValidation:
        return self.models[self.best]

    def stored(self) -> str:
        """The JSON kept with the model (without the warehouse's own columns)."""
        return json.dumps(
            self.model_dump(
                mode="json", exclude={"model_id", "trained_at", "trained_by"}
            )
        )

    @classmethod
    def parse(cls, stored: str, **columns: Any) -> RiskReport:
        return cls.model_validate({**json.loads(stored), **columns})
