"""Differentially private group counts with OpenDP, for optional DP releases.

One call releases one noisy count per group and spends the whole ``epsilon`` (and
``delta``) given; keeping the per-agreement ε ledger is the caller's job. The
input has one row per person (the privacy unit is one row).

Two ways to say which groups exist:

- **Public keys** (``keys`` given): the full list of group-key combinations is
  public, e.g. every school × grade on the state directory. OpenDP joins the
  noisy counts onto that list (``with_keys``), so every key gets a row, including
  groups absent from the data, and the presence of a group leaks nothing. This
  is stronger than declaring the data's own keys invariant (``Margin(invariant=
  "keys")``), which leaves out empty groups and so reveals which exist. Counts use
  integer Laplace noise; ``delta`` must be 0. No margin is declared: counts need
  no ``max_length`` (only sums and means do).
- **Private keys** (``keys`` None, ``delta > 0``): OpenDP releases only groups
  whose noisy count clears a threshold it chooses from ε and δ (≈16 at ε=1,
  δ=1e-7), so small groups are censored like suppressed cells.

Do not release DP counts and suppressed counts of the same universe without
accounting for both: the exact table leaks through the suppression.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa

__all__ = ["DpResult", "dp_counts"]

ALPHA = 0.05  # accuracy is reported at 95% confidence


@dataclass(frozen=True, eq=False)
class DpResult:
    """A DP release of group counts.

    ``table`` has the ``by`` columns and ``count`` (int64; may be negative with
    public keys, since noise is not clamped). ``accuracy`` is the 95% half-width:
    each noisy count is within ±accuracy of the truth with 95% probability.
    ``threshold`` is OpenDP's censoring threshold with private keys, else None.
    """

    table: pa.Table
    epsilon: float
    delta: float
    accuracy: float
    scale: float
    threshold: int | None


def _opendp() -> Any:
    import opendp.prelude as dp

    dp.enable_features("contrib")
    return dp


def dp_counts(
    frame: pa.Table,
    by: Sequence[str],
    keys: pa.Table | None,
    epsilon: float,
    delta: float = 0.0,
) -> DpResult:
    """Release a noisy count per group of ``by``, spending ``epsilon`` (and ``delta``).

    ``keys`` is the public list of group-key combinations (columns exactly ``by``,
    no duplicates); without it, group keys are private and ``delta > 0`` is needed.
    """
    by = list(by)
    if not by:
        raise ValueError("Give at least one column to group by.")
    missing = [c for c in by if c not in frame.column_names]
    if missing:
        raise ValueError(f"The frame has no column {missing[0]!r} to group by.")
    if not epsilon > 0:
        raise ValueError("epsilon must be positive.")
    if not 0 <= delta < 1:
        raise ValueError("delta must be in [0, 1).")
    if keys is not None and delta != 0:
        raise ValueError("With public keys the counts are pure ε-DP; pass delta=0.")
    if keys is None and delta == 0:
        raise ValueError(
            "Without public keys OpenDP must hide which groups exist, which needs "
            "delta > 0 (e.g. 1e-7); or pass the public list of keys."
        )

    dp = _opendp()
    data = pl.from_arrow(frame.select(by))
    assert isinstance(data, pl.DataFrame)
    context = dp.Context.compositor(
        data=data.lazy(),
        privacy_unit=dp.unit_of(contributions=1),
        privacy_loss=dp.loss_of(epsilon=epsilon, delta=delta or None),
        split_evenly_over=1,
    )
    # signed=True: noise is added to the exact count without clamping at zero, so
    # counts stay unbiased; saying so also avoids OpenDP's FutureWarning about
    # the default changing
    query = context.query().group_by(by).agg(dp.len(signed=True).alias("count"))
    if keys is not None:
        public = _public_keys(keys, by, data.schema)
        with warnings.catch_warnings():
            # a large key set is only a memory note; everything here is in memory
            warnings.filterwarnings("ignore", message="Large key-set")
            query = query.with_keys(public)
    # Resolving searches for the noise scale (and threshold): do it once, then
    # summarise and release that same measurement through the context.
    from opendp.accuracy import summarize_polars_measurement

    measurement = query.resolve()
    summary = summarize_polars_measurement(measurement, ALPHA)
    released = context(measurement).collect().sort(by)
    threshold = int(summary["threshold"][0]) if "threshold" in summary.columns else None
    table = released.to_arrow()
    return DpResult(
        table=table,
        epsilon=float(epsilon),
        delta=float(delta),
        accuracy=float(summary["accuracy"][0]),
        scale=float(summary["scale"][0]),
        threshold=threshold,
    )


def _public_keys(keys: pa.Table, by: list[str], schema: pl.Schema) -> pl.DataFrame:
    if sorted(keys.column_names) != sorted(by):
        raise ValueError(
            f"The public keys must have exactly the columns {by}; got "
            f"{keys.column_names}."
        )
    public = pl.from_arrow(keys.select(by))
    assert isinstance(public, pl.DataFrame)
    if public.height == 0:
        raise ValueError("The public key list is empty.")
    if public.is_duplicated().any():
        # a repeated key would release the same group twice and spend ε twice
        raise ValueError("The public key list repeats a key; give each key once.")
    try:
        return public.cast({c: schema[c] for c in by})
    except pl.exceptions.PolarsError as err:
        raise ValueError(
            f"The public keys do not match the data's column types: {err}"
        ) from err
