"""Commands for funders and evaluators: ``outcomes initiative`` (set, add, show,
list), ``outcomes evaluate``, ``outcomes compare``. Doors only: the warehouse
computes; the policy layer and the release gate decide what leaves."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from backbone.cli.common import (
    EngineOption,
    ForceOption,
    FormatOption,
    OutputForm,
    TokenOption,
    UserOption,
    Warehouse,
    WarehouseOption,
    _plain,
    ask,
    doors,
    emit,
    may_write,
    parse_date,
    print_release,
    signed_in,
)
from backbone.errors import UserError
from backbone.ids import path_part
from backbone.model.outcomes import OUTCOME_CODES

if TYPE_CHECKING:
    from backbone.governance.principals import Principal
    from backbone.measures.outcomes import Evaluation


outcomes_app = typer.Typer(
    help="Funders' initiatives: outcomes against a matched comparison group.",
    no_args_is_help=True,
)
initiative_app = typer.Typer(
    help="Funders' initiatives: programs, period, target outcomes, dosage.",
    no_args_is_help=True,
)

PurposeOption = Annotated[
    str | None,
    typer.Option(
        "--purpose",
        help="Why you need it: program_evaluation (the steward), "
        "initiative_outcomes (a funder; the default for funders).",
    ),
]
OutOption = Annotated[
    Path | None,
    typer.Option("--out", help="Also write the report (JSON) and charts here."),
]


def register(app: typer.Typer) -> None:
    outcomes_app.add_typer(initiative_app, name="initiative")
    app.add_typer(outcomes_app, name="outcomes")


def _purpose(principal: Principal, purpose: str | None) -> str:
    if purpose:
        return purpose
    return "program_evaluation" if principal.is_steward else "initiative_outcomes"


# --- initiatives ---------------------------------------------------------------------


@initiative_app.command("set")
def initiative_set(
    file: Annotated[Path, typer.Argument(help="An initiative as YAML.")],
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record (or replace) an initiative from a YAML file (the steward's admins)."""
    with (
        doors(),
        Warehouse.open(warehouse) as wh,
        wh.session(signed_in(wh, user, token)) as s,
    ):
        initiative = wh.initiatives.set_file(s, file)
    _plain().print(f"Initiative {initiative.initiative_id} recorded.")


@initiative_app.command("add")
def initiative_add(
    initiative_id: Annotated[str, typer.Argument(help="e.g. INIT-ATTEND")],
    funder: Annotated[str, typer.Option(help="The funder's partner id.")],
    name: Annotated[str, typer.Option(help="The initiative's name.")],
    program: Annotated[
        list[str], typer.Option("--program", help="A program it funds (repeat).")
    ],
    target: Annotated[
        list[str] | None,
        typer.Option(
            "--target",
            help=f"An outcome it tracks (repeat): {', '.join(OUTCOME_CODES)}.",
        ),
    ] = None,
    begin: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD).")] = None,
    end: Annotated[str | None, typer.Option(help="Last day (YYYY-MM-DD).")] = None,
    min_sessions: Annotated[
        int, typer.Option(min=0, help="Least sessions attended to count as served.")
    ] = 0,
    min_hours: Annotated[
        float, typer.Option(min=0, help="Least hours to count as served.")
    ] = 0.0,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Record (or replace) an initiative from options (the steward's admins)."""
    from pydantic import ValidationError

    from backbone.errors import UserError
    from backbone.measures.initiatives import Dosage, Initiative

    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        try:
            initiative = Initiative(
                initiative_id=initiative_id,
                funder=funder,
                name=name,
                description=description,
                begin=parse_date(begin, "--begin") if begin else None,
                end=parse_date(end, "--end") if end else None,
                programs=tuple(program),
                target_outcomes=tuple(target or ()),
                min_dosage=Dosage(sessions=min_sessions, hours=min_hours),
            )
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(x) for x in first["loc"])
            raise UserError(f"{where}: {first['msg']}.") from None
        with wh.session(principal) as s:
            wh.initiatives.set(s, initiative)
    _plain().print(f"Initiative {initiative_id} recorded.")


@initiative_app.command("show")
def initiative_show(
    initiative_id: Annotated[str, typer.Argument()],
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """An initiative as YAML (no student data: anyone may read it)."""
    import yaml

    with doors(), Warehouse.open(warehouse, read_only=True) as wh:
        initiative = wh.initiatives.get(initiative_id)
    _plain().print(
        yaml.safe_dump(initiative.model_dump(mode="json"), sort_keys=False), end=""
    )


@initiative_app.command("list")
def initiative_list(
    funder: Annotated[str | None, typer.Option(help="Only this funder's.")] = None,
    warehouse: WarehouseOption = Path("warehouse"),
    form: FormatOption = OutputForm.table,
) -> None:
    """Every initiative, its funder, programs and targets."""
    with doors(), Warehouse.open(warehouse, read_only=True) as wh:
        rows = wh.initiatives.list(funder)
    table = Table(title="Initiatives")
    for column in ("initiative", "funder", "name", "programs", "targets", "dosage"):
        table.add_column(column)
    for i in rows:
        table.add_row(
            i.initiative_id,
            i.funder,
            i.name,
            ", ".join(i.programs),
            ", ".join(i.target_outcomes),
            f"{i.min_dosage.sessions} sessions" if i.min_dosage.sessions else "any",
        )
    emit(table, form)


# --- evaluation ----------------------------------------------------------------------


def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _print_evaluation(ev: Evaluation, *, details: bool = True) -> None:
    from backbone.measures.outcomes import BASELINE

    console = _plain()
    i = ev.initiative
    catalog = i.outcomes()  # the measured ones and the initiative's composites
    console.print(
        f"{i.initiative_id} — {i.name} ({i.funder}); release {ev.release_id}: "
        f"{ev.cells} groups, {ev.suppressed} suppressed; as of {ev.as_of}; under "
        f"{', '.join(ev.agreements) or 'no agreement'}."
    )
    for alias, reason in ev.left_out.items():
        console.print(f"  Left out: {alias} — {reason}")
    for code, reason in ev.unmeasured.items():
        console.print(f"  Not measured: {catalog[code].label} — {reason}")
    for p in ev.programs:
        roster = p.roster
        served, found = roster.get("served"), roster.get("found")
        rate = (
            f"{100 * found / served:.0f}%"
            if served and found is not None
            else "suppressed"
        )
        design = (
            f"{_fmt(roster.get('control'))} assigned to the control arm, "
            f"{_fmt(roster.get('control found'))} of them found."
            if "control" in roster
            else f"{_fmt(roster.get('matched'))} matched with a baseline year."
        )
        console.print(
            f"\n{p.program_name} ({p.program_id}): {_fmt(served)} new participants "
            f"with the least dosage, {_fmt(found)} found in district records "
            f"(match rate {rate}), {design}"
        )
        for sample, (used, asked) in p.ratios.items():
            if used < asked:
                console.print(
                    f"  {sample}: matched {used}:1, not {asked}:1 — too few comparison "
                    f"students for {asked} per participant."
                )
        for sample, why in p.withheld().items():
            console.print(f"  {sample}: {why}.")
        table = Table(title="Effects (participants − comparison), 95% CI")
        for column in ("sample", "outcome", "design", "effect", "95% CI", "n", "note"):
            table.add_column(column)
        for e in p.effects:
            ci = (
                f"[{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]"
                if e.effect is not None
                else "—"
            )
            target = "*" if e.outcome in i.target_outcomes else ""
            table.add_row(
                e.sample,
                catalog[e.outcome].label + target,
                e.design or "—",
                _fmt(e.effect),
                ci,
                f"{_fmt(e.n_participants)} / {_fmt(e.n_comparison)}",
                e.note,
            )
        console.print(table)
        if not details:
            continue
        bal = Table(
            title="Baseline equivalence (standardized mean differences; WWC: "
            "≤0.05 equivalent, ≤0.25 adjust)"
        )
        for column in ("sample", "covariate", "before", "after", "flag"):
            bal.add_column(column)
        for b in p.balance:
            bal.add_row(
                b.sample,
                b.label or b.covariate,
                _fmt(b.smd_before, 3),
                _fmt(b.smd_after, 3),
                b.flag or b.note,
            )
        console.print(bal)
        for title, rows, key in (
            ("Dosage response", p.dose, "band"),
            ("Subgroups", p.subgroups, "value"),
        ):
            if not rows:
                continue
            t = Table(title=f"{title} ({BASELINE} sample, target outcomes)")
            for column in ("outcome", "group", "effect", "95% CI", "n"):
                t.add_column(column)
            for r in rows:
                if r.sample != BASELINE:
                    continue
                t.add_row(
                    catalog[r.outcome].label,
                    (f"{r.group}: " if r.group is not None else "")
                    + str(getattr(r, key)),
                    _fmt(r.effect),
                    f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
                    if r.effect is not None
                    else "suppressed",
                    f"{_fmt(r.n_participants)} / {_fmt(r.n_comparison)}",
                )
            console.print(t)


def write_evaluation(ev: Evaluation, out: Path) -> list[Path]:
    """The published report as JSON and its charts (effects with intervals,
    baseline balance), from released numbers only."""
    from backbone.measures.evaluation_charts import evaluation_charts

    out.mkdir(parents=True, exist_ok=True)
    report = out / f"{path_part(ev.initiative.initiative_id, 'initiative')}.json"
    report.write_bytes(ev.report_json())
    return [report, *evaluation_charts(ev, out)]


@outcomes_app.command("evaluate")
def evaluate(
    initiative_id: Annotated[str, typer.Argument(help="The initiative to evaluate.")],
    purpose: PurposeOption = None,
    ratio: Annotated[
        int, typer.Option(min=1, max=5, help="Comparisons per participant.")
    ] = 2,
    caliper: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="Caliper, SD of the propensity logit."),
    ] = 0.2,
    design: Annotated[
        str,
        typer.Option(
            help="matched (a comparison matched on the past) or randomized "
            "(students assigned at random between the program and --control)."
        ),
    ] = "matched",
    control: Annotated[
        str | None,
        typer.Option(
            help="Randomized: the program id the control arm's students are sent "
            "under (only that arm is compared)."
        ),
    ] = None,
    adjust: Annotated[
        bool,
        typer.Option(
            help="Randomized: adjust for last year's outcome and demographics "
            "(where every analysed student has them)."
        ),
    ] = False,
    out: OutOption = None,
    force: ForceOption = False,
    engine: EngineOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Each program's new participants (the initiative's least dosage) against a
    matched comparison group of non-participants of the same school, grade and
    year: balance, effects with 95% intervals, dosage, subgroups, match rate. With
    --design randomized, those assigned to the program against those assigned to
    the --control arm, the difference in means within schools."""
    from backbone.measures.outcomes import EvaluationSettings

    with doors():  # an earlier report of this initiative stays unless --force
        may_write(
            force,
            *([out / f"{path_part(initiative_id, 'initiative')}.json"] if out else []),
        )
    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        access = wh.access(principal, _purpose(principal, purpose))
        ev = wh.outcomes.evaluate(
            access,
            initiative_id,
            settings=EvaluationSettings(
                ratio=ratio,
                caliper=caliper,
                design=design,
                control=control,
                adjust=adjust,
            ),
            engine=engine,
        )
        written = write_evaluation(ev, out) if out else []
        _print_evaluation(ev)
        for path in written:
            _plain().print(f"Wrote {path}")
        reasons = [p.why_no_effect(ev.left_out) for p in ev.programs]
        if all(reasons):
            raise UserError(
                "no effect could be estimated — " + " | ".join(map(str, reasons))
            )


@outcomes_app.command("compare")
def compare(
    funder: Annotated[
        str, typer.Option(help="The funder whose initiatives to set side by side.")
    ],
    purpose: PurposeOption = None,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """A funder's initiatives side by side: each program's effect on the
    initiative's target outcomes (the baseline sample)."""
    from backbone.measures.outcomes import BASELINE

    with doors(), Warehouse.open(warehouse) as wh:
        principal = signed_in(wh, user, token)
        access = wh.access(principal, _purpose(principal, purpose))
        evaluations = [
            wh.outcomes.evaluate(access, i.initiative_id)
            for i in wh.initiatives.list(funder)
        ]
    table = Table(title=f"Initiatives of {funder}: effects on their targets, 95% CI")
    for column in ("initiative", "program", "outcome", "effect", "95% CI", "n"):
        table.add_column(column)
    for ev in evaluations:
        for p in ev.programs:
            for e in p.effects:
                if (
                    e.sample != BASELINE
                    or e.outcome not in ev.initiative.target_outcomes
                ):
                    continue
                table.add_row(
                    ev.initiative.name,
                    p.program_name,
                    ev.initiative.outcomes()[e.outcome].label,
                    _fmt(e.effect),
                    f"[{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]"
                    if e.effect is not None
                    else e.note or "—",
                    f"{_fmt(e.n_participants)} / {_fmt(e.n_comparison)}",
                )
    _plain().print(table)


# --- college outcomes, the scorecard, what each partner gets ---------------------


@outcomes_app.command("college")
def college(
    by: Annotated[
        str,
        typer.Option(
            help="Dimensions, comma-separated: high_school, high_school_id, district, "
            "class_of, sex, race, hispanic_latino_ethnicity, economic_disadvantaged, "
            "english_learner, disability."
        ),
    ] = "high_school,class_of",
    measure: Annotated[
        list[str] | None,
        typer.Option("--measure", help="Only these measures (repeat)."),
    ] = None,
    purpose: Annotated[
        str,
        typer.Option(
            "--purpose", help="college_outcomes (districts) or shared_measurement."
        ),
    ] = "college_outcomes",
    out: OutOption = None,
    force: ForceOption = False,
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """Graduates' college outcomes by high school and graduating class, shaped like
    the Clearinghouse StudentTracker reports: enrollment in the first fall, within
    one and two years, 2- vs 4-year, persistence, remediation, degrees."""
    from backbone.api.questions import CollegeParams

    dims = tuple(d.strip() for d in by.split(",") if d.strip())
    with doors():  # an earlier chart stays unless --force
        may_write(force, *_chart_files(out, "college-going"))
    with doors():
        report = ask(
            "college",
            CollegeParams(",".join(dims), measure, purpose),
            warehouse,
            user,
            token,
        )
    for m in report.measures.values():
        if m.release is None:
            _plain().print(f"{m.label}: {m.refused or 'not released'}")
            for alias, why in m.left_out.items():
                _plain().print(f"  left out: {alias} — {why}")
            continue
        print_release(m.release, f"{m.label} ({m.denominator})")
    if out:
        for path in _college_charts(report, out):
            _plain().print(f"Wrote {path}")


def _chart_files(out: Path | None, stem: str) -> list[Path]:
    return [out / f"{stem}.png", out / f"{stem}.html"] if out else []


def _college_charts(report: Any, out: Path) -> list[Path]:
    """College-going by graduating class for the whole community (the margins)."""
    going = report.going_by_class()
    return [] if going is None else list(going.chart().write(out, "college-going"))


@outcomes_app.command("scorecard")
def scorecard_command(
    year: Annotated[
        list[int] | None,
        typer.Option(
            "--year", help="Only these school years (repeat; 2026 = 2025-26)."
        ),
    ] = None,
    purpose: Annotated[
        str, typer.Option("--purpose", help="An agreement's purpose.")
    ] = "shared_measurement",
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """The shared-measurement scorecard: chronic absence, 9th-grade on-track,
    graduation, college enrollment and persistence, kindergarten readiness — by
    school year, each district beside the community."""
    from backbone.api.questions import ScorecardParams

    with doors():
        card = ask("scorecard", ScorecardParams(year, purpose), warehouse, user, token)
    for r in card.indicators:
        grid = card.grid(r.code)
        if grid is None or r.status != "released":
            _plain().print(f"{r.label}: {r.status} — {r.note}")
            continue
        t = Table(title=f"Release {grid.release_id}: {grid.label}")
        t.add_column("district")
        for y in grid.years:
            t.add_column(y, justify="right")
        for row in grid.rows:
            t.add_row(row.name, *(cell.text for cell in row.cells))
        _plain().print(t)
        _plain().print(f"  {r.definition}")


@outcomes_app.command("what-we-get")
def what_we_get_command(
    partner: Annotated[str, typer.Argument(help="The partner the summary is for.")],
    purpose: Annotated[
        str, typer.Option("--purpose", help="An agreement's purpose.")
    ] = "shared_measurement",
    user: UserOption = None,
    token: TokenOption = None,
    warehouse: WarehouseOption = Path("warehouse"),
) -> None:
    """What a partner can see now that its own system could not show: a summary
    for its board, every number from a released table."""
    from backbone.measures.what_we_get import what_we_get

    with doors(), Warehouse.open(warehouse) as wh:
        access = wh.access(signed_in(wh, user, token), purpose)
        findings = what_we_get(wh, access, partner)
    console = _plain()
    console.print(f"What {partner} gets from the partnership:")
    for f in findings:
        releases = (
            f" (releases {', '.join(map(str, f.release_ids))})" if f.release_ids else ""
        )
        console.print(f"- {f.topic}: {f.text}{releases}")
