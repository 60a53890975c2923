"""Charts render offline to PNG and a self-contained HTML page, honouring suppression."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.text import Text

from backbone.errors import UserError
from backbone.measures.charts import (
    BALANCE_FLAGS,
    SUPPRESSED_FOOTNOTE,
    TIERS,
    BalanceRow,
    Chart,
    EffectRow,
    balance_plot,
    calibration_curve,
    college_going,
    effect_intervals,
    tier_distribution,
    trend_lines,
)

TWO_SCHOOLS = [
    ("Lincoln High", "on track", 120),
    ("Lincoln High", "watch", 30),
    ("Lincoln High", "high risk", 12),
    ("Oak Elementary", "on track", 40),
    ("Oak Elementary", "watch", None),
    ("Oak Elementary", "high risk", 7),
]

TREND = [
    ("North", "2022-23", 0.1),
    ("North", "2023-24", 0.125),
    ("North", "2024-25", 0.15),
    ("South", "2022-23", 0.2),
    ("South", "2023-24", None),
    ("South", "2024-25", 0.25),
]

CURVES = {
    "logistic": [(0.05, 0.04, 500), (0.5, 0.45, 80)],
    "boosted": [(0.1, 0.12, 300), (0.8, 0.7, 20)],
}


def _tiers(title: str = "Risk tiers by school") -> Chart:
    return tier_distribution(TWO_SCHOOLS, title=title, notes="Counts below 10 hidden.")


def _trend() -> Chart:
    return trend_lines(TREND, title="High risk by district", y_label="High risk")


def _calibration() -> Chart:
    return calibration_curve(CURVES, title="Model calibration", notes="Test year.")


def _cells(page: str) -> list[list[str]]:
    """The data table's body as text cells, row by row."""
    body = page[page.index("<tbody>") : page.index("</tbody>")]
    return [
        re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)
        for row in re.findall(r"<tr>(.*?)</tr>", body)
    ]


def _assert_offline(page: str) -> None:
    lowered = page.lower()
    for forbidden in ("<script", "<link", 'src="http', "url(http", "@import", "<img"):
        assert forbidden not in lowered, forbidden


@pytest.mark.parametrize(
    ("build", "expected_rows"),
    [
        (
            _tiers,
            [
                ["Lincoln High", "120", "30", "12", "162"],
                ["Oak Elementary", "40", "—", "7", "—"],
            ],
        ),
        (
            _trend,
            [["North", "10.0%", "12.5%", "15.0%"], ["South", "20.0%", "—", "25.0%"]],
        ),
        (
            _calibration,
            [
                ["logistic", "0.050", "0.040", "500"],
                ["logistic", "0.500", "0.450", "80"],
                ["boosted", "0.100", "0.120", "300"],
                ["boosted", "0.800", "0.700", "20"],
            ],
        ),
    ],
    ids=["tiers", "trend", "calibration"],
)
def test_each_builder_writes_png_and_offline_html(
    tmp_path: Path, build: object, expected_rows: list[list[str]]
) -> None:
    assert callable(build)
    chart = build()
    png_path, html_path = chart.write(tmp_path / "new" / "folder", "chart")

    assert (png_path.name, html_path.name) == ("chart.png", "chart.html")
    assert png_path.read_bytes().startswith(b"\x89PNG")
    page = html_path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page and "<?xml" not in page and "<!DOCTYPE svg" not in page
    assert f"<h1>{chart.title}</h1>" in page
    assert _cells(page) == expected_rows
    _assert_offline(page)


def test_suppressed_cells_show_a_dash_and_the_footnote() -> None:
    page = _tiers().html()
    assert '<td class="suppressed">—</td>' in page
    assert SUPPRESSED_FOOTNOTE in page
    assert SUPPRESSED_FOOTNOTE == "suppressed to protect small groups"


def test_footnote_only_when_something_is_suppressed() -> None:
    assert SUPPRESSED_FOOTNOTE not in _calibration().html()


def test_tier_totals_and_suppressed_group_in_the_table() -> None:
    chart = _tiers()
    assert chart.columns == ("group", *TIERS, "total")
    # Oak's watch count is hidden, so its total cannot be known either.
    assert chart.rows == (
        ("Lincoln High", 120, 30, 12, 162),
        ("Oak Elementary", 40, None, 7, None),
    )


def test_a_tier_missing_from_the_table_is_unknown_not_zero() -> None:
    rows = [("Pine", "on track", 50), ("Pine", "watch", 20)]
    chart = tier_distribution(rows, title="t")
    assert chart.rows == (("Pine", 50, 20, None, None),)


def test_title_and_notes_are_escaped() -> None:
    chart = tier_distribution(
        TWO_SCHOOLS,
        title="Risk <script>alert(1)</script> & more",
        notes='Note with <b>tags</b> and "quotes"',
    )
    page = chart.html()
    assert "<script" not in page.lower()
    assert "Risk &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page
    assert "&lt;b&gt;tags&lt;/b&gt;" in page


def test_group_names_are_escaped_and_dollars_are_not_mathtext() -> None:
    rows = [("<A&B> $5 $ club", t, 10) for t in TIERS]
    chart = tier_distribution(rows, title="$ and $")
    assert chart.png().startswith(b"\x89PNG")  # would fail if parsed as mathtext
    assert "&lt;A&amp;B&gt; $5 $ club" in chart.html()


def test_output_is_deterministic(tmp_path: Path) -> None:
    chart = _tiers()
    first = chart.write(tmp_path / "a", "tiers")
    second = chart.write(tmp_path / "b", "tiers")
    assert first[0].read_bytes() == second[0].read_bytes()
    assert first[1].read_bytes() == second[1].read_bytes()
    # A chart built afresh from the same table is byte-identical too.
    assert _tiers().png() == first[0].read_bytes()


def test_trend_with_a_suppressed_value_renders_with_a_gap() -> None:
    chart = _trend()
    assert chart.columns == ("series", "2022-23", "2023-24", "2024-25")
    assert chart.rows[1] == ("South", 0.2, None, 0.25)
    south = chart.figure.axes[0].get_lines()[1]
    ys = list(south.get_ydata())
    assert ys[0] == 0.2 and ys[1] != ys[1]  # NaN: the line breaks there
    assert chart.png().startswith(b"\x89PNG")
    assert '<td class="suppressed">—</td>' in chart.html()


def test_trend_without_percent_shows_plain_numbers() -> None:
    chart = trend_lines(
        [("A", "2024", 3.25), ("A", "2025", 4.0)],
        title="Mean absences",
        y_label="days",
        percent=False,
    )
    assert _cells(chart.html()) == [["A", "3.250", "4.000"]]


def test_calibration_curve_has_reference_diagonal_and_unit_axes() -> None:
    chart = _calibration()
    ax = chart.figure.axes[0]
    assert ax.get_xlim() == (0.0, 1.0) and ax.get_ylim() == (0.0, 1.0)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["perfectly calibrated", "logistic", "boosted"]
    assert chart.columns == ("model", "predicted", "observed", "n")


def test_html_hides_the_figure_title_but_png_keeps_it() -> None:
    chart = _tiers()
    chart.html()
    # Rendering the SVG temporarily hides the drawn title; it must come back.
    assert chart.figure.get_suptitle() == "Risk tiers by school"
    drawn = [t for t in chart.figure.findobj(Text) if t.get_gid() == "backbone-title"]
    assert drawn and all(t.get_visible() for t in drawn)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: tier_distribution([], title="t"), "no rows"),
        (lambda: tier_distribution([("A", "bad", 1)], title="t"), "tier must be"),
        (lambda: tier_distribution([("A", "watch", -1)], title="t"), "≥ 0"),
        (
            lambda: tier_distribution(
                [("A", "watch", 1), ("A", "watch", 2)], title="t"
            ),
            "twice",
        ),
        (
            lambda: trend_lines([("A", "p", float("inf"))], title="t", y_label="y"),
            "finite",
        ),
        (lambda: calibration_curve({"m": [(1.5, 0.2, 10)]}, title="t"), "between"),
        (lambda: calibration_curve({}, title="t"), "no calibration"),
    ],
    ids=["empty", "tier", "negative", "duplicate", "inf", "range", "no-curves"],
)
def test_bad_input_is_a_user_error(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(UserError, match=message):
        call()


@pytest.mark.parametrize("stem", ["", "..", "../escape", "a/b"])
def test_write_refuses_paths_in_the_stem(tmp_path: Path, stem: str) -> None:
    with pytest.raises(UserError, match="plain name"):
        _tiers().write(tmp_path, stem)


def test_module_never_imports_pyplot() -> None:
    import backbone.measures.charts as charts

    tree = ast.parse(Path(charts.__file__).read_text(encoding="utf-8"))
    imported = [
        name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in [getattr(node, "module", None) or ""]
        + [alias.name for alias in node.names]
    ]
    assert not [name for name in imported if "pyplot" in name]


def test_long_group_labels_stay_inside_the_picture() -> None:
    rows = [
        (f"d0{i}-maplevalley/25501000{i}", tier, n)
        for i in range(4)
        for tier, n in (("on track", 50), ("watch", 20), ("high risk", 12))
    ]
    chart = tier_distribution(rows, title="Long labels")
    chart.png()  # lays the figure out as it is saved
    renderer = chart.figure.canvas.get_renderer()  # type: ignore[attr-defined]
    box = chart.figure.axes[0].get_tightbbox(renderer)
    # within a few pixels of the edge (the labels once lost a third of their width)
    assert box is not None and box.x0 > -5 and box.y0 > -5


# ------------------------------------------------ program evaluation charts

EFFECTS = [
    EffectRow(
        "Bright Futures Mentoring — attendance rate", 3.1, 1.2, 5.0, 312, 598, 3.0
    ),
    EffectRow(
        "Bright Futures Mentoring — course completion", -0.8, -3.5, 1.9, 298, 560
    ),
    EffectRow("Summer Bridge — attendance rate", None, None, None, 8, None),
    EffectRow(
        "Summer Bridge — credits",
        None,
        None,
        None,
        45,
        0,
        reason="not estimable: no comparison students",
    ),
]

BALANCE = [
    BalanceRow("Prior-year attendance rate", 0.42, 0.03, "equivalent"),
    BalanceRow("Free or reduced-price lunch", -0.18, 0.11, "adjust"),
    BalanceRow("English learner", 0.31, 0.28, "not equivalent"),
    BalanceRow("Prior GPA", None, None, None),
]

CLASSES = ["Class of 2022", "Class of 2023", "Class of 2024"]
COLLEGE = [
    ("Enrolled first fall", [61.2, None, 58.0]),
    ("Persisted to second year", [48.0, 47.5, None]),
]


def _effects(rows: list[EffectRow] = EFFECTS) -> Chart:
    return effect_intervals(
        "Program effects",
        rows,
        unit_label="percentage points",
        notes="Matched comparison.",
    )


def _balance() -> Chart:
    return balance_plot("Baseline equivalence", BALANCE, notes="SMD after matching.")


def _college() -> Chart:
    return college_going("College going", CLASSES, COLLEGE, notes="Not yet: —.")


@pytest.mark.parametrize(
    ("build", "expected_rows"),
    [
        (
            _effects,
            [
                [
                    "Bright Futures Mentoring — attendance rate",
                    "3.100",
                    "1.200",
                    "5.000",
                    "312",
                    "598",
                    "3.000",
                    "",
                ],
                [
                    "Bright Futures Mentoring — course completion",
                    "-0.800",
                    "-3.500",
                    "1.900",
                    "298",
                    "560",
                    "",
                    "",
                ],
                [
                    "Summer Bridge — attendance rate",
                    "—",
                    "—",
                    "—",
                    "8",
                    "—",
                    "",
                    "suppressed",
                ],
                [
                    "Summer Bridge — credits",
                    "",
                    "",
                    "",
                    "45",
                    "0",
                    "",
                    "not estimable: no comparison students",
                ],
            ],
        ),
        (
            _balance,
            [
                ["Prior-year attendance rate", "0.420", "0.030", "equivalent"],
                ["Free or reduced-price lunch", "-0.180", "0.110", "adjust"],
                ["English learner", "0.310", "0.280", "not equivalent"],
                ["Prior GPA", "—", "—", ""],
            ],
        ),
        (
            _college,
            [
                ["Enrolled first fall", "61.2%", "—", "58.0%"],
                ["Persisted to second year", "48.0%", "47.5%", "—"],
            ],
        ),
    ],
    ids=["effects", "balance", "college"],
)
def test_evaluation_charts_write_deterministic_png_and_offline_html(
    tmp_path: Path, build: object, expected_rows: list[list[str]]
) -> None:
    assert callable(build)
    chart = build()
    png_path, html_path = chart.write(tmp_path, "chart")
    png = png_path.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    page = html_path.read_text(encoding="utf-8")
    _assert_offline(page)
    assert 'href="http' not in page and "src='http" not in page
    assert (
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
    ) in page
    assert _cells(page) == expected_rows
    # something is suppressed in each: the "—" cells carry the footnote
    assert SUPPRESSED_FOOTNOTE in page
    # the same chart saved again, and one built afresh, are byte-identical
    again = build()
    assert chart.png() == png and again.png() == png
    assert again.html() == page


def test_effect_intervals_columns_name_the_unit_and_the_truth() -> None:
    chart = _effects()
    assert chart.columns == (
        "estimate",
        "effect (percentage points)",
        "95% CI low",
        "95% CI high",
        "n participants",
        "n comparison",
        "planted truth",
        "note",
    )
    ax = chart.figure.axes[0]
    assert ax.get_xlabel() == "Effect (percentage points)"
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "estimate and 95% CI",
        "planted truth",
        "suppressed",
    ]
    drawn = [t.get_text() for t in ax.texts]
    assert "n = 312 / 598" in drawn and "n = 8 / —" in drawn
    assert "suppressed" in drawn and "not estimable: no comparison students" in drawn


def test_effect_intervals_draws_the_truth_only_where_given() -> None:
    with_truth = _effects().svg()
    assert 'id="backbone-truth-0"' in with_truth  # the first row has a truth
    assert with_truth.count('id="backbone-truth-') == 1
    assert with_truth.count('id="backbone-estimate-') == 2  # two rows estimated

    without = _effects([r for r in EFFECTS if r.truth is None])
    assert "planted truth" not in without.columns
    assert "backbone-truth" not in without.svg()
    assert "planted truth" not in without.html()
    legend = without.figure.axes[0].get_legend()
    assert legend is not None
    assert "planted truth" not in [t.get_text() for t in legend.get_texts()]


def test_not_estimable_is_not_called_suppressed() -> None:
    rows = [EFFECTS[0], EFFECTS[3]]
    page = _effects(rows).html()
    assert "not estimable: no comparison students" in page
    # no suppressed cell, so no small-groups footnote
    assert SUPPRESSED_FOOTNOTE not in page


def test_effect_intervals_all_suppressed_still_renders() -> None:
    chart = _effects([EFFECTS[2]])
    assert chart.png().startswith(b"\x89PNG")
    assert _cells(chart.html()) == [
        ["Summer Bridge — attendance rate", "—", "—", "—", "8", "—", "suppressed"]
    ]


def test_balance_plot_reference_lines_and_flags() -> None:
    chart = _balance()
    assert chart.columns == (
        "covariate",
        "SMD before matching",
        "SMD after matching",
        "flag after matching",
    )
    assert [row[3] for row in chart.rows] == [*BALANCE_FLAGS, ""]
    ax = chart.figure.axes[0]
    # axvline: from the bottom (0) to the top (1) of the axes at one x
    vertical = sorted(
        float(xy[0, 0])
        for xy in (np.asarray(line.get_xydata()) for line in ax.get_lines())
        if xy[:, 1].tolist() == [0.0, 1.0]
    )
    assert vertical == [-0.25, -0.05, 0.0, 0.05, 0.25]
    drawn = [t.get_text() for t in ax.texts]
    assert {"equivalent", "adjust", "not equivalent", "suppressed"} <= set(drawn)


def test_balance_plot_says_which_side_is_suppressed() -> None:
    chart = balance_plot(
        "b",
        [
            BalanceRow("Grade", 0.1, None, None),
            BalanceRow("Age", None, 0.02, "equivalent"),
        ],
    )
    drawn = [t.get_text() for t in chart.figure.axes[0].texts]
    assert "after: suppressed" in drawn
    assert "equivalent; before: suppressed" in drawn
    assert _cells(chart.html()) == [
        ["Grade", "0.100", "—", ""],
        ["Age", "—", "0.020", "equivalent"],
    ]


def test_college_going_is_trend_lines_in_percent_on_a_full_axis() -> None:
    chart = _college()
    assert chart.columns == ("series", *CLASSES)
    assert chart.percent
    assert chart.rows == (
        ("Enrolled first fall", 0.612, None, 0.58),
        ("Persisted to second year", 0.48, 0.475, None),
    )
    ax = chart.figure.axes[0]
    assert ax.get_ylim() == (0.0, 1.0)
    ys = np.asarray(ax.get_lines()[0].get_ydata()).tolist()
    assert ys[0] == 0.612 and ys[1] != ys[1]  # NaN: the line breaks there
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES


def _effect(**change: object) -> EffectRow:
    base: dict[str, object] = {
        "label": "A — x",
        "effect": 1.0,
        "ci_low": 0.0,
        "ci_high": 2.0,
        "n_treated": 10,
        "n_comparison": 20,
    }
    return EffectRow(**{**base, **change})  # type: ignore[arg-type]


NOT_A_ROW: Any = ("A", 1.0, 0.0, 2.0, 1, 1)  # a plain tuple, not an EffectRow


def _bad_effects(**change: object) -> Chart:
    return effect_intervals("t", [_effect(), _effect(**change)], unit_label="pp")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: effect_intervals("t", [], unit_label="pp"), "no estimates"),
        (lambda: effect_intervals("t", [_effect()], unit_label=""), "unit label"),
        (lambda: _bad_effects(effect=float("nan")), r"Row 2 \('A — x'\).*finite"),
        (lambda: _bad_effects(ci_low=1.5), r"Row 2 .*contain the effect"),
        (lambda: _bad_effects(ci_high=None), r"Row 2 .*both ends"),
        (lambda: _bad_effects(effect=None), r"Row 2 .*cannot have a confidence"),
        (lambda: _bad_effects(n_treated=-1), r"Row 2 .*n participants.*≥ 0"),
        (lambda: _bad_effects(n_comparison=2.5), r"Row 2 .*n comparison"),
        (lambda: _bad_effects(truth="3"), r"Row 2 .*truth.*number"),
        (lambda: _bad_effects(reason="why"), r"Row 2 .*reason is only"),
        (lambda: _bad_effects(label=""), r"Row 2: the label"),
        (
            lambda: effect_intervals("t", [NOT_A_ROW], unit_label="pp"),
            r"Row 1: expected an EffectRow",
        ),
        (lambda: balance_plot("t", []), "no covariates"),
        (
            lambda: balance_plot("t", [BalanceRow("Age", 0.1, 0.02, "fine")]),
            r"Row 1 \('Age'\): the flag must be one of",
        ),
        (
            lambda: balance_plot("t", [BalanceRow("Age", 0.1, float("inf"), None)]),
            r"Row 1 \('Age'\), SMD after.*finite",
        ),
        (lambda: college_going("t", [], COLLEGE), "no graduating classes"),
        (lambda: college_going("t", CLASSES, []), "no measures"),
        (
            lambda: college_going("t", ["A", "A"], [("m", [1.0, 2.0])]),
            "appears twice",
        ),
        (
            lambda: college_going("t", CLASSES, [("Enrolled", [61.2, 101.0, 3.0])]),
            r"Series 1 \('Enrolled'\), Class of 2023: .*between 0 and 100",
        ),
        (
            lambda: college_going("t", CLASSES, [("Enrolled", [61.2])]),
            r"Series 1 \('Enrolled'\): needs one value per class",
        ),
        (
            lambda: college_going("t", CLASSES, [COLLEGE[0], COLLEGE[0]]),
            r"Series 2 .*appears twice",
        ),
    ],
    ids=[
        "no-estimates",
        "no-unit",
        "nan",
        "ci-excludes",
        "ci-half",
        "ci-without-effect",
        "negative-n",
        "fractional-n",
        "text-truth",
        "reason-with-effect",
        "empty-label",
        "not-a-row",
        "no-covariates",
        "bad-flag",
        "inf-smd",
        "no-classes",
        "no-series",
        "duplicate-class",
        "over-100",
        "short-series",
        "duplicate-measure",
    ],
)
def test_bad_evaluation_input_is_a_user_error(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(UserError, match=message):
        call()


def test_balance_plot_keeps_a_covariate_it_cannot_compute_as_a_row_without_a_point() -> (
    None
):
    rows = [
        BalanceRow("Attendance rate", 0.4, 0.02, "equivalent"),
        BalanceRow("Prior-year GPA", None, None, "not computable"),
    ]
    chart = balance_plot("Baseline equivalence", rows)
    assert [row[0] for row in chart.rows] == ["Attendance rate", "Prior-year GPA"]
    assert chart.rows[1][3] == "not computable"
