"""The risk model's report is a typed record, stored as the JSON it always was:
a report stored before it was typed reads back, and reading adds the warehouse's
columns (model id, when, by whom) without changing what is stored."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from backbone.measures.risk_report import RiskReport

STORED = {
    "features": ["attendance_rate", "gpa"],
    "train_cohorts": [2021, 2022],
    "validate_cohorts": [2023],
    "best": "logistic",
    "models": {
        "logistic": {
            "model": "logistic",
            "auc": 0.81,
            "precision": 0.4,
            "recall": 0.7,
            "flagged_fraction": 0.2,
            "threshold": 0.31,
            "calibration": [
                {
                    "lower": 0.0,
                    "upper": 0.1,
                    "predicted": 0.05,
                    "observed": 0.04,
                    "n": 120,
                }
            ],
            "subgroups": [
                {
                    "group": "sex",
                    "value": "Female",
                    "n": None,
                    "positives": None,
                    "auc": None,
                    "precision": None,
                    "recall": None,
                    "flagged": None,
                    "gap": False,
                }
            ],
            "n_train": 900,
            "n_validate": 300,
            "positives_train": 90,
            "positives_validate": 30,
        }
    },
    "min_cell": 10,
    "tiers": {
        "rows": 300,
        "non_graduates": 30,
        "high_risk": {"flagged": 0.1, "recall": 0.5, "precision": 0.5},
        "watch_or_high_risk": {"flagged": 0.3, "recall": 0.8, "precision": None},
    },
    "label": "no diploma by the expected year (dropout, none, or late)",
}


def test_a_stored_report_reads_back_typed_and_stores_the_same() -> None:
    report = RiskReport.parse(
        json.dumps(STORED), model_id=4, trained_at="2026-03-01", trained_by="steward"
    )
    assert report.model_id == 4 and report.best_model.auc == 0.81
    assert report.best_model.calibration[0].n == 120
    assert report.best_model.subgroups[0].n is None  # too small: no counts
    assert report.tiers.watch_or_high_risk.precision is None
    assert report.train_cohorts == (2021, 2022)
    assert json.loads(report.stored()) == STORED


def test_a_report_missing_a_part_names_it() -> None:
    broken = {k: v for k, v in STORED.items() if k != "tiers"}
    with pytest.raises(ValidationError, match="tiers"):
        RiskReport.parse(json.dumps(broken))
