"""Commands for early warning: ``indicators`` (definitions, compute, snapshots,
roster, count, transitions, trend, charts) and ``risk`` (train, report). Doors
only: the warehouse computes, the policy layer and release gate decide."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from backbone.cli.common import (
    EngineOption,
    ForceOption,
    FormatOption,
    OutputForm,
    PurposeOption,
    TokenOption,
    UserOption,
    Warehouse,
    WarehouseOption,
    _plain,
    ask,
    doors,
    emit,
    export_target,
    may_write,
    notes,
    parse_date,
    parse_pairs,
    print_release,
    signed_in,
    working,
    write_file,
)

if TYPE_CHECKING:
    from backbone.measures.indicators import Snapshot
    from backbone.measures.risk_report import RiskReport

indicators_app = typer.Typer(
    help="Early-warning indicators: compute, rosters, segments, trends, charts.",
    no_args_is_help=True,
)
definitions_app = typer.Typer(
    help="The indicator definitions (versioned cut points).", no_args_is_help=True
)
risk_app = typer.Typer(
    help="The predictive risk score: train, validate, report.", no_args_is_help=True
)

EarlyWarningPurpose = Annotated[
    str,
    typer.Option("--purpose", help="Why you need it (an agreement's purpose)."),
]
YearOption = Annotated[
    int | None,
    typer.Option(
        "--school-year",
        min=1900,
        max=2200,
        help="School year by its ending year (2026 = 2025-26).",
    ),
]
AsOfOption = Annotated[
    str | None, typer.Option("--as-of", help="A snapshot day (YYYY-MM-DD).")
]


def school_year_label(year: int, start_month: int) -> str:
    from backbone.model.calendar import school_year_label as label

    return label(year, start_month)


def register(app: typer.Typer) -> None:
    indicators_app.add_typer(definitions_app, name="definitions")
    app.add_typer(indicators_app, name="indicators")
    app.add_typer(risk_app, name="risk")


def _as_of(text: str | None) -> date | None:
    return parse_date(text, "--as-of") if text else None


# --- definitions ---------------------------------------------------------------------


@definitions_app.command("show")
def definitions_show(
    version: Annotated[
        int | None, typer.Option(help="A recorded version (default: in use).")
    ] = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Print the indicator definitions (YAML) in use, or of a version."""
    with doors(), Warehouse.open(warehouse, read_only=True) as wh:
        text = wh.indicators.definitions.text(version)
    _plain().print(text, end="")


@definitions_app.command("history")
def definitions_history(
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
) -> None:
    """Every recorded version of the definitions."""
    with doors(), Warehouse.open(warehouse, read_only=True) as wh:
        rows = wh.indicators.definitions.history()
    table = Table(title="Indicator definitions")
    for column in ("version", "recorded", "by", "note"):
        table.add_column(column)
    for v in rows:
        table.add_row(
            str(v.version),
            f"{v.recorded_at:%Y-%m-%d %H:%M}" if v.recorded_at else "not yet",
            v.recorded_by,
            v.note or "",
        )
    emit(table, form)


@definitions_app.command("set")
def definitions_set(
    file: Annotated[Path, typer.Argument(help="A YAML file of definitions.")],
    note: Annotated[str | None, typer.Option(help="Why they changed.")] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record new definitions (a steward admin); later computations use them, and
    every value keeps the version it was computed with."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token)) as s,
    ):
        version = wh.indicators.definitions.record_file(s, file, note=note)
    _plain().print(f"Indicator definitions version {version} in use.")


# --- computing ---------------------------------------------------------------------


@indicators_app.command("compute")
def compute(
    as_of: AsOfOption = None,
    school_year: YearOption = None,
    purpose: PurposeOption = "early_warning",
    engine: EngineOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Compute indicators per person and school year (at each year's end, or
    today for the year under way), or one in-year snapshot with --as-of; under
    the purpose the agreements give them for (an evaluation-only agreement:
    --purpose program_evaluation)."""
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        with (
            working("computing indicators") as say,
            wh.session(principal, purpose=purpose) as s,
        ):
            snaps = wh.indicators.compute(
                s,
                wh.access(principal, purpose),
                as_of=_as_of(as_of),
                school_years=[school_year] if school_year is not None else None,
                progress=say,
                engine=engine,
            )
    _print_snapshots(snaps, "Computed", wh.settings["calendar.school_year_start_month"])


def _print_snapshots(snaps: list[Snapshot], title: str, start_month: int) -> None:
    table = Table(title=f"{title} early-warning snapshots")
    for column in ("school year", "as of", "definitions", "records", "seconds"):
        table.add_column(column, justify="right")
    for s in snaps:
        table.add_row(
            school_year_label(s.school_year, start_month),
            str(s.as_of),
            f"v{s.definition_version}",
            f"{s.records:,}",
            f"{s.seconds:.2f}" if s.seconds else "",
        )
    _plain().print(table)


@indicators_app.command("snapshots")
def snapshots(
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """The snapshots computed so far (the steward's)."""
    with doors(), Warehouse.open(warehouse) as wh:
        access = wh.access(signed_in(wh, user, token), "early_warning")
        snaps = wh.indicators.computed(access)
    _print_snapshots(snaps, "Stored", wh.settings["calendar.school_year_start_month"])


# --- reading -------------------------------------------------------------------------


def _pct(value: Any) -> str:
    return "" if value is None else f"{100 * value:.1f}%"


@indicators_app.command("roster")
def roster(
    purpose: EarlyWarningPurpose = "early_warning",
    school_year: YearOption = None,
    as_of: AsOfOption = None,
    tier: Annotated[
        list[str] | None,
        typer.Option(help="Only this tier: on track, watch, high risk (repeatable)."),
    ] = None,
    school: Annotated[str | None, typer.Option(help="Only this school id.")] = None,
    district: Annotated[
        str | None, typer.Option(help="Only students last enrolled in this district.")
    ] = None,
    grade: Annotated[
        str | None, typer.Option(help="Only this grade level, e.g. 'Ninth grade'.")
    ] = None,
    not_served: Annotated[
        bool,
        typer.Option(
            "--not-served", help="Only students in no program or intervention."
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many.")] = 40,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also save the whole roster as a .csv or .xlsx file (if the "
            "agreements permit exporting; recorded with the file's name)."
        ),
    ] = None,
    force: ForceOption = False,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
) -> None:
    """Students by risk, worst first: the persons the agreements let you see,
    combined across every provider whose rows you may read; names where you may see
    them identified."""
    from backbone.api.questions import RosterParams
    from backbone.governance.access import export_bytes

    with doors():
        file_form = export_target(out, force) if out else None
    with doors():
        page = ask(
            "roster",
            RosterParams(
                purpose,
                school_year=school_year,
                as_of=_as_of(as_of),
                tier=tier,
                school=school,
                district=district,
                grade=grade,
                not_served=not_served,
                # the whole roster when it is saved, else what is shown
                limit=None if out else limit,
                # a roster saved, or printed for a program, is an extract
                extract=str(out)
                if out
                else (
                    None if form is OutputForm.table else f"standard output ({form})"
                ),
            ),
            warehouse,
            user,
            token,
        )
    words = page.table
    table = Table(
        title=f"Early warning {page.year_label} "
        f"as of {page.as_of} (definitions v{page.definition_version})"
    )
    for column in words.column_names:
        table.add_column(
            column, justify="right" if column in ("attendance", "risk") else "left"
        )
    for row in words.slice(0, limit).to_pylist():
        row["attendance"] = _pct(row["attendance"])
        if "risk" in row:
            row["risk"] = f"{row['risk']:.2f}"
        table.add_row(*map(str, row.values()))
    emit(table, form)
    note = notes(form)
    if out and file_form:
        with doors():
            write_file(out, export_bytes(words, file_form), "the roster")
        note.print(f"Saved all {words.num_rows:,} students to {out}.")
    note.print(
        f"{page.total_rows:,} students ({min(limit, page.total_rows)} shown); data of "
        f"{', '.join(page.providers) or 'no provider'}"
        + (
            "; withheld: "
            + "; ".join(f"{p} ({why})" for p, why in page.refused.items())
            if page.refused
            else ""
        )
    )


@indicators_app.command("count")
def count(
    by: Annotated[
        list[str] | None,
        typer.Option(help="A dimension, e.g. school_id, tier (repeatable, at most 2)."),
    ] = None,
    purpose: EarlyWarningPurpose = "early_warning",
    school_year: YearOption = None,
    as_of: AsOfOption = None,
    where: Annotated[
        list[str] | None, typer.Option(help="NAME=VALUE filter (repeatable).")
    ] = None,
    share_of: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=VALUE: also the share matching it, e.g. tier=high risk."
        ),
    ] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Students per segment (district, school, grade, demographic group, program
    participation, tier, indicator level), through the release gate."""
    from backbone.api.questions import IndicatorCountParams

    with doors():
        release = ask(
            "indicator_count",
            IndicatorCountParams(
                purpose,
                by or [],
                school_year,
                _as_of(as_of),
                where or [],
                share_of or [],
            ),
            warehouse,
            user,
            token,
        )
    print_release(release, f"students by {', '.join(by or []) or 'nothing'}")


def _snapshot_arg(wh: Warehouse, text: str) -> Snapshot:
    """A snapshot named by a day (YYYY-MM-DD) or a school year (2025)."""
    if text.isdigit():
        return wh.indicators.snapshot(school_year=int(text))
    return wh.indicators.snapshot(as_of=parse_date(text, "snapshot"))


@indicators_app.command("transitions")
def transitions(
    before: Annotated[
        str, typer.Option("--from", help="A snapshot day or school year.")
    ],
    after: Annotated[str, typer.Option("--to", help="A later snapshot day or year.")],
    purpose: EarlyWarningPurpose = "early_warning",
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Students by tier at one snapshot and at another, through the release gate."""
    with doors(), Warehouse.open(warehouse) as wh:
        access = wh.access(signed_in(wh, user, token), purpose)
        a, b = _snapshot_arg(wh, before), _snapshot_arg(wh, after)
        release = wh.indicators.transitions(access, a, b)
    print_release(release, f"tier at {a.as_of} by tier at {b.as_of}")


@indicators_app.command("trend")
def trend(
    by: Annotated[
        str, typer.Option(help="district, school_id, grade_level or another dimension.")
    ] = "district",
    share_of: Annotated[
        str, typer.Option(help="NAME=VALUE whose share is tracked.")
    ] = "tier=high risk",
    purpose: EarlyWarningPurpose = "early_warning",
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """The share of students matching a condition, per group and school year
    (each year's latest snapshot), through the release gate."""
    with doors(), Warehouse.open(warehouse) as wh:
        release = wh.indicators.trend(
            wh.access(signed_in(wh, user, token), purpose),
            by,
            parse_pairs([share_of], "--share-of"),
        )
    print_release(release, f"{share_of} by {by} and school year")


@indicators_app.command("charts")
def charts(
    out: Annotated[
        Path, typer.Option(help="Folder for the PNG and HTML files.")
    ] = Path("charts"),
    purpose: EarlyWarningPurpose = "early_warning",
    force: ForceOption = False,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Charts drawn offline from released (suppressed) tables: tiers by school,
    the high-risk share by district and year, and the risk model's calibration."""
    from backbone.measures.figures import CHART_STEMS, draw_charts

    with doors():  # earlier charts stay unless --force
        may_write(
            force,
            *(out / f"{s}.{kind}" for s in CHART_STEMS for kind in ("png", "html")),
        )
    with doors(), Warehouse.open(warehouse) as wh:
        access = wh.access(signed_in(wh, user, token), purpose)
        drawn = draw_charts(wh, access, out)
    for path in drawn.written:
        _plain().print(f"wrote {path}")
    for note in drawn.withheld:
        _plain().print(f"left out: {note}")


# --- risk model ----------------------------------------------------------------------


@risk_app.command("train")
def risk_train(
    flagged: Annotated[
        float, typer.Option(help="Share of students the score flags.")
    ] = 0.2,
    validate_last: Annotated[
        int, typer.Option(help="Latest cohorts kept for validation.")
    ] = 2,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Train the logistic and gradient-boosted models on earlier cohorts, validate
    on later ones, keep both and report them."""
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        with wh.session(principal, purpose="early_warning") as s:
            trained = wh.risk.train(
                s,
                wh.access(principal, "early_warning"),
                validate_last=validate_last,
                flagged_fraction=flagged,
            )
    print_risk_report(trained.report)


@risk_app.command("report")
def risk_report(
    model: Annotated[
        int | None, typer.Option(help="A model id (default latest).")
    ] = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """The validation report of the latest (or a given) risk model (the
    steward's)."""
    with doors(), Warehouse.open(warehouse) as wh:
        access = wh.access(signed_in(wh, user, token), "early_warning")
        report = wh.risk.report(access, model)
    print_risk_report(report)


def _f(value: Any, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}%" if percent else f"{value:.3f}"


def print_risk_report(report: RiskReport) -> None:
    console = _plain()
    models = report.models
    first = next(iter(models.values()))
    table = Table(
        title=f"Risk model {report.model_id}: trained on classes of "
        f"{', '.join(map(str, report.train_cohorts))}; validated on "
        f"{', '.join(map(str, report.validate_cohorts))}"
    )
    for column in (
        "model",
        "AUC",
        "flagged",
        "precision",
        "recall",
        "rows",
        "non-grads",
    ):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, r in models.items():
        table.add_row(
            name + (" (best)" if name == report.best else ""),
            _f(r.auc),
            _f(r.flagged_fraction, True),
            _f(r.precision, True),
            _f(r.recall, True),
            f"{r.n_validate:,}",
            f"{r.positives_validate:,}",
        )
    tiers = report.tiers
    for name in ("high_risk", "watch_or_high_risk"):
        t = getattr(tiers, name)
        table.add_row(
            f"ABC tier: {name.replace('_', ' ')}",
            "",
            _f(t.flagged, True),
            _f(t.precision, True),
            _f(t.recall, True),
            f"{tiers.rows:,}",
            f"{tiers.non_graduates:,}",
        )
    console.print(table)
    best = models[report.best]
    sub = Table(title=f"{report.best} by subgroup (! = gap from overall)")
    for column in (
        "group",
        "value",
        "n",
        "non-grads",
        "AUC",
        "precision",
        "recall",
        "",
    ):
        sub.add_column(
            column, justify="left" if column in ("group", "value") else "right"
        )
    for g in best.subgroups:
        sub.add_row(
            g.group,
            g.value,
            "—" if g.n is None else f"{g.n:,}",
            "—" if g.positives is None else f"{g.positives:,}",
            _f(g.auc),
            _f(g.precision, True),
            _f(g.recall, True),
            "!" if g.gap else "",
        )
    console.print(sub)
    cal = Table(title=f"{report.best} calibration (validation cohorts)")
    for column in ("predicted", "observed", "n"):
        cal.add_column(column, justify="right")
    for b in best.calibration:
        cal.add_row(_f(b.predicted, True), _f(b.observed, True), f"{b.n:,}")
    console.print(cal)
    console.print(
        f"Label: {report.label}. Subgroups smaller than the minimum cell are "
        f"not reported (—). Flagged share {_f(first.flagged_fraction, True)}."
    )
