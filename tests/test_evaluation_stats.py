"""Program-evaluation statistics: matching, balance, effect estimates.

Hand examples check the formulas; simulations with a planted effect and planted
selection check that the estimates mean what they say.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from backbone.errors import UserError
from backbone.measures.evaluation_stats import (
    ADJUSTED,
    DID,
    Estimate,
    EvaluationError,
    Matched,
    balance,
    dose_response,
    equivalence_flag,
    estimate,
    match,
    randomized,
    subgroups,
)

OMEGA_7 = 1 - 3 / (4 * 7 - 9)  # = 16/19, the small-sample correction for N = 7


def synth(
    seed: int,
    *,
    strata: int = 10,
    per_stratum: int = 60,
    effect: float = 0.0,
    selection: float = 1.0,
    proxy_noise: float = 1.0,
) -> pd.DataFrame:
    """Selection on a persistent latent trait u that also drives both outcomes.

    The matching covariate ``z`` is a noisy proxy of u. y_pre = u + e1 and
    y_post = u + e2 + effect·treated, so post − pre carries no u.
    """
    rng = np.random.default_rng(seed)
    n = strata * per_stratum
    u = rng.normal(size=n)
    treated = rng.random(n) < expit(-1.2 + selection * u)
    idx = np.arange(n)
    return pd.DataFrame(
        {
            "unit": [f"p{i:05d}" for i in idx],
            "treated": treated,
            "stratum": [f"s{i % strata:03d}" for i in idx],
            "z": u + rng.normal(scale=proxy_noise, size=n),
            "female": (rng.random(n) < 0.5).astype(float),
            "score_pre": u + rng.normal(size=n),
            "score_post": u + rng.normal(size=n) + effect * treated,
            "dose": np.where(treated, rng.integers(1, 31, n), np.nan).astype(float),
        }
    )


def set_members(m: Matched) -> dict[str, tuple[str, ...]]:
    """Treated unit -> its comparison units, sorted."""
    out: dict[str, tuple[str, ...]] = {}
    for _, rows in m.frame.groupby("set_id"):
        t = rows.loc[rows["treated"], "unit"].tolist()
        assert len(t) == 1
        out[t[0]] = tuple(sorted(rows.loc[~rows["treated"], "unit"]))
    return out


# ---------------------------------------------------------------------------- balance


def tiny() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "unit": list("abcdefg"),
            "treated": [True, True, True, False, False, False, False],
            "stratum": "s",
            "x": [1.0, 2.0, 3.0, 2.0, 3.0, 4.0, 5.0],
            "b": [1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0],
            "w": [1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0],
            "x2": [1.0, 2.0, 3.0, 1.0, 5.0, 2.0, 4.0],
        }
    )


def test_hedges_g_and_cox_index_by_hand() -> None:
    table = balance(tiny(), ["x", "b"]).set_index("covariate")
    # x: treated 1,2,3 -> mean 2, s² = 1; comparison 2,3,4,5 -> mean 3.5,
    # s² = (2.25 + 0.25 + 0.25 + 2.25)/3 = 5/3. Pooled s² = (2·1 + 3·5/3)/(3+4−2)
    # = 7/5. ω = 1 − 3/(4·7 − 9) = 16/19. g = (2 − 3.5)/√1.4 · 16/19 = −1.067563...
    assert table.loc["x", "kind"] == "continuous"
    assert table.loc["x", "mean_treated"] == pytest.approx(2.0)
    assert table.loc["x", "mean_comparison"] == pytest.approx(3.5)
    assert table.loc["x", "smd"] == pytest.approx(
        -1.5 / math.sqrt(1.4) * 16 / 19, abs=1e-6
    )
    assert table.loc["x", "smd"] == pytest.approx(-1.0675630, abs=1e-6)
    assert table.loc["x", "flag"] == "not equivalent"
    # b: p_t = 2/3, p_c = 1/4. ln(2/3 / (1/3)) − ln(1/4 / (3/4)) = ln 2 + ln 3 = ln 6.
    # d = ln 6 / 1.65 · 16/19 = 1.791759/1.65 · 0.842105 = 0.914455...
    assert table.loc["b", "kind"] == "binary"
    assert table.loc["b", "mean_treated"] == pytest.approx(2 / 3)
    assert table.loc["b", "mean_comparison"] == pytest.approx(0.25)
    assert table.loc["b", "smd"] == pytest.approx(
        math.log(6) / 1.65 * OMEGA_7, abs=1e-6
    )
    assert table.loc["b", "smd"] == pytest.approx(0.9144551, abs=1e-6)
    assert list(table.columns) == [
        "kind",
        "mean_treated",
        "mean_comparison",
        "smd",
        "flag",
    ]


def test_weighted_balance_by_hand() -> None:
    table = balance(tiny(), ["x2", "b"], weights="w").set_index("covariate")
    # x2 comparison 1,5,2,4 with weights .5,.5,1,1: Σw = 3, Σwx = .5+2.5+2+4 = 9,
    # mean 3. Σw(x−3)² = .5·4 + .5·4 + 1 + 1 = 6; Σw² = 2.5, so
    # s_c² = 6 / (3 − 2.5/3) = 36/13. Treated 1,2,3: mean 2, s_t² = 1.
    # Pooled s² = (2·1 + 3·36/13)/5 = 134/65. g = (2 − 3)/√(134/65) · 16/19.
    assert table.loc["x2", "mean_comparison"] == pytest.approx(3.0)
    expected = -1 / math.sqrt(134 / 65) * OMEGA_7
    assert table.loc["x2", "smd"] == pytest.approx(expected, abs=1e-6)
    # b comparison 1,0,0,0 with weights .5,.5,1,1: p_c = .5/3 = 1/6.
    # ln(2) − ln((1/6)/(5/6)) = ln 2 + ln 5 = ln 10; d = ln 10 / 1.65 · 16/19.
    assert table.loc["b", "mean_comparison"] == pytest.approx(1 / 6)
    assert table.loc["b", "smd"] == pytest.approx(
        math.log(10) / 1.65 * OMEGA_7, abs=1e-6
    )


def test_cox_index_with_a_proportion_of_one_adds_half_a_case() -> None:
    frame = tiny().assign(b=[1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    row = balance(frame, ["b"]).iloc[0]
    # p_t = 3/3 is 1: both groups get 0.5 added to each cell. p_t' = 3.5/4 = 7/8,
    # p_c' = (1 + 0.5)/5 = 3/10. ln(7) − ln(3/7), / 1.65, · 16/19 = 1.6097...
    expected = (math.log(7) - math.log(3 / 7)) / 1.65 * OMEGA_7
    assert row["smd"] == pytest.approx(expected, abs=1e-6)
    assert row["flag"] == "not equivalent"


def test_flags_at_the_wwc_boundaries() -> None:
    assert equivalence_flag(0.0) == "equivalent"
    assert equivalence_flag(0.05) == "equivalent"
    assert equivalence_flag(-0.05) == "equivalent"
    assert equivalence_flag(0.05 + 1e-9) == "adjust"
    assert equivalence_flag(0.25) == "adjust"
    assert equivalence_flag(-0.25) == "adjust"
    assert equivalence_flag(0.1 + 0.15) == "adjust"  # float noise stays on the line
    assert equivalence_flag(0.25 + 1e-9) == "not equivalent"
    assert equivalence_flag(-math.inf) == "not equivalent"
    assert equivalence_flag(math.nan) == "not computable"


def test_balance_uses_observed_values_and_skips_tiny_groups() -> None:
    frame = tiny()
    frame.loc[[2, 6], "x"] = np.nan
    row = balance(frame, ["x"]).iloc[0]
    assert row["mean_treated"] == pytest.approx(1.5)
    assert row["mean_comparison"] == pytest.approx(3.0)
    lonely = balance(frame.iloc[[0, 3, 4, 5]], ["x"]).iloc[0]
    assert math.isnan(lonely["smd"])
    assert lonely["flag"] == "not computable"


# --------------------------------------------------------------------------- matching


def hand_frame() -> pd.DataFrame:
    """One covariate, so |Δlogit| ≤ caliper·SD(logit) is |Δx| ≤ caliper·SD(x)."""
    rows = [
        # stratum A: tA2 (higher logit) goes first and takes its 2 nearest, cA2 and
        # cA1; tA1 then gets cA3; cA4 is far outside the caliper.
        ("tA1", True, "A", 1.0),
        ("tA2", True, "A", 1.2),
        ("cA1", False, "A", 1.05),
        ("cA2", False, "A", 1.15),
        ("cA3", False, "A", 0.95),
        ("cA4", False, "A", -2.0),
        # stratum B: tA1 (treated elsewhere) and cA1 (used in A) are closest but not
        # available; cB1 is.
        ("tB1", True, "B", 1.0),
        ("tA1", False, "B", 1.0),
        ("cA1", False, "B", 1.0),
        ("cB1", False, "B", 1.1),
        # stratum C: a treated row with nobody to match.
        ("tC1", True, "C", 2.0),
        # stratum D: comparison-only filler.
        *[(f"d{i}", False, "D", x) for i, x in enumerate([-2, -1.5, -1, -0.5, 0, 0.5])],
    ]
    return pd.DataFrame(rows, columns=["unit", "treated", "stratum", "x"])


def test_matching_a_hand_built_frame() -> None:
    frame = hand_frame()
    m = match(frame, ["x"])
    x_width = 0.2 * float(frame["x"].std())
    assert 0.25 > x_width > 0.1  # the design above relies on this
    assert set_members(m) == {
        "tA2": ("cA1", "cA2"),
        "tA1": ("cA3",),
        "tB1": ("cB1",),
    }
    assert m.treated_offered == 4
    assert m.treated_matched == 3
    assert m.comparison_pool == 12  # 13 comparison rows, less tA1's row in B
    assert m.comparisons_used == 4
    weights = dict(zip(m.frame["unit"], m.frame["weight"], strict=True))
    assert weights == {
        "tA2": 1.0,
        "cA1": 0.5,
        "cA2": 0.5,
        "tA1": 1.0,
        "cA3": 1.0,
        "tB1": 1.0,
        "cB1": 1.0,
    }
    # With one covariate the logit is linear in x, so the caliper scales with x.
    out = m.frame
    logit_per_x = (out["logit"].max() - out["logit"].min()) / (
        out["x"].max() - out["x"].min()
    )
    assert m.caliper_width == pytest.approx(logit_per_x * x_width)
    assert m.covariates == ("x",)


def panel(seed: int = 3) -> pd.DataFrame:
    """Each person in two school years; some are treated in only one of them."""
    rng = np.random.default_rng(seed)
    people, schools = 1500, 6
    u = rng.normal(size=people)
    school = rng.integers(0, schools, people)
    frames = []
    for year in (2023, 2024):
        treated = rng.random(people) < expit(-1.5 + u)
        frames.append(
            pd.DataFrame(
                {
                    "unit": [f"p{i:04d}" for i in range(people)],
                    "treated": treated,
                    "stratum": [f"school{s}-{year}" for s in school],
                    "z": u + rng.normal(size=people),
                    "female": (rng.random(people) < 0.5).astype(float),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def test_matching_rules_hold_on_a_panel() -> None:
    frame = panel()
    m = match(frame, ["z", "female"], ratio=2, caliper=0.2)
    out = m.frame
    # Never crosses strata.
    assert (out.groupby("set_id")["stratum"].nunique() == 1).all()
    # Exactly one treated row per set, 1..ratio comparisons, weights 1 and 1/k.
    sizes = out.groupby("set_id")["treated"].agg(["sum", "count"])
    assert (sizes["sum"] == 1).all()
    assert sizes["count"].between(2, 3).all()
    k = out["set_id"].map(sizes["count"] - 1)
    expected_w = np.where(out["treated"], 1.0, 1.0 / k)
    np.testing.assert_allclose(out["weight"], expected_w)
    # Within the caliper.
    treated_logit = out.loc[out["treated"]].set_index("set_id")["logit"]
    comparisons = out.loc[~out["treated"]]
    gap = (comparisons["logit"] - comparisons["set_id"].map(treated_logit)).abs()
    assert gap.max() <= m.caliper_width
    # One person-year per comparison person; never a person treated in any year.
    assert comparisons["unit"].is_unique
    ever_treated = set(frame.loc[frame["treated"], "unit"])
    assert not ever_treated & set(comparisons["unit"])
    # Counts agree with the frame.
    assert m.treated_offered == int(frame["treated"].sum())
    assert m.treated_matched == out["set_id"].nunique() == int(out["treated"].sum())
    assert m.comparisons_used == len(comparisons)
    assert m.comparison_pool == int(
        (~frame["treated"] & ~frame["unit"].isin(ever_treated)).sum()
    )
    assert 0 < m.treated_matched < m.treated_offered
    # A tighter caliper matches fewer, and only closer, comparisons.
    tight = match(frame, ["z", "female"], ratio=2, caliper=0.01)
    assert tight.comparisons_used < m.comparisons_used
    assert tight.caliper_width == pytest.approx(m.caliper_width / 20)


def test_matching_is_deterministic() -> None:
    frame = panel(seed=5)
    first = match(frame, ["z", "female"])
    second = match(frame, ["z", "female"])
    pd.testing.assert_frame_equal(first.frame, second.frame)
    # The input's row order does not matter either.
    shuffled = frame.sample(frac=1.0, random_state=1)
    assert set_members(match(shuffled, ["z", "female"])) == set_members(first)


def test_missing_covariates_get_imputed_and_an_indicator() -> None:
    frame = synth(8)
    frame.loc[frame.index % 7 == 0, "z"] = np.nan
    m = match(frame, ["z", "female"])
    assert m.covariates == ("z", "female", "z__missing")
    assert m.frame["z"].isna().any()  # the matched frame keeps what was observed
    table = balance(m.frame, ["z", "female"], weights="weight")
    assert list(table["covariate"]) == ["z", "female"]
    result = estimate(m, "score", ["z", "female"], baseline=True)
    assert result.covariates_used == ("z", "female", "z__missing")
    assert result.effect is not None


def test_matching_refuses_unusable_input() -> None:
    frame = synth(1)
    with pytest.raises(EvaluationError, match="no column"):
        match(frame, ["nope"])
    with pytest.raises(EvaluationError, match="at least one covariate"):
        match(frame, [])
    with pytest.raises(EvaluationError, match="both treated and comparison"):
        match(frame.assign(treated=True), ["z"])
    assert issubclass(EvaluationError, UserError)


# -------------------------------------------------------------------------- estimates


def test_ci_covers_a_constant_effect_without_confounding() -> None:
    frame = synth(21, strata=20, effect=0.5, selection=0.0)
    m = match(frame, ["z", "female"])
    for baseline in (True, False):
        result = estimate(m, "score", ["z", "female"], baseline=baseline)
        assert result.design == (DID if baseline else ADJUSTED)
        assert result.effect is not None and result.ci_low is not None
        assert result.ci_high is not None and result.p_value is not None
        assert result.ci_low < 0.5 < result.ci_high
        assert result.ci_low < result.effect < result.ci_high
        assert result.p_value < 0.05
        assert result.n_treated == len(result.treated_units) == m.treated_matched
        assert result.n_comparison == len(result.comparison_units)
        assert result.n_sets == m.treated_matched


def test_did_removes_a_persistent_confounder_that_adjustment_does_not() -> None:
    effect = 0.3
    frame = synth(4, strata=40, per_stratum=100, effect=effect, selection=1.5)
    m = match(frame, ["z", "female"])
    did = estimate(m, "score", ["z", "female"], baseline=True)
    adjusted = estimate(m, "score", ["z", "female"], baseline=False)
    assert did.effect is not None and adjusted.effect is not None
    assert abs(did.effect - effect) < 0.12
    assert did.ci_low is not None and did.ci_high is not None
    assert did.ci_low < effect < did.ci_high
    # Matching on a noisy proxy leaves the treated with a higher u.
    assert adjusted.effect - effect > 0.25
    assert adjusted.ci_low is not None and adjusted.ci_low > effect
    assert did.mean_treated_pre is not None and adjusted.mean_treated_pre is None


def test_did_and_simple_difference_equal_the_weighted_means() -> None:
    # With no covariates the WLS coefficient is exactly the weighted contrast.
    m = match(synth(6, effect=0.4), ["z"])
    did = estimate(m, "score", [], baseline=True)
    adj = estimate(m, "score", [], baseline=False)
    assert did.mean_treated_pre is not None and did.mean_comparison_pre is not None
    assert did.mean_treated_post is not None and did.mean_comparison_post is not None
    assert did.effect == pytest.approx(
        (did.mean_treated_post - did.mean_treated_pre)
        - (did.mean_comparison_post - did.mean_comparison_pre)
    )
    assert adj.mean_treated_post is not None and adj.mean_comparison_post is not None
    assert adj.effect == pytest.approx(adj.mean_treated_post - adj.mean_comparison_post)
    assert did.covariates_used == ()


def test_missing_outcomes_drop_rows_then_broken_sets() -> None:
    m = match(synth(9), ["z"])
    frame = m.frame.copy()
    sets = sorted(frame["set_id"].unique())
    two = [s for s in sets if (frame["set_id"] == s).sum() == 3]
    lost_treated, lost_one, lost_both = two[0], two[1], two[2]
    t_row = frame.index[(frame["set_id"] == lost_treated) & frame["treated"]]
    frame.loc[t_row, "score_pre"] = np.nan
    c_rows = frame.index[(frame["set_id"] == lost_one) & ~frame["treated"]]
    frame.loc[c_rows[0], "score_post"] = np.nan
    c_rows = frame.index[(frame["set_id"] == lost_both) & ~frame["treated"]]
    frame.loc[c_rows, "score_post"] = np.nan
    broken = Matched(
        frame=frame,
        covariates=m.covariates,
        caliper_width=m.caliper_width,
        treated_offered=m.treated_offered,
        treated_matched=m.treated_matched,
        comparison_pool=m.comparison_pool,
        comparisons_used=m.comparisons_used,
    )
    result = estimate(broken, "score", [], baseline=True)
    gone = frame["set_id"].isin([lost_treated, lost_both])
    survivors = frame.loc[~gone & frame["score_post"].notna()]
    assert result.treated_units == tuple(
        sorted(survivors.loc[survivors["treated"], "unit"])
    )
    assert result.comparison_units == tuple(
        sorted(survivors.loc[~survivors["treated"], "unit"])
    )
    assert result.n_sets == len(sets) - 2
    # The set that lost one of two comparisons gives the other full weight.
    kept = survivors.loc[(survivors["set_id"] == lost_one) & ~survivors["treated"]]
    w = kept["weight"].to_numpy()
    assert len(w) == 1 and w[0] == 0.5  # the stored weight is untouched ...
    t_mean = survivors.loc[survivors["treated"], ["score_post", "score_pre"]]
    t_gain = (t_mean["score_post"] - t_mean["score_pre"]).mean()
    c = survivors.loc[~survivors["treated"]]
    k = c.groupby("set_id")["unit"].transform("count")
    c_gain = np.average(c["score_post"] - c["score_pre"], weights=1 / k)
    assert result.effect == pytest.approx(t_gain - c_gain)  # ... the estimate's is 1/k


def test_too_few_units_or_collinear_design_give_no_effect() -> None:
    # Only tA2's set (1 treated, 2 comparisons) has the outcome.
    frame = hand_frame()
    frame["y_post"] = np.where(frame["unit"].isin(["tA2", "cA1", "cA2"]), 1.0, np.nan)
    m = match(frame, ["x"])
    few = estimate(m, "y", ["x"], baseline=False)
    assert few.effect is None and few.se is None and few.p_value is None
    assert few.reason is not None and "fewer than 2" in few.reason
    assert few.n_treated == 1 and few.n_comparison == 2
    assert few.treated_units == ("tA2",) and few.comparison_units == ("cA1", "cA2")
    full = match(synth(2), ["z"])
    same = full.frame.assign(copy=full.frame["treated"].astype(float))
    collinear = estimate(
        Matched(same, (), 0.0, 0, 0, 0, 0), "score", ["copy"], baseline=True
    )
    assert collinear.effect is None
    assert collinear.reason == "treatment is collinear with the covariates"
    # A constant covariate is just dropped.
    flat = estimate(
        Matched(same.assign(k=3.0), (), 0.0, 0, 0, 0, 0), "score", ["k"], baseline=True
    )
    assert flat.effect is not None and flat.covariates_used == ()
    with pytest.raises(EvaluationError, match="score_pre"):
        estimate(
            Matched(same.drop(columns="score_pre"), (), 0, 0, 0, 0, 0),
            "score",
            [],
            baseline=True,
        )


def test_binary_outcome_is_a_linear_probability_model() -> None:
    rng = np.random.default_rng(12)
    frame = synth(12, strata=20, selection=0.0)
    p = np.where(frame["treated"], 0.55, 0.30)
    frame["passed_post"] = (rng.random(len(frame)) < p).astype(float)
    m = match(frame, ["z", "female"])
    result = estimate(m, "passed", ["z", "female"], baseline=False)
    assert result.effect is not None and result.ci_low is not None
    assert result.ci_high is not None
    assert result.ci_low < 0.25 < result.ci_high  # proportion points, not odds
    assert result.ci_low > 0 and result.ci_high < 1
    assert result.mean_treated_post is not None
    assert 0.4 < result.mean_treated_post < 0.7


# ---------------------------------------------------------------- dose and subgroups


def test_dose_bands_recover_effects_that_differ_by_design() -> None:
    m = match(synth(30, strata=30, per_stratum=80, selection=0.5), ["z", "female"])
    # Keep a multiple of 3 sets; the i-th treated row gets dose group i % 3, with
    # doses 1–10, 11–20 or 21–30 and a planted effect of 0, 0.5 or 1.0.
    sets = np.sort(m.frame["set_id"].unique())
    sets = sets[: len(sets) - len(sets) % 3]
    frame = m.frame.loc[m.frame["set_id"].isin(sets)].copy()
    i = np.searchsorted(sets, frame["set_id"].to_numpy())
    group = i % 3
    dose = 1 + 10 * group + (i // 3) % 10
    treated = frame["treated"].to_numpy()
    frame["dose"] = np.where(treated, dose, np.nan)
    frame["score_post"] += np.where(treated, 0.5 * group, 0.0)
    planted = Matched(frame, m.covariates, m.caliper_width, 0, 0, 0, 0)
    bands = dose_response(planted, "score", ["z", "female"], baseline=True, bands=3)
    labels = [label for label, _ in bands]
    assert labels == ["1–10 sessions", "11–20 sessions", "21–30 sessions"]
    for (_, result), truth in zip(bands, (0.0, 0.5, 1.0), strict=True):
        assert result.effect is not None and result.ci_low is not None
        assert result.ci_high is not None
        assert result.ci_low < truth < result.ci_high
        assert result.n_treated == len(sets) // 3
    effects = [r.effect for _, r in bands if r.effect is not None]
    assert len(effects) == 3 and effects == sorted(effects)
    # Every treated row is in exactly one band, with its own comparisons.
    treated_units = [u for _, r in bands for u in r.treated_units]
    assert sorted(treated_units) == sorted(frame.loc[treated, "unit"])
    compared = [u for _, r in bands for u in r.comparison_units]
    assert sorted(compared) == sorted(frame.loc[~treated, "unit"])


def test_tied_doses_collapse_bands() -> None:
    m = match(synth(31, strata=20), ["z"])
    treated = m.frame["treated"].to_numpy()

    def labels(dose: np.ndarray, bands: int) -> list[str]:
        dosed = Matched(
            m.frame.assign(dose=np.where(treated, dose, np.nan)), (), 0, 0, 0, 0, 0
        )
        return [
            label
            for label, _ in dose_response(
                dosed, "score", ["z"], baseline=True, bands=bands
            )
        ]

    assert labels(np.full(len(treated), 8.0), 4) == ["8 sessions"]
    # 60% of treated rows at dose 2 fill the first band and part of the second;
    # the tie keeps them together, so only two bands remain.
    position = np.cumsum(treated) / treated.sum()
    assert labels(np.where(position <= 0.6, 2.0, 6.5), 3) == [
        "2 sessions",
        "6.5 sessions",
    ]


def test_subgroups_split_sets_by_the_treated_row() -> None:
    frame = synth(40, strata=30, per_stratum=80, selection=0.0)
    frame["sex"] = np.where(frame["female"] == 1.0, "F", "M")
    frame["score_post"] += np.where(frame["treated"] & (frame["sex"] == "F"), 0.8, 0.0)
    m = match(frame, ["z"])
    groups = subgroups(m, "score", ["z"], "sex", baseline=True)
    assert [label for label, _ in groups] == ["F", "M"]
    by = dict(groups)
    for label, truth in (("F", 0.8), ("M", 0.0)):
        result = by[label]
        assert result.ci_low is not None and result.ci_high is not None
        assert result.ci_low < truth < result.ci_high
        sets = m.frame.loc[m.frame["treated"] & (m.frame["sex"] == label), "set_id"]
        members = m.frame.loc[m.frame["set_id"].isin(sets)]
        assert result.comparison_units == tuple(
            sorted(members.loc[~members["treated"], "unit"])
        )
    # Comparisons follow their set even when their own sex differs.
    assert any(
        m.frame.loc[m.frame["unit"].isin(by["F"].comparison_units), "sex"] == "M"
    )


# ---------------------------------------------------------------------- calibration


@pytest.mark.slow
def test_simulation_calibration_of_did_with_matching() -> None:
    reps = 200
    # Small matrices: one BLAS thread is faster, and far faster on a busy machine.
    with threadpool_limits(limits=1):
        rejected, covered = _calibration_counts(reps)
    assert rejected / reps <= 0.08  # 0.055 with these seeds
    assert covered / reps >= 0.90  # 0.95 with these seeds


def _calibration_counts(reps: int) -> tuple[int, int]:
    """How often a 95% CI excludes a zero effect, and covers an effect of 0.4."""
    rejected = covered = 0
    for seed in range(reps):
        null = estimate(
            match(synth(seed), ["z", "female"]), "score", ["z"], baseline=True
        )
        assert null.ci_low is not None and null.ci_high is not None
        rejected += null.ci_low > 0 or null.ci_high < 0
        frame = synth(10_000 + seed, effect=0.4)
        real = estimate(match(frame, ["z", "female"]), "score", ["z"], baseline=True)
        assert real.ci_low is not None and real.ci_high is not None
        covered += real.ci_low <= 0.4 <= real.ci_high
    return rejected, covered


def test_no_warnings_on_awkward_input() -> None:
    frame = synth(50)
    frame.loc[frame.index % 5 == 0, "z"] = np.nan
    frame["empty"] = np.nan  # missing everywhere: imputed to a constant, dropped
    frame["flat"] = 1.0
    frame["rare"] = (np.arange(len(frame)) == 0).astype(float)
    covariates = ["z", "female", "empty", "flat", "rare"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = match(frame, covariates)
        balance(frame, covariates)
        balance(m.frame, covariates, weights="weight")
        estimate(m, "score", covariates, baseline=True)
        estimate(m, "score", covariates, baseline=False)
        dose_response(m, "score", covariates, baseline=True, bands=5)
        subgroups(m, "score", covariates, "female", baseline=False)
        # A subgroup too small to estimate still reports who was in it.
        small = subgroups(m, "score", [], "unit", baseline=True)
        assert all(r.effect is None for _, r in small)
        assert isinstance(small[0][1], Estimate)


def test_the_matching_ratio_comes_down_when_comparison_students_run_out() -> None:
    from backbone.measures.outcomes import matching_ratio

    # 2:1 asked: 30 participants need 60 comparison students
    assert matching_ratio(2, 30, 60) == 2
    assert matching_ratio(2, 30, 59) == 1
    assert matching_ratio(3, 10, 25) == 2
    assert matching_ratio(2, 30, 10) == 1  # 1:1 at least (the caliper decides)


def _study(x_missing: bool = False) -> pd.DataFrame:
    """One school; the same prior scores (1, 2, 3) in both arms. Program 12, 15, 17
    (mean 44/3), control 10, 12, 16 (38/3): a difference of 2.00."""
    return pd.DataFrame(
        {
            "unit": [f"p{i}" for i in range(6)],
            "school_id": ["s1"] * 6,
            "treated": [True] * 3 + [False] * 3,
            "score_post": [12.0, 15.0, 17.0, 10.0, 12.0, 16.0],
            "score_pre": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0],
            "female": [1.0, 0.0, np.nan if x_missing else 1.0, 0.0, 1.0, 0.0],
        }
    )


def test_a_randomized_estimate_adjusted_for_a_balanced_prior_is_the_same_and_sharper() -> (
    None
):
    plain = randomized(_study(), "score", block="school_id")
    adjusted = randomized(
        _study(), "score", block="school_id", covariates=["score_pre"]
    )
    assert plain.effect == pytest.approx(2.0) == adjusted.effect
    assert plain.design == "randomized, within blocks"
    assert adjusted.design == "randomized, within blocks, covariate-adjusted"
    assert adjusted.covariates_used == ("score_pre",)
    assert adjusted.se is not None and plain.se is not None
    assert adjusted.se < plain.se  # the prior explains most of the spread


def test_a_covariate_some_student_lacks_is_left_out_not_the_student() -> None:
    est = randomized(
        _study(x_missing=True),
        "score",
        block="school_id",
        covariates=["score_pre", "female", "not_a_column"],
    )
    assert est.covariates_used == ("score_pre",)
    assert est.n_treated == 3 and est.n_comparison == 3
