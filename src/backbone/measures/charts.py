"""Charts for the early-warning system: PNG plus a self-contained HTML page.

Every builder takes a table that has *already* been through disclosure control, so
some cells may be suppressed (``None``). A suppressed cell is never guessed at: it
is drawn as a gap or a hatched "suppressed" bar, and shown as "—" in the data table
with a footnote.

Each builder returns a :class:`Chart`, which renders to

* ``png()``: a standalone image (title and notes drawn into it, for slides), and
* ``html()``: a page that loads nothing from the network: the chart is inline SVG,
  followed by an accessible HTML table of the same numbers. A Content-Security-Policy
  meta tag makes a browser refuse any external load even if one slipped in.

Only matplotlib's object-oriented API is used (never ``pyplot``), so importing this
module creates no global figure state. Output is deterministic: no timestamps or
software versions in the files, a fixed SVG id salt and a bundled font. matplotlib's
rcParams are process-global, so building and rendering hold a module lock while our
settings are in force.
"""

from __future__ import annotations

import html as _html
import io
import math
import re
import textwrap
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text
from matplotlib.ticker import PercentFormatter

from backbone.errors import UserError

if TYPE_CHECKING:  # only for annotations: keeps older matplotlib importable
    from matplotlib.typing import LineStyleType, RcKeyType

__all__ = [
    "BALANCE_FLAGS",
    "SUPPRESSED_FOOTNOTE",
    "TIERS",
    "WWC_ADJUST",
    "WWC_EQUIVALENT",
    "BalanceRow",
    "Chart",
    "EffectRow",
    "balance_plot",
    "calibration_curve",
    "college_going",
    "effect_intervals",
    "tier_distribution",
    "trend_lines",
]

TIERS = ("on track", "watch", "high risk")

SUPPRESSED_MARK = "—"
SUPPRESSED_FOOTNOTE = "suppressed to protect small groups"

# Okabe-Ito: distinguishable under the common colour-vision deficiencies.
_OKABE_ITO = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
    "#F0E442",  # yellow (last: weak on white)
)
_TIER_COLOURS = {"on track": "#009E73", "watch": "#E69F00", "high risk": "#D55E00"}
_SUPPRESSED_FACE = "#E0E0E0"
_SUPPRESSED_EDGE = "#8C8C8C"
# With more series than colours, vary the dash too so every line stays distinct.
_LINESTYLES: tuple[LineStyleType, ...] = ("-", "--", ":", "-.")

_DPI = 150
_WIDTH_IN = 8.0
_MAX_LEGIBLE_SERIES = 12

# Settings in force while figures are built and saved. Text properties (font,
# parse_math) are read when an artist is created, ids and metadata when saved.
_RC: dict[RcKeyType, Any] = {
    "svg.hashsalt": "backbone",  # stable element ids instead of random uuids
    "svg.fonttype": "path",  # glyphs as paths: no font files or web fonts needed
    "font.family": ["DejaVu Sans"],  # bundled with matplotlib: same pixels everywhere
    "text.usetex": False,
    "text.parse_math": False,  # a "$" in a school name is a dollar, not mathtext
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_PNG_METADATA: dict[str, str | None] = {"Software": None}
_SVG_METADATA: dict[str, str | None] = {"Date": None, "Creator": None}
_RC_LOCK = threading.RLock()

# gids of the title and notes texts: drawn in the PNG, hidden in the HTML's SVG
# because the page shows them as real text already.
_CHROME_GIDS = frozenset({"backbone-title", "backbone-notes"})


@contextmanager
def _style() -> Iterator[None]:
    """Hold the lock and apply our rcParams (they are global to the process)."""
    with _RC_LOCK, matplotlib.rc_context(_RC):
        yield


@dataclass(frozen=True)
class Chart:
    """A finished chart and the table of numbers behind it.

    ``rows`` hold raw values (``None`` = suppressed); ``percent`` says that the
    floats in ``rows`` are shares (0..1) to be shown as percentages in the table.
    """

    title: str
    notes: str
    figure: Figure
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    percent: bool = False

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.columns):
                raise ValueError(
                    f"Chart row {row!r} has {len(row)} cells but there are "
                    f"{len(self.columns)} columns."
                )

    def png(self) -> bytes:
        """The chart as PNG bytes, title and notes included."""
        buf = io.BytesIO()
        with _style():
            _reset_layout(self.figure)
            self.figure.savefig(buf, format="png", dpi=_DPI, metadata=_PNG_METADATA)
        return buf.getvalue()

    def svg(self) -> str:
        """The chart as an inline ``<svg>`` element (no XML prolog or DOCTYPE).

        Title and notes are left out: the HTML page carries them as text.
        """
        buf = io.BytesIO()
        with _style():
            chrome = [
                a
                for a in self.figure.findobj(Text)
                if a.get_gid() in _CHROME_GIDS and a.get_visible()
            ]
            try:
                for a in chrome:
                    a.set_visible(False)
                _reset_layout(self.figure)
                self.figure.savefig(buf, format="svg", metadata=_SVG_METADATA)
            finally:
                for a in chrome:
                    a.set_visible(True)
        text = buf.getvalue().decode("utf-8")
        svg = text[text.index("<svg") :].strip()
        # The RDF metadata block only names external vocabularies; drop it.
        svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, count=1, flags=re.S)
        # The table below is the accessible version; label the image for screen
        # readers and let it shrink on narrow screens.
        label = _html.escape(self.title, quote=True)
        return svg.replace(
            "<svg ", f'<svg role="img" aria-label="{label}" class="chart" ', 1
        )

    def html(self) -> str:
        """A complete HTML page: title, notes, inline SVG chart, data table."""
        title = _html.escape(self.title)
        notes = "".join(
            f'<p class="notes">{_html.escape(p)}</p>\n' for p in _paragraphs(self.notes)
        )
        head = "".join(f'<th scope="col">{_html.escape(c)}</th>' for c in self.columns)
        body_rows = []
        suppressed = False
        for row in self.rows:
            cells = []
            for i, value in enumerate(row):
                suppressed = suppressed or value is None
                cells.append(self._cell(value, header=i == 0))
            body_rows.append(f"<tr>{''.join(cells)}</tr>")
        body = "\n".join(body_rows)
        footnote = (
            f'<p class="footnote">{SUPPRESSED_MARK} {SUPPRESSED_FOOTNOTE}</p>\n'
            if suppressed
            else ""
        )
        return (
            "<!DOCTYPE html>\n"
            '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            # Belt and braces: forbid every external load, allow only inline styles.
            '<meta http-equiv="Content-Security-Policy" '
            "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\n"
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>{title}</h1>\n{notes}"
            f"<figure>\n{self.svg()}\n</figure>\n"
            "<table>\n<caption>The numbers in the chart</caption>\n"
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n"
            f"{footnote}</main>\n</body>\n</html>\n"
        )

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        """Write ``stem.png`` and ``stem.html`` into ``folder`` (created if needed)."""
        if not stem or stem in {".", ".."} or Path(stem).name != stem:
            raise UserError(
                f"Chart file name {stem!r} must be a plain name without folders."
            )
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        png_path = folder / f"{stem}.png"
        html_path = folder / f"{stem}.html"
        _write_replace(png_path, self.png())
        _write_replace(html_path, self.html().encode("utf-8"))
        return png_path, html_path

    def _cell(self, value: object, *, header: bool) -> str:
        if value is None:
            return f'<td class="suppressed">{SUPPRESSED_MARK}</td>'
        if header:
            return f'<th scope="row">{_html.escape(str(value))}</th>'
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"<td>{_html.escape(str(value))}</td>"
        if isinstance(value, int):
            text = f"{value:,}"
        elif self.percent:
            text = f"{value:.1%}"
        else:
            text = f"{value:.3f}"
        return f'<td class="num">{_html.escape(text)}</td>'


_CSS = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "color:#1a1a1a;background:#fff;margin:0;line-height:1.45}"
    "main{max-width:60rem;margin:0 auto;padding:1.5rem}"
    "h1{font-size:1.5rem;margin:0 0 .5rem}"
    ".notes{color:#444;margin:.25rem 0}"
    "figure{margin:1rem 0}"
    "svg.chart{max-width:100%;height:auto}"
    "table{border-collapse:collapse;margin-top:1rem;font-variant-numeric:tabular-nums}"
    "caption{text-align:left;font-weight:600;padding-bottom:.25rem}"
    "th,td{border-bottom:1px solid #ddd;padding:.25rem .75rem;text-align:left}"
    "td.num,td.suppressed{text-align:right}"
    ".footnote{color:#444;font-size:.9rem}"
)


def _reset_layout(fig: Figure) -> None:
    """Put every axes back on its grid slot before a save.

    Constrained layout starts from the positions the previous draw left behind, so
    without this the second save of a figure can differ from the first by a
    fraction of a point, and the output would depend on what was rendered before.
    """
    FigureCanvasAgg(fig)  # (re)attach the Agg canvas; no pyplot figure manager
    for ax in fig.axes:
        spec = ax.get_subplotspec()
        if spec is not None:
            ax.set_position(spec.get_position(fig))
            # set_position takes an axes out of the layout; constrained layout
            # must still make room for its labels
            ax.set_in_layout(True)


def _write_replace(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so a reader never sees half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def _paragraphs(notes: str) -> list[str]:
    return [p.strip() for p in notes.split("\n\n") if p.strip()]


def _new_figure(height_in: float, width_in: float = _WIDTH_IN) -> Figure:
    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _add_chrome(fig: Figure, title: str, notes: str) -> None:
    """Draw title and notes into the figure (for the standalone PNG)."""
    fig.suptitle(
        title, x=0.01, ha="left", fontsize=13, fontweight="bold", gid="backbone-title"
    )
    paragraphs = _paragraphs(notes)
    if paragraphs:
        wrapped = "\n".join(textwrap.fill(p, width=110) for p in paragraphs)
        fig.supxlabel(
            wrapped,
            x=0.01,
            ha="left",
            fontsize=8,
            color="#444444",
            gid="backbone-notes",
        )


def _series_style(i: int) -> tuple[str, LineStyleType]:
    return _OKABE_ITO[i % len(_OKABE_ITO)], _LINESTYLES[
        (i // len(_OKABE_ITO)) % len(_LINESTYLES)
    ]


def _check_count(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(
            f"{where}: persons must be a whole number ≥ 0 or empty, got {value!r}."
        )
    return value


def _check_number(value: object, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UserError(f"{where}: value must be a number or empty, got {value!r}.")
    if not math.isfinite(value):
        raise UserError(f"{where}: value must be finite, got {value!r}.")
    return float(value)


# --------------------------------------------------------------------- tiers


def tier_distribution(
    rows: Sequence[tuple[str, str, int | None]], *, title: str, notes: str = ""
) -> Chart:
    """Share of persons in each risk tier, one 100%-stacked bar per group.

    ``rows`` are ``(group, tier, persons)`` with ``tier`` one of :data:`TIERS` and
    ``persons`` ``None`` when suppressed. A group with any tier suppressed, or with
    a tier missing from ``rows``, is incomplete: its shares cannot be known, so it
    is drawn as a hatched "suppressed" bar and its total left empty. (A true zero
    must be given as ``0``; a missing row is never assumed to be zero.)
    """
    if not rows:
        raise UserError("There are no rows to chart.")
    counts: dict[str, dict[str, int | None]] = {}
    for n, (group, tier, persons) in enumerate(rows, start=1):
        where = f"Row {n} ({group!r}, {tier!r})"
        if tier not in TIERS:
            raise UserError(f"{where}: tier must be one of {', '.join(TIERS)}.")
        tiers = counts.setdefault(str(group), {})
        if tier in tiers:
            raise UserError(f"{where}: this group and tier appear twice.")
        tiers[tier] = _check_count(persons, where)

    groups = [(group, [tiers.get(t) for t in TIERS]) for group, tiers in counts.items()]

    with _style():
        fig = _new_figure(1.9 + 0.42 * len(groups))
        ax = fig.add_subplot()
        _draw_tiers(ax, groups)
        handles = [Patch(facecolor=_TIER_COLOURS[t], label=t) for t in TIERS]
        if any(_total(values) is None for _g, values in groups):
            handles.append(_suppressed_patch())
        # Above the bars, on the axes: a figure legend would collide with the title.
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0, 1.01),
            borderaxespad=0,
            ncols=len(handles),
            frameon=False,
        )
        _add_chrome(fig, title, notes)
    return Chart(
        title=title,
        notes=notes,
        figure=fig,
        columns=("group", *TIERS, "total"),
        rows=tuple((g, *values, _total(values)) for g, values in groups),
    )


def _total(values: list[int | None]) -> int | None:
    """The group's total, or None when any tier is unknown."""
    known = [v for v in values if v is not None]
    return sum(known) if len(known) == len(values) else None


def _suppressed_patch() -> Patch:
    return Patch(
        facecolor=_SUPPRESSED_FACE,
        edgecolor=_SUPPRESSED_EDGE,
        hatch="///",
        linewidth=0,
        label="suppressed",
    )


def _draw_tiers(ax: Axes, groups: list[tuple[str, list[int | None]]]) -> None:
    ys = list(range(len(groups)))
    for y, (_group, values) in zip(ys, groups, strict=True):
        total = _total(values)
        if total is None:
            ax.barh(
                y,
                1.0,
                height=0.7,
                facecolor=_SUPPRESSED_FACE,
                edgecolor=_SUPPRESSED_EDGE,
                hatch="///",
                linewidth=0,
            )
            ax.text(
                0.5,
                y,
                "suppressed",
                ha="center",
                va="center",
                fontsize=9,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
            )
            continue
        if total == 0:
            ax.text(0.01, y, "no persons", ha="left", va="center", fontsize=9)
            continue
        left = 0.0
        for tier, value in zip(TIERS, values, strict=True):
            share = (value or 0) / total
            ax.barh(
                y,
                share,
                left=left,
                height=0.7,
                color=_TIER_COLOURS[tier],
                edgecolor="white",
                linewidth=0.8,
            )
            # Black text reads on all three tier colours (contrast ≥ 5.6:1).
            if share >= 0.07:
                ax.text(
                    left + share / 2,
                    y,
                    f"{share:.0%}",
                    ha="center",
                    va="center",
                    fontsize=8.5,
                    color="black",
                )
            left += share
        ax.text(
            1.01,
            y,
            f"n = {total:,}",
            ha="left",
            va="center",
            fontsize=8.5,
            color="#444444",
            transform=ax.get_yaxis_transform(),
        )
    ax.set_yticks(ys, [group for group, _values in groups])
    ax.set_ylim(len(groups) - 0.5, -0.5)  # first group at the top
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.set_xlabel("Share of persons")
    ax.tick_params(axis="y", length=0)
    ax.spines["left"].set_visible(False)


# --------------------------------------------------------------------- trends


def trend_lines(
    rows: Sequence[tuple[str, str, float | None]],
    *,
    title: str,
    y_label: str,
    percent: bool = True,
    notes: str = "",
) -> Chart:
    """One line per series across periods (both in first-seen order).

    ``rows`` are ``(series, period, value)``; ``value`` is ``None`` when
    suppressed, and the line breaks there rather than bridging the gap. With
    ``percent`` the values are shares (0..1) and the y axis reads in percent.
    Up to about 12 series stay legible; more are drawn, but crowd the legend.
    A (series, period) pair absent from ``rows`` is a gap too, shown as "—".
    """
    if not rows:
        raise UserError("There are no rows to chart.")
    values: dict[str, dict[str, float | None]] = {}
    periods: dict[str, None] = {}  # an ordered set
    for n, (series, period, value) in enumerate(rows, start=1):
        where = f"Row {n} ({series!r}, {period!r})"
        periods.setdefault(str(period))
        by_period = values.setdefault(str(series), {})
        if str(period) in by_period:
            raise UserError(f"{where}: this series and period appear twice.")
        by_period[str(period)] = _check_number(value, where)

    period_list = list(periods)
    lines = [
        (series, [by_period.get(p) for p in period_list])
        for series, by_period in values.items()
    ]
    xs = list(range(len(period_list)))

    with _style():
        height = 4.2 + max(0.0, 0.22 * (len(lines) - _MAX_LEGIBLE_SERIES))
        fig = _new_figure(height)
        ax = fig.add_subplot()
        for i, (series, ys) in enumerate(lines):
            colour, dash = _series_style(i)
            # NaN, not None: matplotlib breaks the line at NaN.
            ax.plot(
                xs,
                [math.nan if y is None else y for y in ys],
                color=colour,
                linestyle=dash,
                linewidth=2,
                marker="o",
                markersize=4,
                label=series,
            )
        ax.set_xticks(xs, period_list)
        if len(period_list) == 1:
            ax.set_xlim(-0.5, 0.5)
        known = [y for _s, ys in lines for y in ys if y is not None]
        if known and min(known) >= 0:
            ax.set_ylim(bottom=0)
        if percent:
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1))
        ax.set_ylabel(y_label)
        ax.grid(axis="y", color="#E5E5E5", linewidth=0.8)
        ax.set_axisbelow(True)
        fig.legend(loc="outside right upper", frameon=False, fontsize=9)
        _add_chrome(fig, title, notes)
    return Chart(
        title=title,
        notes=notes,
        figure=fig,
        columns=("series", *period_list),
        rows=tuple((series, *ys) for series, ys in lines),
        percent=percent,
    )


# --------------------------------------------------------------- calibration


def calibration_curve(
    curves: Mapping[str, Sequence[tuple[float, float, int]]],
    *,
    title: str,
    notes: str = "",
) -> Chart:
    """Observed rate against mean predicted probability, one curve per model.

    ``curves`` maps a model name to its bins ``(predicted, observed, n)``. The
    dashed diagonal is a perfectly calibrated model; marker area grows with ``n``
    (on one scale across models, so sizes compare). Bins with ``n == 0`` have no
    observed rate to draw and appear in the table only.
    """
    if not curves or not any(curves.values()):
        raise UserError("There are no calibration bins to chart.")
    table: list[tuple[str, float, float, int]] = []
    for model, bins in curves.items():
        for n, (predicted, observed, count) in enumerate(bins, start=1):
            where = f"Model {model!r}, bin {n}"
            p = _check_number(predicted, where)
            o = _check_number(observed, where)
            if p is None or o is None or not (0 <= p <= 1 and 0 <= o <= 1):
                raise UserError(
                    f"{where}: predicted and observed must be between 0 and 1."
                )
            c = _check_count(count, where)
            if c is None:
                raise UserError(f"{where}: n must be given.")
            table.append((str(model), p, o, c))
    largest = max(row[3] for row in table) or 1
    models = list(dict.fromkeys(row[0] for row in table))

    with _style():
        fig = _new_figure(6.4, width_in=6.0)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#7F7F7F", linestyle="--", linewidth=1)
        handles = [
            Line2D(
                [], [], color="#7F7F7F", linestyle="--", label="perfectly calibrated"
            )
        ]
        for i, model in enumerate(models):
            colour, dash = _series_style(i)
            handles.append(
                Line2D([], [], color=colour, linestyle=dash, marker="o", label=model)
            )
            points = sorted((p, o, c) for m, p, o, c in table if m == model and c > 0)
            if not points:
                continue
            ax.plot(
                [p for p, _o, _c in points],
                [o for _p, o, _c in points],
                color=colour,
                linestyle=dash,
                linewidth=1.5,
                zorder=2,
            )
            ax.scatter(
                [p for p, _o, _c in points],
                [o for _p, o, _c in points],
                s=[20 + 280 * c / largest for _p, _o, c in points],
                color=colour,
                edgecolors="white",
                linewidths=0.8,
                zorder=3,
            )
        ax.legend(handles=handles, loc="upper left", frameon=False, fontsize=9)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_xlabel("Mean predicted probability")
        ax.set_ylabel("Observed rate")
        ax.grid(color="#E5E5E5", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.text(
            0.99,
            0.01,
            "marker area ∝ persons in bin",
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=8,
            color="#444444",
        )
        _add_chrome(fig, title, notes)
    return Chart(
        title=title,
        notes=notes,
        figure=fig,
        columns=("model", "predicted", "observed", "n"),
        rows=tuple(table),
    )


# --------------------------------------------------------- program evaluation

# An estimate's point and interval, and the planted truth the demo compares it to.
_ESTIMATE_COLOUR = _OKABE_ITO[0]
_TRUTH_COLOUR = _OKABE_ITO[3]
_REFERENCE_COLOUR = "#7F7F7F"
_LABEL_WIDTH = 42  # characters per line of a row label before it wraps

# What Works Clearinghouse baseline-equivalence thresholds on |SMD|: at most 0.05
# needs nothing, up to 0.25 needs statistical adjustment, beyond is not equivalent.
WWC_EQUIVALENT = 0.05
WWC_ADJUST = 0.25
BALANCE_FLAGS = ("equivalent", "adjust", "not equivalent")
# a covariate whose difference cannot be computed (a group of fewer than two)
NOT_COMPUTABLE = "not computable"


@dataclass(frozen=True)
class EffectRow:
    """One estimate in a forest plot (:func:`effect_intervals`).

    ``effect`` is ``None`` when the estimate is suppressed or could not be made;
    ``reason`` then says why (e.g. ``"not estimable: no comparison students"``),
    and without one the row reads "suppressed". ``truth`` is a planted effect
    (synthetic data only), drawn as its own marker when given. ``None`` counts
    are suppressed.
    """

    label: str
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    n_treated: int | None
    n_comparison: int | None
    truth: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class BalanceRow:
    """One covariate in a balance ("love") plot (:func:`balance_plot`).

    Standardized mean differences before and after matching (``None`` when
    suppressed) and the after-matching flag, one of :data:`BALANCE_FLAGS` or
    ``None`` when there is none.
    """

    covariate: str
    smd_before: float | None
    smd_after: float | None
    flag: str | None


def _row_label(label: object, where: str) -> str:
    if not isinstance(label, str) or not label.strip():
        raise UserError(f"{where}: the label must be non-empty text, got {label!r}.")
    return label


def _wrapped(label: str) -> str:
    return textwrap.fill(label, width=_LABEL_WIDTH) or label


def _rows_height(labels: Sequence[str]) -> float:
    """Figure height for one row per label (wrapped labels take more room)."""
    extra_lines = sum(label.count("\n") for label in labels)
    return 2.2 + 0.42 * len(labels) + 0.16 * extra_lines


def _padded(values: Sequence[float]) -> tuple[float, float]:
    """x limits around ``values`` and zero, with a margin."""
    low = min([*values, 0.0])
    high = max([*values, 0.0])
    span = (high - low) or 1.0
    return low - 0.08 * span, high + 0.08 * span


def _suppressed_band(ax: Axes, y: float, text: str) -> None:
    """A hatched band across the row with ``text`` on it: a gap, marked."""
    ax.axhspan(
        y - 0.3,
        y + 0.3,
        facecolor=_SUPPRESSED_FACE,
        edgecolor=_SUPPRESSED_EDGE,
        hatch="///",
        linewidth=0,
        zorder=0,
    )
    ax.text(
        0.5,
        y,
        text,
        ha="center",
        va="center",
        fontsize=9,
        transform=ax.get_yaxis_transform(),
        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.5},
    )


def _count_text(value: int | None) -> str:
    return SUPPRESSED_MARK if value is None else f"{value:,}"


def _check_effect_row(row: object, n: int) -> EffectRow:
    if not isinstance(row, EffectRow):
        raise UserError(f"Row {n}: expected an EffectRow, got {row!r}.")
    where = f"Row {n} ({row.label!r})"
    label = _row_label(row.label, f"Row {n}")
    effect = _check_number(row.effect, f"{where}, effect")
    low = _check_number(row.ci_low, f"{where}, CI low")
    high = _check_number(row.ci_high, f"{where}, CI high")
    truth = _check_number(row.truth, f"{where}, truth")
    n_treated = _check_count(row.n_treated, f"{where}, n participants")
    n_comparison = _check_count(row.n_comparison, f"{where}, n comparison")
    reason = row.reason
    if reason is not None and (not isinstance(reason, str) or not reason.strip()):
        raise UserError(f"{where}: the reason must be non-empty text or empty.")
    if effect is None:
        if low is not None or high is not None:
            raise UserError(
                f"{where}: an estimate without an effect cannot have a "
                "confidence interval."
            )
    else:
        if reason is not None:
            raise UserError(
                f"{where}: a reason is only for an estimate without an effect."
            )
        if low is None or high is None:
            raise UserError(f"{where}: the effect needs both ends of its 95% CI.")
        if not low <= effect <= high:
            raise UserError(
                f"{where}: the CI ({low}, {high}) must contain the effect {effect}."
            )
    return EffectRow(label, effect, low, high, n_treated, n_comparison, truth, reason)


def effect_intervals(
    title: str,
    rows: Sequence[EffectRow],
    *,
    unit_label: str,
    notes: str = "",
) -> Chart:
    """A forest plot: each estimate's effect and 95% confidence interval.

    One row per :class:`EffectRow`, first at the top: a point at the effect, a
    horizontal line for its interval, and the numbers of participants and
    comparison students at the right ("n = 312 / 598"). A vertical line marks
    zero (no effect). All rows share one unit, ``unit_label`` (e.g. "percentage
    points"), on the x axis: chart each unit separately. A row without an effect
    is a hatched gap reading "suppressed" or its ``reason``. A planted ``truth``
    is drawn as a hollow diamond, and gets a table column, only when some row
    has one.

    The table lists every row: effect, CI, both n, the truth when any is given,
    and a note ("suppressed" or the reason) for rows without an effect.
    """
    if not rows:
        raise UserError("There are no estimates to chart.")
    if not isinstance(unit_label, str) or not unit_label.strip():
        raise UserError("The unit label must be non-empty text.")
    checked = [_check_effect_row(row, n) for n, row in enumerate(rows, start=1)]
    any_truth = any(r.truth is not None for r in checked)
    labels = [_wrapped(r.label) for r in checked]
    ys = list(range(len(checked)))

    with _style():
        fig = _new_figure(_rows_height(labels))
        ax = fig.add_subplot()
        ax.axvline(0, color=_REFERENCE_COLOUR, linewidth=1, zorder=1)
        for y, r in zip(ys, checked, strict=True):
            if r.effect is None or r.ci_low is None or r.ci_high is None:
                _suppressed_band(ax, y, r.reason or "suppressed")
            else:
                ax.hlines(
                    y,
                    r.ci_low,
                    r.ci_high,
                    color=_ESTIMATE_COLOUR,
                    linewidth=2,
                    zorder=2,
                )
                ax.plot(
                    [r.effect],
                    [y],
                    linestyle="none",
                    marker="o",
                    markersize=7,
                    color=_ESTIMATE_COLOUR,
                    zorder=3,
                    gid=f"backbone-estimate-{y}",
                )
            if r.truth is not None:
                ax.plot(
                    [r.truth],
                    [y],
                    linestyle="none",
                    marker="D",
                    markersize=7,
                    markerfacecolor="none",
                    markeredgecolor=_TRUTH_COLOUR,
                    markeredgewidth=1.6,
                    zorder=4,
                    gid=f"backbone-truth-{y}",
                )
            ax.text(
                1.01,
                y,
                f"n = {_count_text(r.n_treated)} / {_count_text(r.n_comparison)}",
                ha="left",
                va="center",
                fontsize=8.5,
                color="#444444",
                transform=ax.get_yaxis_transform(),
            )
        ax.text(
            1.01,
            -0.5,
            "participants /\ncomparison",
            ha="left",
            va="bottom",
            fontsize=7.5,
            color="#444444",
            transform=ax.get_yaxis_transform(),
        )
        xs = [
            v for r in checked for v in (r.ci_low, r.ci_high, r.truth) if v is not None
        ]
        ax.set_xlim(*_padded(xs))
        ax.set_yticks(ys, labels)
        ax.set_ylim(len(checked) - 0.5, -0.5)  # first estimate at the top
        ax.set_xlabel(f"Effect ({unit_label})")
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        ax.grid(axis="x", color="#E5E5E5", linewidth=0.8)
        ax.set_axisbelow(True)
        handles: list[Line2D | Patch] = [
            Line2D(
                [],
                [],
                color=_ESTIMATE_COLOUR,
                marker="o",
                linewidth=2,
                label="estimate and 95% CI",
            )
        ]
        if any_truth:
            handles.append(
                Line2D(
                    [],
                    [],
                    linestyle="none",
                    marker="D",
                    markerfacecolor="none",
                    markeredgecolor=_TRUTH_COLOUR,
                    markeredgewidth=1.6,
                    label="planted truth",
                )
            )
        if any(r.effect is None for r in checked):
            handles.append(_suppressed_patch())
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0, 1.01),
            borderaxespad=0,
            ncols=2,  # narrow: the n column header sits to the right
            frameon=False,
            fontsize=9,
        )
        _add_chrome(fig, title, notes)

    columns: tuple[str, ...] = (
        "estimate",
        f"effect ({unit_label})",
        "95% CI low",
        "95% CI high",
        "n participants",
        "n comparison",
        *(("planted truth",) if any_truth else ()),
        "note",
    )
    table: list[tuple[object, ...]] = []
    for r in checked:
        truth_cell: tuple[object, ...] = ()
        if any_truth:
            truth_cell = ("" if r.truth is None else r.truth,)
        if r.effect is None and r.reason is not None:
            # Not estimable is not suppression: no "—" (and no footnote) here.
            estimate: tuple[object, ...] = ("", "", "")
        else:
            estimate = (r.effect, r.ci_low, r.ci_high)
        note = "" if r.effect is not None else (r.reason or "suppressed")
        table.append(
            (r.label, *estimate, r.n_treated, r.n_comparison, *truth_cell, note)
        )
    return Chart(
        title=title, notes=notes, figure=fig, columns=columns, rows=tuple(table)
    )


# ------------------------------------------------------------------ balance


def _check_balance_row(row: object, n: int) -> BalanceRow:
    if not isinstance(row, BalanceRow):
        raise UserError(f"Row {n}: expected a BalanceRow, got {row!r}.")
    where = f"Row {n} ({row.covariate!r})"
    covariate = _row_label(row.covariate, f"Row {n}")
    before = _check_number(row.smd_before, f"{where}, SMD before")
    after = _check_number(row.smd_after, f"{where}, SMD after")
    if row.flag is not None and row.flag not in (*BALANCE_FLAGS, NOT_COMPUTABLE):
        raise UserError(
            f"{where}: the flag must be one of {', '.join(BALANCE_FLAGS)}, "
            f"{NOT_COMPUTABLE} or empty, got {row.flag!r}."
        )
    return BalanceRow(covariate, before, after, row.flag)


def balance_plot(
    title: str,
    rows: Sequence[BalanceRow],
    *,
    notes: str = "",
) -> Chart:
    """A balance ("love") plot of baseline equivalence, one row per covariate.

    The standardized mean difference before matching is a hollow circle, after
    matching a filled one, joined by a thin line. Dotted lines at ±0.05 and
    dashed lines at ±0.25 are the What Works Clearinghouse thresholds
    (:data:`WWC_EQUIVALENT`, :data:`WWC_ADJUST`). The after-matching flag is
    written at the right and listed in the table; it is shown as given (not
    recomputed from the SMD). A covariate with both SMDs suppressed is a hatched
    gap; with one suppressed, the right-hand text says which.
    """
    if not rows:
        raise UserError("There are no covariates to chart.")
    checked = [_check_balance_row(row, n) for n, row in enumerate(rows, start=1)]
    labels = [_wrapped(r.covariate) for r in checked]
    ys = list(range(len(checked)))
    known = [
        abs(v) for r in checked for v in (r.smd_before, r.smd_after) if v is not None
    ]
    reach = max([WWC_ADJUST * 1.2, *(1.08 * v for v in known)])
    before_colour = _REFERENCE_COLOUR
    after_colour = _ESTIMATE_COLOUR

    with _style():
        fig = _new_figure(_rows_height(labels))
        ax = fig.add_subplot()
        ax.axvline(0, color="#BDBDBD", linewidth=1, zorder=1)
        for x in (-WWC_EQUIVALENT, WWC_EQUIVALENT):
            ax.axvline(x, color=_REFERENCE_COLOUR, linestyle=":", linewidth=1)
        for x in (-WWC_ADJUST, WWC_ADJUST):
            ax.axvline(x, color=_REFERENCE_COLOUR, linestyle="--", linewidth=1)
        for y, r in zip(ys, checked, strict=True):
            side: list[str] = [r.flag] if r.flag else []
            if r.smd_before is None and r.smd_after is None:
                _suppressed_band(ax, y, "suppressed")
            elif r.smd_before is None:
                side.append("before: suppressed")
            elif r.smd_after is None:
                side.append("after: suppressed")
            if r.smd_before is not None and r.smd_after is not None:
                ax.plot(
                    [r.smd_before, r.smd_after],
                    [y, y],
                    color="#BDBDBD",
                    linewidth=1,
                    zorder=2,
                )
            if r.smd_before is not None:
                ax.plot(
                    [r.smd_before],
                    [y],
                    linestyle="none",
                    marker="o",
                    markersize=7,
                    markerfacecolor="white",
                    markeredgecolor=before_colour,
                    markeredgewidth=1.4,
                    zorder=3,
                    gid=f"backbone-before-{y}",
                )
            if r.smd_after is not None:
                ax.plot(
                    [r.smd_after],
                    [y],
                    linestyle="none",
                    marker="o",
                    markersize=7,
                    color=after_colour,
                    zorder=4,
                    gid=f"backbone-after-{y}",
                )
            if side:
                ax.text(
                    1.01,
                    y,
                    "; ".join(side),
                    ha="left",
                    va="center",
                    fontsize=8.5,
                    color="#444444",
                    transform=ax.get_yaxis_transform(),
                )
        ax.set_xlim(-reach, reach)
        ax.set_yticks(ys, labels)
        ax.set_ylim(len(checked) - 0.5, -0.5)  # first covariate at the top
        ax.set_xlabel("Standardized mean difference")
        ax.tick_params(axis="y", length=0)
        ax.spines["left"].set_visible(False)
        handles = [
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                markerfacecolor="white",
                markeredgecolor=before_colour,
                markeredgewidth=1.4,
                label="before matching",
            ),
            Line2D(
                [],
                [],
                linestyle="none",
                marker="o",
                color=after_colour,
                label="after matching",
            ),
            Line2D(
                [],
                [],
                color=_REFERENCE_COLOUR,
                linestyle=":",
                label=f"±{WWC_EQUIVALENT:g} (WWC: equivalent inside)",
            ),
            Line2D(
                [],
                [],
                color=_REFERENCE_COLOUR,
                linestyle="--",
                label=f"±{WWC_ADJUST:g} (WWC: not equivalent outside)",
            ),
        ]
        ax.legend(
            handles=handles,
            loc="lower left",
            bbox_to_anchor=(0, 1.01),
            borderaxespad=0,
            ncols=2,
            frameon=False,
            fontsize=9,
        )
        _add_chrome(fig, title, notes)
    return Chart(
        title=title,
        notes=notes,
        figure=fig,
        columns=(
            "covariate",
            "SMD before matching",
            "SMD after matching",
            "flag after matching",
        ),
        rows=tuple(
            (r.covariate, r.smd_before, r.smd_after, r.flag or "") for r in checked
        ),
    )


# ----------------------------------------------------------- college going


def college_going(
    title: str,
    classes: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    notes: str = "",
) -> Chart:
    """Percentages by graduating class, one line per measure, y axis 0–100 %.

    ``classes`` are the class labels in order ("Class of 2022", ...); each of
    ``series`` is ``(measure, values)`` with one percentage (0..100) or ``None``
    per class. ``None`` is a gap in the line and "—" in the table (suppressed, or
    not yet observable).

    This is a thin wrapper over :func:`trend_lines`, which already draws lines
    with markers that break at a gap. It checks the shape and the 0..100 range,
    converts percentages to shares (the unit ``trend_lines`` and the table use,
    so the chart's ``rows`` hold shares: 61.2 becomes 0.612, shown "61.2%") and
    fixes the y axis at 0–100 %.
    """
    if not classes:
        raise UserError("There are no graduating classes to chart.")
    if not series:
        raise UserError("There are no measures to chart.")
    class_list = [_row_label(c, f"Class {n}") for n, c in enumerate(classes, start=1)]
    if len(set(class_list)) != len(class_list):
        raise UserError("A graduating class appears twice in the classes.")
    seen: set[str] = set()
    points: list[tuple[str, str, float | None]] = []
    for n, entry in enumerate(series, start=1):
        if isinstance(entry, str) or not isinstance(entry, Sequence) or len(entry) != 2:
            raise UserError(f"Series {n}: expected (measure, values), got {entry!r}.")
        measure, values = entry
        measure = _row_label(measure, f"Series {n}")
        where = f"Series {n} ({measure!r})"
        if measure in seen:
            raise UserError(f"{where}: this measure appears twice.")
        seen.add(measure)
        if isinstance(values, str | bytes) or len(values) != len(class_list):
            raise UserError(
                f"{where}: needs one value per class ({len(class_list)}), "
                f"got {values!r}."
            )
        for cls, value in zip(class_list, values, strict=True):
            v = _check_number(value, f"{where}, {cls}")
            if v is not None and not 0 <= v <= 100:
                raise UserError(
                    f"{where}, {cls}: a percentage must be between 0 and 100, "
                    f"got {v!r}."
                )
            points.append((measure, cls, None if v is None else v / 100))

    chart = trend_lines(
        points, title=title, y_label="Percent", percent=True, notes=notes
    )
    with _style():
        chart.figure.axes[0].set_ylim(0, 1)
    return chart
