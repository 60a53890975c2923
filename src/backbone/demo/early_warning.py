"""The demo's early-warning run: indicators for every school year, the tiers and the
students at risk whom no program serves (through the release gate), a district's
roster, the risk model validated on later cohorts, and the charts."""

from __future__ import annotations

from pathlib import Path

from backbone.demo.users import DemoUsers
from backbone.errors import PolicyDenied, UserError
from backbone.governance.release import TOTAL
from backbone.measures.figures import draw_charts
from backbone.model.calendar import school_year_label
from backbone.warehouse import Warehouse

__all__ = ["early_warning_tour"]


def _cells(table: list[dict[str, object]], key: str) -> dict[str, object]:
    return {str(r[key]): r["persons"] for r in table}


def early_warning_tour(wh: Warehouse, users: DemoUsers, charts: Path) -> list[str]:
    lines = ["Early warning (indicators, segments, risk model):"]
    steward = wh.access(users.steward, "early_warning")
    with wh.session(users.steward, purpose="early_warning") as s:
        snaps = wh.indicators.compute(s, steward)
    latest = snaps[-1]
    lines.append(
        f"  computed {len(snaps)} year-end snapshots "
        f"({sum(s.records for s in snaps):,} record rows, "
        f"{sum(s.seconds for s in snaps):.1f} s, definitions v{latest.definition_version})"
    )
    try:
        with wh.session(users.steward, purpose="early_warning") as s:
            trained = wh.risk.train(s, steward)
    except UserError as why:
        lines.append(f"  risk model not trained: {why}")
    else:
        report = trained.report
        models = report.models
        best = models[trained.best]
        other = next(n for n in models if n != trained.best)
        tier = report.tiers.high_risk
        lines.append(
            f"  risk model {trained.model_id} (classes of "
            f"{', '.join(map(str, report.train_cohorts))} → validated on "
            f"{', '.join(map(str, report.validate_cohorts))}): AUC "
            f"{best.auc:.3f} {trained.best}, {models[other].auc:.3f} {other}; "
            f"flagging {100 * best.flagged_fraction:.0f}% finds "
            f"{100 * best.recall:.0f}% of non-graduates, the high-risk tier "
            f"({100 * tier.flagged:.0f}% flagged) {100 * (tier.recall or 0):.0f}% "
            "(`backbone risk report`)"
        )
        gaps = [
            f"{g.group}={g.value}"
            for g in best.subgroups
            if g.gap and g.value != "(missing)"
        ]
        if gaps:
            lines.append(f"  subgroup gaps to watch: {', '.join(gaps)}")
    drawn = draw_charts(wh, steward, charts)
    lines.append(
        f"  {len(drawn.written)} chart files (PNG and HTML, drawn offline) in {charts}"
    )
    lines += [f"  chart left out: {note}" for note in drawn.withheld]

    def shown(value: object) -> str:
        return "suppressed" if value is None else f"{value:,}"

    try:
        tiers = wh.indicators.count(steward, ["tier"])
        unserved = wh.indicators.count(
            steward, ["in_program"], where={"tier": ["high risk"]}
        )
    except PolicyDenied as why:
        lines.append(f"  tier counts withheld by the release gate: {why}")
    else:
        by_tier = _cells(tiers.table.to_pylist(), "tier")
        year = school_year_label(
            latest.school_year, wh.settings["calendar.school_year_start_month"]
        )
        lines.append(
            f"  {year}: "
            + ", ".join(
                f"{t} {shown(by_tier.get(t))}"
                for t in ("on track", "watch", "high risk")
            )
            + f" students (release {tiers.release_id})"
        )
        served = _cells(unserved.table.to_pylist(), "in_program")
        lines.append(
            f"  at high risk and in no program: {shown(served.get('false'))} of "
            f"{shown(served.get(TOTAL))} (release {unserved.release_id})"
        )
    district, analyst = next(iter(users.analysts.items()))
    roster = wh.indicators.roster(
        wh.access(analyst, "early_warning"), tiers=["high risk"]
    )
    pseudonymous = sorted(
        p for p, why in roster.refused.items() if "pseudonymously" in why
    )
    lines.append(
        f"  {district}'s roster: {roster.table.num_rows:,} of its students at high "
        f"risk, from {', '.join(roster.providers)}'s records; "
        + (
            f"{', '.join(pseudonymous)} share only pseudonyms with districts, so "
            "their programs are not attached to named students"
            if pseudonymous
            else "no pseudonymous rows withheld"
        )
    )
    return lines
