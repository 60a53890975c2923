"""Charts render offline to PNG and a self-contained HTML page, honouring suppression."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from matplotlib.text import Text

from backbone.errors import UserError
from backbone.measures.charts import (
    SUPPRESSED_FOOTNOTE,
    TIERS,
    Chart,
    calibration_curve,
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
