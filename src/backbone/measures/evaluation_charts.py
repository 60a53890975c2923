"""Charts of a published evaluation: effects with their 95% intervals (one chart
per unit of measure) and each program's baseline balance. Drawn only from the
numbers the release gate published; suppressed ones show as suppressed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from backbone.measures.charts import (
    BalanceRow,
    Chart,
    EffectRow,
    balance_plot,
    effect_intervals,
)

if TYPE_CHECKING:
    from backbone.measures.outcomes import Evaluation

__all__ = ["evaluation_chart_list", "evaluation_charts"]


def evaluation_charts(
    ev: Evaluation, out: Path, truth: dict[tuple[str, str], float] | None = None
) -> list[Path]:
    """Write the charts; ``truth`` (program, outcome) → planted effect, for the
    demo's check against its simulation."""
    written: list[Path] = []
    for stem, chart in evaluation_chart_list(ev, truth):
        written.extend(chart.write(out, stem))
    return written


def evaluation_chart_list(
    ev: Evaluation, truth: dict[tuple[str, str], float] | None = None
) -> list[tuple[str, Chart]]:
    """The charts (each with the file stem it is written under), for a door that
    shows them rather than writing them."""
    charts: list[tuple[str, Chart]] = []
    stem = ev.initiative.initiative_id.lower()
    by_unit: dict[str, list[EffectRow]] = {}
    for p in ev.programs:
        for e in p.effects:
            if e.sample != "baseline":
                continue
            outcome = ev.initiative.outcomes()[e.outcome]
            by_unit.setdefault(outcome.unit, []).append(
                EffectRow(
                    label=f"{p.program_name} — {outcome.label.lower()}",
                    effect=e.effect,
                    ci_low=e.ci_low if e.effect is not None else None,
                    ci_high=e.ci_high if e.effect is not None else None,
                    n_treated=e.n_participants,
                    n_comparison=e.n_comparison,
                    truth=(truth or {}).get((p.program_id, e.outcome)),
                )
            )
    for i, (unit, rows) in enumerate(sorted(by_unit.items())):
        chart = effect_intervals(
            f"{ev.initiative.name}: effects in {unit}",
            rows,
            unit_label=unit,
            notes=(
                "New participants with a prior school year against matched "
                "non-participants of the same school, grade and year: yearly "
                "outcomes as difference-in-differences, graduation and college as "
                f"an adjusted matched comparison. Release {ev.release_id}."
            ),
        )
        charts.append((f"{stem}-effects-{i + 1}", chart))
    for p in ev.programs:
        rows_b = [
            BalanceRow(
                covariate=b.label or b.covariate,
                # a difference that cannot be computed (a group with fewer than
                # two students) is no point on the plot; its flag says why
                smd_before=_finite(b.smd_before),
                smd_after=_finite(b.smd_after),
                flag=b.flag,
            )
            for b in p.balance
            if b.sample == "baseline"
        ]
        if not rows_b:
            continue
        chart = balance_plot(
            f"{p.program_name}: baseline equivalence",
            rows_b,
            notes="Standardized mean differences before and after matching "
            "(Hedges' g; Cox index for yes/no). What Works Clearinghouse: within "
            "0.05 equivalent, 0.05–0.25 adjusted for in the analysis, above 0.25 "
            "not equivalent.",
        )
        charts.append((f"{stem}-balance-{p.program_id.lower()}", chart))
    return charts


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
