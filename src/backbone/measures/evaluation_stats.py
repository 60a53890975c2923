"""Statistics for funders' program evaluations (quasi-experimental, WWC style).

The engine is pure: it takes a :class:`pandas.DataFrame` with one row per candidate
person-year and returns numbers; it never touches the warehouse. Steps:

1. :func:`match` — propensity-score matching *within exact strata* (the caller builds
   ``stratum`` from school, grade and school year): greedy nearest neighbour on the
   logit of the score, without replacement, up to ``ratio`` comparisons per treated
   row, inside a caliper of ``caliper`` × SD(logit).
2. :func:`balance` — the baseline-equivalence table (Hedges' g / Cox index with the
   WWC small-sample correction, flagged at 0.05 and 0.25).
3. :func:`estimate` — the effect and its 95% CI: difference-in-differences when a
   baseline (``<outcome>_pre``) exists, otherwise a covariate-adjusted matched
   comparison. WLS with the matching weights, cluster-robust SE by matched set, t with
   (sets − 1) df.
4. :func:`dose_response` and :func:`subgroups` — the same estimate on subsets of
   matched sets.

Input columns: ``unit`` (person), ``treated`` (bool), ``stratum`` (str), the caller's
covariates (floats, NaN allowed), ``<outcome>_post`` / ``<outcome>_pre`` and, for
treated rows, optionally ``dose``. Other columns are carried through. The matched frame
adds ``pscore``, ``logit``, ``set_id`` and ``weight`` (existing columns of those names
are overwritten).

Missing covariates are imputed with the stratum mean, else the overall mean, and a 0/1
``<covariate>__missing`` indicator is added for every covariate with a missing value;
the indicators enter the propensity model and the regressions. The balance table uses
observed values only (imputed values would make groups look more alike than they are).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from scipy.special import expit
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from statsmodels.regression.linear_model import OLS, WLS

from backbone.errors import UserError

__all__ = [
    "ADJUST",
    "ADJUSTED",
    "DID",
    "EQUIVALENT",
    "NOT_COMPUTABLE",
    "NOT_EQUIVALENT",
    "Estimate",
    "EvaluationError",
    "Matched",
    "balance",
    "dose_response",
    "equivalence_flag",
    "estimate",
    "match",
    "randomized",
    "subgroups",
]

DID = "difference-in-differences"
ADJUSTED = "adjusted comparison"
RANDOMIZED = "randomized, within blocks"

EQUIVALENT = "equivalent"
ADJUST = "adjust"
NOT_EQUIVALENT = "not equivalent"
NOT_COMPUTABLE = "not computable"
EQUIVALENT_MAX = 0.05
ADJUST_MAX = 0.25
COX_SCALE = 1.65

MISSING = "(missing)"
MISSING_SUFFIX = "__missing"
MAX_ITER = 10_000

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class EvaluationError(UserError):
    """The evaluation cannot be run as asked (missing columns, no comparison pool...)."""


@dataclass(frozen=True, eq=False)
class Matched:
    """The matched sample and what matching did.

    ``frame`` holds the matched rows only: every input column (covariates as given,
    NaN kept) plus ``pscore``, ``logit``, ``set_id`` (int, one per treated row) and
    ``weight`` (treated 1; each comparison 1/k, k = comparisons in its set).
    """

    frame: pd.DataFrame
    covariates: tuple[str, ...]  # the propensity model's columns, indicators included
    caliper_width: float  # caliper × SD(logit) over all rows, in logit units
    treated_offered: int  # treated rows in the input
    treated_matched: int  # treated rows with at least one comparison (= sets)
    comparison_pool: int  # eligible comparison rows (units never treated)
    comparisons_used: int  # comparison rows matched (one per person)


@dataclass(frozen=True)
class Estimate:
    """One effect estimate; ``effect`` and its statistics are None when ``reason`` says
    why it could not be estimated (too few units, collinear design)."""

    design: str  # DID or ADJUSTED
    effect: float | None  # treated − comparison (proportion points for 0/1 outcomes)
    se: float | None  # cluster-robust by matched set
    ci_low: float | None  # 95%, t with (n_sets − 1) df
    ci_high: float | None
    p_value: float | None  # two-sided
    n_treated: int  # distinct treated units in the estimation sample
    n_comparison: int  # distinct comparison units in the estimation sample
    n_sets: int  # matched sets (clusters) in the estimation sample
    treated_units: tuple[str, ...]  # exactly who was counted, sorted
    comparison_units: tuple[str, ...]
    mean_treated_pre: float | None  # weighted; pre means None without a baseline
    mean_treated_post: float | None
    mean_comparison_pre: float | None
    mean_comparison_post: float | None
    covariates_used: tuple[str, ...]  # after dropping constant / redundant columns
    reason: str | None = None


# --------------------------------------------------------------------------- matching


def match(
    frame: pd.DataFrame,
    covariates: Sequence[str],
    *,
    ratio: int = 2,
    caliper: float = 0.2,
) -> Matched:
    """Propensity-score matching within exact strata; see the module docstring.

    Deterministic: strata are visited in sorted order, treated rows within a stratum by
    logit descending then unit, and comparison candidates by distance then unit. A
    comparison person is used at most once across all strata, and a person treated in
    any row is never a comparison.
    """
    _require(frame, ["unit", "treated", "stratum", *covariates])
    if not covariates:
        raise EvaluationError("Matching needs at least one covariate.")
    if ratio < 1:
        raise EvaluationError(f"ratio must be at least 1, got {ratio}.")
    if not caliper > 0:
        raise EvaluationError(f"caliper must be positive, got {caliper}.")
    data = frame.reset_index(drop=True)
    if data["stratum"].isna().any():
        raise EvaluationError("Every row needs a stratum; some are empty.")
    treated = data["treated"].to_numpy(dtype=bool)
    if treated.all() or not treated.any():
        raise EvaluationError("Matching needs both treated and comparison rows.")

    design_names, design = _design(data, covariates)
    logit = _propensity_logit(design, treated)
    width = caliper * float(np.std(logit, ddof=1))

    unit_code, _ = pd.factorize(data["unit"].astype(str), sort=True)
    unit_code = unit_code.astype(np.int64)
    stratum_code, strata = pd.factorize(data["stratum"].astype(str), sort=True)
    ever_treated = np.zeros(int(unit_code.max()) + 1, dtype=bool)
    ever_treated[unit_code[treated]] = True
    eligible = ~treated & ~ever_treated[unit_code]

    set_id, weight = _greedy_match(
        logit, treated, eligible, unit_code, stratum_code.astype(np.int64),
        len(strata), ratio, width,
    )  # fmt: skip

    out = data.assign(pscore=expit(logit), logit=logit, set_id=set_id, weight=weight)
    out = out.loc[set_id >= 0].sort_values(
        ["set_id", "treated"], ascending=[True, False], kind="stable"
    )
    return Matched(
        frame=out.reset_index(drop=True),
        covariates=tuple(design_names),
        caliper_width=width,
        treated_offered=int(treated.sum()),
        treated_matched=int((set_id[treated] >= 0).sum()),
        comparison_pool=int(eligible.sum()),
        comparisons_used=int((set_id[~treated] >= 0).sum()),
    )


def _propensity_logit(x: FloatArray, treated: BoolArray) -> FloatArray:
    """Logit of the propensity score (the linear predictor, so no log(0))."""
    scaled = StandardScaler().fit_transform(x)
    model = LogisticRegression(C=1.0, solver="lbfgs", max_iter=MAX_ITER)
    # L2-penalised logistic regression on standardised data is strongly convex, so
    # non-convergence means broken input; say so instead of matching on a bad score.
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            model.fit(scaled, treated)
        except ConvergenceWarning as exc:
            raise EvaluationError(
                "The propensity model did not converge; check the covariates for "
                "extreme values."
            ) from exc
    return np.asarray(model.decision_function(scaled), dtype=np.float64)


def _greedy_match(
    logit: FloatArray,
    treated: BoolArray,
    eligible: BoolArray,
    unit_code: IntArray,
    stratum_code: IntArray,
    n_strata: int,
    ratio: int,
    width: float,
) -> tuple[IntArray, FloatArray]:
    """Set id per row (−1 = unmatched) and matching weight per row."""
    n = len(logit)
    rows = np.arange(n, dtype=np.int64)
    set_id = np.full(n, -1, dtype=np.int64)
    weight = np.zeros(n, dtype=np.float64)
    used = np.zeros(int(unit_code.max()) + 1, dtype=bool)
    by_stratum = np.argsort(stratum_code, kind="stable")
    bounds = np.searchsorted(stratum_code[by_stratum], np.arange(n_strata + 1))
    next_set = 0
    for s in range(n_strata):
        members = by_stratum[bounds[s] : bounds[s + 1]]
        pool = members[eligible[members]]
        mine = members[treated[members]]
        if pool.size == 0 or mine.size == 0:
            continue
        # np.lexsort sorts by the last key first.
        mine = mine[np.lexsort((mine, unit_code[mine], -logit[mine]))]
        for t in mine:
            free = pool[~used[unit_code[pool]]]
            if free.size == 0:
                break
            dist = np.abs(logit[free] - logit[t])
            near = dist <= width
            cand, dist = free[near], dist[near]
            if cand.size == 0:
                continue
            cand = cand[np.lexsort((rows[cand], unit_code[cand], dist))]
            # One row per person even if a person has two rows in the stratum.
            _, first = np.unique(unit_code[cand], return_index=True)
            pick = cand[np.sort(first)[:ratio]]
            used[unit_code[pick]] = True
            set_id[t] = next_set
            set_id[pick] = next_set
            weight[t] = 1.0
            weight[pick] = 1.0 / pick.size
            next_set += 1
    return set_id, weight


# ---------------------------------------------------------------------------- balance


def balance(
    frame: pd.DataFrame,
    covariates: Sequence[str],
    *,
    weights: str | None = None,
) -> pd.DataFrame:
    """The baseline-equivalence table: one row per covariate.

    Columns: covariate, kind ('binary' if the observed values ⊆ {0, 1}, else
    'continuous'), mean_treated, mean_comparison (weighted; proportions for binary),
    smd, flag (see :func:`equivalence_flag`). Rows with a missing value of the
    covariate, or a weight that is missing or not positive, are left out of that row.

    Continuous: Hedges' g = (m_t − m_c) / s_pooled × ω, where
    s_pooled = √(((n_t − 1)s_t² + (n_c − 1)s_c²) / (n_t + n_c − 2)) and
    ω = 1 − 3 / (4(n_t + n_c) − 9) (WWC Procedures Handbook v5.0); n are row counts
    and s² the weighted variances Σw(x − m)² / (Σw − Σw²/Σw), which is the usual
    n − 1 variance when all weights are 1.

    Binary: Cox index = [logit(p_t) − logit(p_c)] / 1.65 × ω. When either proportion is
    0 or 1 the log odds are infinite; we then add 0.5 to every cell of the 2×2 table
    (p' = (n·p + 0.5) / (n + 1) in both groups), the Haldane–Anscombe correction, so the
    index stays finite and still grows with the imbalance.

    smd is NaN (flag 'not computable') when either group has fewer than 2 rows.
    """
    _require(frame, ["treated", *covariates, *([weights] if weights else [])])
    treated = frame["treated"].to_numpy(dtype=bool)
    if weights is None:
        w = np.ones(len(frame), dtype=np.float64)
    else:
        w = frame[weights].to_numpy(dtype=np.float64)
    w_ok = np.isfinite(w) & (w > 0)
    records: list[dict[str, object]] = []
    for cov in covariates:
        x = frame[cov].to_numpy(dtype=np.float64)
        ok = w_ok & ~np.isnan(x)
        binary = bool(ok.any()) and bool(np.isin(x[ok], (0.0, 1.0)).all())
        t, c = ok & treated, ok & ~treated
        m_t, m_c = _wmean(x[t], w[t]), _wmean(x[c], w[c])
        if binary:
            smd = _cox_index(m_t, int(t.sum()), m_c, int(c.sum()))
        else:
            smd = _hedges_g(x[t], w[t], x[c], w[c])
        records.append(
            {
                "covariate": cov,
                "kind": "binary" if binary else "continuous",
                "mean_treated": m_t,
                "mean_comparison": m_c,
                "smd": smd,
                "flag": equivalence_flag(smd),
            }
        )
    columns = ["covariate", "kind", "mean_treated", "mean_comparison", "smd", "flag"]
    return pd.DataFrame.from_records(records, columns=columns)


def equivalence_flag(smd: float) -> str:
    """WWC category: 'equivalent' (|smd| ≤ 0.05), 'adjust' (≤ 0.25: the analysis must
    control for it), 'not equivalent' (> 0.25), 'not computable' (NaN)."""
    if math.isnan(smd):
        return NOT_COMPUTABLE
    # Round off float noise so a computed 0.05000000000000001 is still on the boundary.
    size = round(abs(smd), 12)
    if size <= EQUIVALENT_MAX:
        return EQUIVALENT
    if size <= ADJUST_MAX:
        return ADJUST
    return NOT_EQUIVALENT


def _omega(n: int) -> float:
    return 1.0 - 3.0 / (4.0 * n - 9.0)


def _wmean(x: FloatArray, w: FloatArray) -> float:
    return float(np.sum(w * x) / np.sum(w)) if x.size else math.nan


def _wvar(x: FloatArray, w: FloatArray) -> float:
    if x.size < 2:
        return 0.0
    v1 = float(np.sum(w))
    v2 = float(np.sum(w * w))
    m = float(np.sum(w * x)) / v1
    return float(np.sum(w * (x - m) ** 2)) / (v1 - v2 / v1)


def _hedges_g(xt: FloatArray, wt: FloatArray, xc: FloatArray, wc: FloatArray) -> float:
    n_t, n_c = xt.size, xc.size
    if n_t < 2 or n_c < 2:
        return math.nan
    diff = _wmean(xt, wt) - _wmean(xc, wc)
    pooled = ((n_t - 1) * _wvar(xt, wt) + (n_c - 1) * _wvar(xc, wc)) / (n_t + n_c - 2)
    # Weighted means of a constant are only equal up to rounding, so "constant" and
    # "same value" are judged relative to the size of the values.
    scale = 1e-12 * max(1.0, float(np.abs(xt).max()), float(np.abs(xc).max()))
    if math.sqrt(max(pooled, 0.0)) <= scale:
        # Both groups constant: identical values are equivalent, different ones not.
        return 0.0 if abs(diff) <= scale else math.copysign(math.inf, diff)
    return diff / math.sqrt(pooled) * _omega(n_t + n_c)


def _cox_index(p_t: float, n_t: int, p_c: float, n_c: int) -> float:
    if n_t < 2 or n_c < 2:
        return math.nan
    if min(p_t, p_c) <= 0.0 or max(p_t, p_c) >= 1.0:
        p_t = (n_t * p_t + 0.5) / (n_t + 1)
        p_c = (n_c * p_c + 0.5) / (n_c + 1)
    log_odds = math.log(p_t / (1 - p_t)) - math.log(p_c / (1 - p_c))
    return log_odds / COX_SCALE * _omega(n_t + n_c)


# -------------------------------------------------------------------------- estimates


_Stat = tuple[float, float, float, float, float]
"""effect, se, ci_low, ci_high, p_value"""


def _estimate_of(
    design: str,
    stat: _Stat | None,
    units: tuple[tuple[str, ...], tuple[str, ...]],
    n_sets: int,
    means: tuple[float | None, float | None, float | None, float | None],
    used: tuple[str, ...],
    reason: str | None,
) -> Estimate:
    """An :class:`Estimate` from its statistics (None: not estimated, ``reason``
    says why), the units counted on each side and the group means (treated pre,
    treated post, comparison pre, comparison post)."""
    effect, se, ci_low, ci_high, p_value = stat or (None,) * 5
    treated_units, comparison_units = units
    return Estimate(
        design=design,
        effect=effect,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        n_treated=len(treated_units),
        n_comparison=len(comparison_units),
        n_sets=n_sets,
        treated_units=treated_units,
        comparison_units=comparison_units,
        mean_treated_pre=means[0],
        mean_treated_post=means[1],
        mean_comparison_pre=means[2],
        mean_comparison_post=means[3],
        covariates_used=used,
        reason=reason,
    )


def estimate(
    matched: Matched,
    outcome: str,
    covariates: Sequence[str],
    *,
    baseline: bool,
) -> Estimate:
    """The effect on ``outcome`` in the matched sample.

    ``baseline=True``: difference-in-differences, the dependent variable is
    ``<outcome>_post − <outcome>_pre``. ``baseline=False``: adjusted comparison on
    ``<outcome>_post``. Rows without the dependent variable are dropped, then any set
    that lost its treated row or all its comparisons; comparison weights are re-set to
    1/k within the surviving sets. WLS of the dependent on treated + covariates
    (+ missing indicators, imputed within the estimation sample) with the matching
    weights; SE cluster-robust by set. Returns ``effect=None`` with a ``reason``
    (never raises) when there are fewer than 2 treated or 2 comparison units or the
    treatment is collinear with the covariates.
    """
    post = f"{outcome}_post"
    pre = f"{outcome}_pre"
    needed = ["unit", "treated", "stratum", "set_id", post, *covariates]
    _require(matched.frame, [*needed, *([pre] if baseline else [])])
    sample = _estimation_sample(matched.frame, post, pre if baseline else None)
    treated = sample["treated"].to_numpy(dtype=bool)
    w = sample["weight"].to_numpy(dtype=np.float64)
    y_post = sample[post].to_numpy(dtype=np.float64)
    y_pre = sample[pre].to_numpy(dtype=np.float64) if baseline else None
    units = sample["unit"].astype(str).to_numpy()
    t_units = tuple(sorted(set(units[treated].tolist())))
    c_units = tuple(sorted(set(units[~treated].tolist())))
    n_sets = int(sample["set_id"].nunique())

    def group_mean(y: FloatArray | None, mask: BoolArray) -> float | None:
        if y is None or not mask.any():
            return None
        return _wmean(y[mask], w[mask])

    def result(
        stat: _Stat | None, used: tuple[str, ...] = (), reason: str | None = None
    ) -> Estimate:
        means = (
            group_mean(y_pre, treated),
            group_mean(y_post, treated),
            group_mean(y_pre, ~treated),
            group_mean(y_post, ~treated),
        )
        return _estimate_of(
            DID if baseline else ADJUSTED,
            stat,
            (t_units, c_units),
            n_sets,
            means,
            used,
            reason,
        )

    if len(t_units) < 2 or len(c_units) < 2:
        return result(None, reason="fewer than 2 treated or 2 comparison units")

    y = y_post - y_pre if y_pre is not None else y_post
    names, x_cov = _full_rank_covariates(*_design(sample, covariates))
    x_t = treated.astype(np.float64)
    if np.linalg.matrix_rank(np.column_stack([x_cov, x_t])) <= x_cov.shape[1]:
        return result(None, names, "treatment is collinear with the covariates")
    x = np.column_stack([x_t, x_cov])  # x_cov starts with the intercept
    groups, _ = pd.factorize(sample["set_id"])
    fit = WLS(y, x, weights=w).fit(cov_type="cluster", cov_kwds={"groups": groups})
    effect = float(fit.params[0])
    se = float(fit.bse[0])
    df = n_sets - 1
    half = float(stats.t.ppf(0.975, df)) * se
    if se > 0:
        p_value = float(2 * stats.t.sf(abs(effect) / se, df))
    else:  # a perfect fit: no sampling error left to test against
        p_value = 1.0 if effect == 0 else 0.0
    return result((effect, se, effect - half, effect + half, p_value), names)


def randomized(
    frame: pd.DataFrame,
    outcome: str,
    *,
    block: str,
    covariates: Sequence[str] = (),
) -> Estimate:
    """The effect of random assignment on ``outcome`` (``<outcome>_post``): the
    difference in means within randomization blocks (``block``, e.g. the school),
    as OLS of the outcome on assignment and block indicators — each block's
    difference weighted by its precision — with HC2 standard errors (robust to
    unequal variances between arms, as Neyman's), t with n − k degrees of freedom.
    ``frame`` holds one row per student: ``unit``, ``treated`` (assigned to the
    program) and the outcome. Rows without it are dropped, then blocks that lost
    either arm (they say nothing about the difference).

    ``covariates`` (measured before assignment: last year's outcome, demographics)
    adjust the estimate for chance imbalance and make it more precise (ANCOVA,
    centred); a covariate missing for any analysed student or without variation
    among them is left out (named in ``covariates_used`` by its absence), so
    adjusting never drops a student."""
    post = f"{outcome}_post"
    _require(frame, ["unit", "treated", block, post])
    rows = frame[frame[post].notna()]
    arms = rows.groupby(block)["treated"].agg(["min", "max"])
    both = arms.index[(arms["min"] == 0) & (arms["max"] == 1)]
    rows = rows[rows[block].isin(both)]
    treated = rows["treated"].to_numpy(dtype=bool)
    y = rows[post].to_numpy(dtype=np.float64)
    units = rows["unit"].astype(str).to_numpy()
    t_units = tuple(sorted(set(units[treated].tolist())))
    c_units = tuple(sorted(set(units[~treated].tolist())))
    blocks = pd.get_dummies(rows[block].astype(str), drop_first=True, dtype=float)
    used = tuple(
        c
        for c in covariates
        if c in rows and rows[c].notna().all() and rows[c].nunique() > 1
    )
    design = RANDOMIZED + (", covariate-adjusted" if used else "")

    def mean(mask: BoolArray) -> float | None:
        return float(y[mask].mean()) if mask.any() else None

    def result(stat: _Stat | None, reason: str | None) -> Estimate:
        return _estimate_of(
            design,
            stat,
            (t_units, c_units),
            len(both),
            (None, mean(treated), None, mean(~treated)),
            used,
            reason,
        )

    if len(t_units) < 2 or len(c_units) < 2:
        return result(None, "fewer than 2 students in an arm of a block with both")
    adjust = rows[list(used)].to_numpy(dtype=np.float64)
    x = np.column_stack(
        [
            np.ones(y.size),
            treated.astype(np.float64),
            blocks.to_numpy(),
            adjust - adjust.mean(axis=0) if used else np.empty((y.size, 0)),
        ]
    )
    df = y.size - x.shape[1]
    if df < 1:
        return result(None, "too few students for the blocks")
    fit = OLS(y, x).fit(cov_type="HC2")
    effect, se = float(fit.params[1]), float(fit.bse[1])
    if not (math.isfinite(se) and se > 0):
        # every student alike within arms (or leverage 1): no sampling error
        # to test against, so no interval is claimed
        return result(None, "no variation within the arms to estimate an error from")
    half = float(stats.t.ppf(0.975, df)) * se
    p_value = float(2 * stats.t.sf(abs(effect) / se, df))
    return result((effect, se, effect - half, effect + half, p_value), None)


def dose_response(
    matched: Matched,
    outcome: str,
    covariates: Sequence[str],
    *,
    baseline: bool,
    bands: int = 3,
    dose_unit: str = "sessions",
) -> list[tuple[str, Estimate]]:
    """Estimates by dose band, lowest first, labelled like '1–12 sessions'.

    Matched treated rows with a dose are cut into ``bands`` quantile bands: a row goes
    to band ⌊bands × (r − 1) / n⌋, where r is its dose's rank with ties given the
    lowest rank, so equal doses always share a band; when ties swallow a band there
    are fewer bands. Labels give the lowest and highest dose actually in the band.
    Each band keeps its treated rows' own matched comparisons.
    """
    _require(matched.frame, ["dose"])
    if bands < 1:
        raise EvaluationError(f"bands must be at least 1, got {bands}.")
    frame = matched.frame
    dosed = frame.loc[frame["treated"].astype(bool) & frame["dose"].notna()]
    if dosed.empty:
        return []
    dose = dosed["dose"].to_numpy(dtype=np.float64)
    rank = stats.rankdata(dose, method="min")
    band = np.floor(bands * (rank - 1) / dose.size).astype(np.int64)
    sets = dosed["set_id"].to_numpy()
    out: list[tuple[str, Estimate]] = []
    for b in np.unique(band):
        in_band = band == b
        low, high = float(dose[in_band].min()), float(dose[in_band].max())
        span = _fmt(low) if low == high else f"{_fmt(low)}–{_fmt(high)}"
        subset = _subset(matched, frame["set_id"].isin(sets[in_band]))
        out.append(
            (
                f"{span} {dose_unit}",
                estimate(subset, outcome, covariates, baseline=baseline),
            )
        )
    return out


def subgroups(
    matched: Matched,
    outcome: str,
    covariates: Sequence[str],
    column: str,
    *,
    baseline: bool,
) -> list[tuple[str, Estimate]]:
    """Estimates by the treated row's value of ``column`` (its comparisons follow the
    set, whatever their own value). Values as text, sorted; missing as '(missing)'."""
    _require(matched.frame, [column])
    frame = matched.frame
    treated = frame["treated"].astype(bool)
    by_set = frame.loc[treated].set_index("set_id")[column]
    labels = by_set.astype(str).where(by_set.notna(), MISSING)
    label_of_row = frame["set_id"].map(labels)
    return [
        (
            label,
            estimate(
                _subset(matched, label_of_row == label),
                outcome,
                covariates,
                baseline=baseline,
            ),
        )
        for label in sorted(set(labels.tolist()))
    ]


def _estimation_sample(frame: pd.DataFrame, post: str, pre: str | None) -> pd.DataFrame:
    """Rows with the dependent variable, in sets that kept both sides; weights 1/k."""
    observed = frame[post].notna()
    if pre is not None:
        observed &= frame[pre].notna()
    kept = frame.loc[observed]
    treated = kept["treated"].astype(bool)
    comparisons = (~treated).groupby(kept["set_id"]).transform("sum")
    has_treated = treated.groupby(kept["set_id"]).transform("any")
    kept = kept.loc[has_treated & (comparisons > 0)]
    treated = treated.loc[kept.index]
    k = comparisons.loc[kept.index].to_numpy(dtype=np.float64)
    weight = np.where(treated.to_numpy(dtype=bool), 1.0, 1.0 / k)
    return kept.assign(weight=weight).reset_index(drop=True)


def _full_rank_covariates(
    names: Sequence[str], design: FloatArray
) -> tuple[tuple[str, ...], FloatArray]:
    """Intercept + covariates, dropping constant ones and any that are linear
    combinations of those already kept (e.g. two covariates missing on the same rows
    give identical indicators)."""
    kept_names: list[str] = []
    columns: list[FloatArray] = [np.ones(len(design), dtype=np.float64)]
    for name, col in zip(names, design.T, strict=True):
        spread = float(col.std())
        if spread == 0:
            continue
        scaled = (col - col.mean()) / spread  # scaled so the rank tolerance is fair
        if np.linalg.matrix_rank(np.column_stack([*columns, scaled])) > len(columns):
            columns.append(scaled)
            kept_names.append(name)
    return tuple(kept_names), np.column_stack(columns)


def _subset(matched: Matched, rows: pd.Series) -> Matched:
    frame = matched.frame.loc[rows.to_numpy(dtype=bool)].reset_index(drop=True)
    treated = frame["treated"].to_numpy(dtype=bool)
    return Matched(
        frame=frame,
        covariates=matched.covariates,
        caliper_width=matched.caliper_width,
        treated_offered=int(treated.sum()),
        treated_matched=int(treated.sum()),
        comparison_pool=matched.comparison_pool,
        comparisons_used=int((~treated).sum()),
    )


# --------------------------------------------------------------------------- helpers


def _design(
    frame: pd.DataFrame, covariates: Sequence[str]
) -> tuple[list[str], FloatArray]:
    """Imputed covariates plus ``<name>__missing`` indicators: names and a float
    matrix. Imputation: the stratum mean, else the overall mean, else 0 (a covariate
    missing everywhere is then a constant column, dropped later)."""
    values = frame[list(covariates)].to_numpy(dtype=np.float64)
    values = values.reshape(len(frame), len(covariates))
    missing = np.isnan(values)
    observed = np.where(missing, 0.0, values)
    codes, strata = pd.factorize(frame["stratum"], use_na_sentinel=False)
    sums = np.zeros((len(strata), values.shape[1]))
    counts = np.zeros_like(sums)
    for j in range(values.shape[1]):  # a loop over covariates, not rows
        sums[:, j] = np.bincount(codes, weights=observed[:, j], minlength=len(strata))
        counts[:, j] = np.bincount(codes, weights=~missing[:, j], minlength=len(strata))
    stratum_mean = _safe_ratio(sums, counts)[codes]
    overall_mean = _safe_ratio(sums.sum(axis=0), counts.sum(axis=0))
    imputed = np.where(missing, stratum_mean, values)
    imputed = np.where(np.isnan(imputed), overall_mean, imputed)
    imputed = np.nan_to_num(imputed, nan=0.0)
    flagged = missing.any(axis=0)
    names = [
        *covariates,
        *(
            f"{c}{MISSING_SUFFIX}"
            for c, f in zip(covariates, flagged, strict=True)
            if f
        ),
    ]
    matrix = np.column_stack([imputed, missing[:, flagged].astype(np.float64)])
    return names, matrix


def _safe_ratio(num: FloatArray, den: FloatArray) -> FloatArray:
    """num / den, NaN where den is 0 (without a divide-by-zero warning)."""
    return np.divide(num, den, out=np.full_like(num, np.nan), where=den > 0)


def _require(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise EvaluationError(
            f"The evaluation data has no column(s) {', '.join(map(repr, absent))}."
        )


def _fmt(value: float) -> str:
    return str(int(value)) if value.is_integer() else f"{value:g}"
