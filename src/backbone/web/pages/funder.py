"""A funder's outcomes page (its initiatives side by side: effects with their
intervals, baseline balance, dosage, subgroups and the charts) and the
shared-measurement scorecard every signed-in user may open.

Every number is one the release gate published; a suppressed one is shown as
"suppressed", never as a number. The results are derived once and kept (a
:class:`~backbone.measures.shelf.Shelf`): a page read again shows what was
released, audited as shown again, until the warehouse changes."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from backbone.errors import UserError
from backbone.governance.access import Access
from backbone.governance.principals import Principal, Role
from backbone.warehouse import Warehouse
from backbone.web.door import Column, Door, NavItem, Table

if TYPE_CHECKING:
    from backbone.measures.charts import Chart
    from backbone.measures.outcomes import Evaluation, ProgramEffect
    from backbone.measures.scorecard import Scorecard

SUPPRESSED = "suppressed"
SUPPRESSED_NOTE = (
    "A cell marked “suppressed” counts a group too small to publish, or one that "
    "would let a small group be worked out from the others; the release gate "
    "withheld it and every number computed from it."
)
SCORECARD_PURPOSES = ("shared_measurement", "initiative_outcomes")

NAV = (
    NavItem(
        "/outcomes",
        "Outcomes",
        "your initiatives' programs against matched comparison groups: effects "
        "with their intervals, balance, dosage",
        lambda me: me.role is Role.funder_viewer,
        order=40,
    ),
    NavItem(
        "/scorecard",
        "Scorecard",
        "the partnership's shared measures by school year, each district beside "
        "the community",
        lambda me: True,
        order=41,
    ),
)


@dataclass(frozen=True)
class Figure:
    """A chart as an image (SVG in a data: URI) with its title for alt text."""

    title: str
    src: str


def _figure(chart: Chart) -> Figure:
    svg = chart.svg()
    if "xmlns=" not in svg[:400]:
        svg = svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1)
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return Figure(chart.title, f"data:image/svg+xml;base64,{data}")


def _value(value: Any, suppressed: bool) -> Any:
    return SUPPRESSED if suppressed else value


def _ci(e: ProgramEffect) -> str:
    if e.suppressed:
        return SUPPRESSED
    if e.effect is None or e.ci_low is None or e.ci_high is None:
        return "—"
    return f"[{e.ci_low:+.2f}, {e.ci_high:+.2f}]"


def _p(value: float | None) -> float | str | None:
    if value is None:
        return None
    return "<0.001" if value < 0.001 else round(value, 3)


def _why_no_effect(ev: Evaluation, p: Any) -> str | None:
    """Why a program has no published effect: its samples' imbalance first (the
    reason the demo's matched groups give), else the roster's or the data's."""
    if p.effects:
        return None
    withheld = p.withheld()
    if withheld:
        return "; ".join(f"{sample}: {why}" for sample, why in withheld.items())
    why: str | None = p.why_no_effect(ev.left_out)
    return why.split(": ", 1)[-1] if why else None


def _effect_rows(
    ev: Evaluation, rows: list[ProgramEffect], extra: str | None
) -> list[dict[str, Any]]:
    catalog = ev.initiative.outcomes()
    out = []
    for e in rows:
        label = catalog[e.outcome].label if e.outcome in catalog else e.outcome
        if e.outcome in ev.initiative.target_outcomes:
            label += " (target)"
        group = None
        if extra == "band":
            group = e.band
        elif extra == "group":
            group = f"{e.group}: {e.value}" if e.group else e.value
        out.append(
            {
                "sample": e.sample,
                "group": group,
                "outcome": label,
                "design": e.design,
                "effect": _value(
                    None if e.effect is None else round(e.effect, 2), e.suppressed
                ),
                "ci": _ci(e),
                "p_value": _value(_p(e.p_value), e.suppressed),
                "n_participants": _value(e.n_participants, e.n_participants is None),
                "n_comparison": _value(e.n_comparison, e.n_comparison is None),
                "note": e.note,
            }
        )
    return out


def _effect_columns(extra: str | None) -> list[Column]:
    return [
        Column("sample", "Sample"),
        *(
            [Column("group", "Dosage band" if extra == "band" else "Group")]
            if extra
            else []
        ),
        Column("outcome", "Outcome"),
        Column("design", "Design"),
        Column("effect", "Effect", numeric=True),
        Column("ci", "95% interval"),
        Column("p_value", "p", numeric=True),
        Column("n_participants", "Participants", numeric=True),
        Column("n_comparison", "Comparison", numeric=True),
        Column("note", "Note"),
    ]


@dataclass(frozen=True)
class ProgramView:
    program_id: str
    name: str
    roster: Table
    effects: Table
    balance: Table
    dose: Table
    subgroups: Table
    withheld: dict[str, str]
    why_no_effect: str | None


@dataclass(frozen=True)
class InitiativeView:
    evaluation: Evaluation
    programs: list[ProgramView]
    figures: list[Figure]


def _program_view(ev: Evaluation, p: Any) -> ProgramView:
    stem = f"{ev.initiative.initiative_id}-{p.program_id}".lower()
    roster_labels = {
        "served": "New participants with the least dosage",
        "found": "Found in district records",
        "matched": "Matched with a baseline year",
        "control": "Assigned to the control arm",
        "control found": "Control arm found in district records",
    }
    return ProgramView(
        p.program_id,
        p.program_name,
        Table(
            f"roster-{stem}",
            (Column("part", "Who"), Column("persons", "Students", numeric=True)),
            [
                {
                    "part": roster_labels.get(k, k),
                    "persons": _value(v, v is None),
                }
                for k, v in p.roster.items()
            ],
            caption=f"{p.program_name}: who was evaluated",
        ),
        Table(
            f"effects-{stem}",
            _effect_columns(None),
            _effect_rows(ev, p.effects, None),
            caption=f"{p.program_name}: effects (participants − comparison)",
            empty="No effect was published for this program.",
        ),
        Table(
            f"balance-{stem}",
            (
                Column("sample", "Sample"),
                Column("covariate", "Covariate"),
                Column("smd_before", "SMD before", numeric=True),
                Column("smd_after", "SMD after", numeric=True),
                Column("flag", "WWC"),
                Column("note", "Note"),
            ),
            [
                {
                    "sample": b.sample,
                    "covariate": b.label or b.covariate,
                    "smd_before": _value(b.smd_before, b.suppressed),
                    "smd_after": _value(b.smd_after, b.suppressed),
                    "flag": _value(b.flag, b.suppressed),
                    "note": b.note,
                }
                for b in p.balance
            ],
            caption=f"{p.program_name}: baseline equivalence (standardized mean "
            "differences; WWC: ≤0.05 equivalent, ≤0.25 adjust)",
            empty="No balance was published for this program.",
        ),
        Table(
            f"dose-{stem}",
            _effect_columns("band"),
            _effect_rows(ev, p.dose, "band"),
            caption=f"{p.program_name}: effects by dosage",
            empty="No dosage response was published.",
        ),
        Table(
            f"subgroups-{stem}",
            _effect_columns("group"),
            _effect_rows(ev, p.subgroups, "group"),
            caption=f"{p.program_name}: effects by subgroup",
            empty="No subgroup effect was published.",
        ),
        p.withheld(),
        _why_no_effect(ev, p),
    )


def _initiative_view(ev: Evaluation) -> InitiativeView:
    from backbone.measures.evaluation_charts import evaluation_chart_list

    figures = [_figure(chart) for _stem, chart in evaluation_chart_list(ev)]
    return InitiativeView(ev, [_program_view(ev, p) for p in ev.programs], figures)


def _side_by_side(views: list[InitiativeView]) -> Table:
    """Every initiative's programs' effects on its targets (the baseline sample),
    as ``backbone outcomes compare`` sets them side by side."""
    rows = []
    for view in views:
        ev = view.evaluation
        for p in ev.programs:
            targets = [
                e
                for e in p.effects
                if e.sample == "baseline" and e.outcome in ev.initiative.target_outcomes
            ]
            for row in _effect_rows(ev, targets, None):
                rows.append(
                    {"initiative": ev.initiative.name, "program": p.program_name, **row}
                )
            if not targets:
                rows.append(
                    {
                        "initiative": ev.initiative.name,
                        "program": p.program_name,
                        "note": _why_no_effect(ev, p) or "no effect on its targets",
                    }
                )
    return Table(
        "side-by-side",
        [
            Column("initiative", "Initiative"),
            Column("program", "Program"),
            *_effect_columns(None)[1:],
        ],
        rows,
        caption="Effects on each initiative's targets, side by side (95% intervals)",
        empty="Your organization funds no initiative yet.",
    )


def _scorecard_view(card: Scorecard) -> dict[str, Any]:
    from backbone.measures.charts import trend_lines

    grids: list[dict[str, Any]] = []
    for r in card.indicators:
        grid = card.grid(r.code)
        if grid is None or r.status != "released" or not grid.years:
            grids.append({"result": r, "table": None, "figure": None})
            continue
        table = Table(
            f"scorecard-{r.code}",
            [Column("name", "District"), *(Column(y, y) for y in grid.years)],
            [
                {
                    "name": row.name,
                    **{
                        y: (SUPPRESSED if cell.text.startswith("*") else cell.text)
                        for y, cell in zip(grid.years, row.cells, strict=True)
                    },
                }
                for row in grid.rows
            ],
            caption=f"{r.label} (release {grid.release_id})",
        )
        points = [
            (row.name, y, cell.value)
            for row in grid.rows
            for y, cell in zip(grid.years, row.cells, strict=True)
        ]
        figure = None
        if any(v is not None for _, _, v in points):
            figure = _figure(
                trend_lines(
                    points,
                    title=f"{r.label} by school year",
                    y_label=r.label,
                    notes=f"Release {grid.release_id}; a gap is suppressed or coded.",
                )
            )
        grids.append({"result": r, "table": table, "figure": figure})
    return {"card": card, "grids": grids}


def register(app: FastAPI, door: Door) -> None:
    door.menu(*NAV)

    @app.get("/outcomes")
    def outcomes(request: Request) -> Response:
        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            purpose = "program_evaluation" if me.is_steward else "initiative_outcomes"
            access = wh.access(me, purpose)

            def evaluated(w: Warehouse, a: Access) -> list[InitiativeView]:
                return [
                    _initiative_view(w.outcomes.evaluate(a, i.initiative_id))
                    for i in w.initiatives_for(a.principal)
                ]

            views = door.prepared(
                wh, access, "the evaluations of your initiatives", evaluated
            )
            tables: list[Table] = [_side_by_side(views)]
            for view in views:
                for p in view.programs:
                    tables += [p.roster, p.effects, p.balance, p.dose, p.subgroups]
            return {
                "views": views,
                "side_by_side": tables[0],
                "tables": tables,
                "suppressed_note": SUPPRESSED_NOTE,
            }

        return door.shown(request, "funder_outcomes.html", read)

    @app.get("/scorecard")
    def scorecard_page(request: Request) -> Response:
        purpose = request.query_params.get("purpose") or SCORECARD_PURPOSES[0]
        if purpose not in SCORECARD_PURPOSES:
            raise UserError(
                f"the scorecard is read for {' or '.join(SCORECARD_PURPOSES)}."
            )

        def read(wh: Warehouse, me: Principal) -> dict[str, Any]:
            from backbone.measures.scorecard import scorecard

            access = wh.access(me, purpose)
            view = door.prepared(
                wh,
                access,
                "the shared-measurement scorecard",
                lambda w, a: _scorecard_view(scorecard(w, a)),
            )
            return {
                **view,
                "tables": [g["table"] for g in view["grids"] if g["table"]],
                "purpose": purpose,
                "purposes": SCORECARD_PURPOSES,
                "suppressed_note": SUPPRESSED_NOTE,
            }

        return door.shown(request, "funder_scorecard.html", read)
