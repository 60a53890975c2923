"""The early-warning charts, drawn from released tables only: every number in a
picture has been through the release gate (or, for the model's calibration, is
held back where a bin counts fewer students than the minimum cell)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from backbone.errors import PolicyDenied
from backbone.governance.access import Access
from backbone.governance.release import TOTAL
from backbone.measures.charts import calibration_curve, tier_distribution, trend_lines
from backbone.model.calendar import school_year_label

if TYPE_CHECKING:
    from backbone.measures.stages import MeasureStages

__all__ = ["DrawnCharts", "draw_charts"]


@dataclass(frozen=True)
class DrawnCharts:
    written: tuple[Path, ...]
    """The chart files, PNG and HTML."""
    withheld: tuple[str, ...]
    """For each chart the release gate would not release: which, and why."""


def _year(wh: MeasureStages, school_year: object) -> str:
    return school_year_label(
        int(str(school_year)), wh.settings["calendar.school_year_start_month"]
    )


# the files' names (each written as .png and .html)
CHART_STEMS = (
    "high-risk-trend",
    "tiers-by-district",
    "tiers-by-school",
    "risk-calibration",
)


def draw_charts(wh: MeasureStages, access: Access, out: Path) -> DrawnCharts:
    """Write each chart as PNG and HTML; returns the files and, for any chart the
    release gate would not release, why it was left out."""
    written: list[Path] = []
    withheld: list[str] = []
    snap = wh.indicators.snapshot()
    label = f"{_year(wh, snap.school_year)} as of {snap.as_of}"
    # the trend first: it spans every year, so it overlaps most with later
    # tables; the whole community's (by district, the release gate suppresses
    # most cells: every student is in several years' cells)
    years = sorted({s.school_year for s in wh.indicators.snapshots()})
    try:
        release = wh.indicators.count(
            access, ["school_year"], years=years, numerator={"tier": ["high risk"]}
        )
    except PolicyDenied as why:
        withheld.append(f"high-risk trend: {why}")
    else:
        points = [
            (
                "all districts",
                _year(wh, r["school_year"]),
                r["rate_value"],
            )
            for r in release.table.to_pylist()
            if r["school_year"] != TOTAL
        ]
        points.sort(key=lambda p: p[1])
        chart = trend_lines(
            points,
            title="Share of students at high risk, by school year",
            y_label="high risk",
            notes=f"Release {release.release_id}; each year's latest snapshot; "
            "`backbone indicators trend --by district` for districts and schools.",
        )
        written += chart.write(out, CHART_STEMS[0])
    for dimension, noun, stem in (
        ("district", "district", CHART_STEMS[1]),
        ("school_id", "school", CHART_STEMS[2]),
    ):
        try:
            release = wh.indicators.count(access, [dimension, "tier"])
        except PolicyDenied as why:
            withheld.append(f"tiers by {noun}: {why}")
            continue
        rows = [
            (str(r[dimension]), str(r["tier"]), r["persons"])
            for r in release.table.to_pylist()
            if r[dimension] != TOTAL and r["tier"] != TOTAL
        ]
        chart = tier_distribution(
            rows,
            title=f"Early-warning tiers by {noun}, {label}",
            notes=f"Release {release.release_id}; students counted once, in the "
            f"{noun} they were last enrolled in. Definitions "
            f"v{snap.definition_version}.",
        )
        written += chart.write(out, stem)
    # the model describes the persons it was trained on: the steward's to show
    latest = wh.risk.latest() if access.principal.is_steward else None
    if latest is not None:
        model_id, report = latest.model_id, latest.report
        floor = wh.settings["governance.min_cell_size"]
        curves = {
            name: [
                (b.predicted, b.observed, b.n) for b in r.calibration if b.n >= floor
            ]
            for name, r in report.models.items()
        }
        chart = calibration_curve(
            curves,
            title=f"Risk model {model_id}: predicted and observed non-graduation",
            notes="Validation cohorts "
            f"{', '.join(map(str, report.validate_cohorts))}; bins with fewer "
            f"than {floor} students are left out.",
        )
        written += chart.write(out, CHART_STEMS[3])
    access.log("publish", f"early-warning charts in {out}", files=len(written))
    return DrawnCharts(tuple(written), tuple(withheld))
