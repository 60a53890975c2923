"""Releasing with differential privacy (:mod:`backbone.governance.dp`): noisy
counts, charged to each provider agreement's privacy budget."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from backbone.engines import arrow, register, scratch
from backbone.errors import UserError
from backbone.governance.policy import Grant
from backbone.governance.release.ledger import Ledger
from backbone.governance.release.results import Release

if TYPE_CHECKING:
    from backbone.governance.access import Access

__all__ = ["DP_DELTA", "DifferentialPrivacy"]

DP_DELTA = 1e-7


# the smallest epsilon a count table may spend: below it the noise (scale 1/ε)
# buries every count, and OpenDP's search for the scale can overflow
MIN_EPSILON = 0.001


class DifferentialPrivacy(Ledger):
    """The release gate's differential-privacy path."""

    def _dp(
        self,
        access: Access,
        definition: dict[str, Any],
        rows: pa.Table,
        grants: list[Grant],
        by: list[str],
        where: dict[str, Sequence[object]],
        epsilon: float,
    ) -> Release:
        from backbone.governance.dp import dp_counts

        what = (
            f"private count of {definition['entity']} by {', '.join(by) or 'nothing'}"
        )
        if not math.isfinite(epsilon) or epsilon < MIN_EPSILON:
            raise UserError(
                f"epsilon {epsilon:g} (asked with --epsilon, or the agreement's "
                f"epsilon_per_release): a count table spends at least {MIN_EPSILON:g}; "
                "a smaller one buries every count in noise of thousands."
            )
        if "suppression" in self._previous_modes(definition, grants):
            raise access._deny(
                "release",
                what,
                "this data was released with suppression; a noisy release of "
                "overlapping cells would let the two be combined",
            )
        for g in grants:
            if g.agreement is None:
                continue
            if g.dp_budget is None:
                raise access._deny(
                    "release",
                    what,
                    f"{g.agreement} sets no differential-privacy budget",
                    agreements=[g.agreement],
                )
            spent = self._spent(g.agreement.split("@")[0])
            if spent + epsilon > g.dp_budget + 1e-12:
                raise access._deny(
                    "release",
                    what,
                    f"{g.agreement}'s privacy budget is spent "
                    f"({spent:g} of {g.dp_budget:g}; this asks {epsilon:g})",
                    agreements=[g.agreement],
                )
        local = scratch()
        try:
            register(local, "rows_arrow", rows)
            filters, params = [], []
            for column, values in where.items():
                filters.append(f"list_contains(?, CAST({column} AS VARCHAR))")
                params.append([str(v) for v in values])
            cond = f"WHERE {' AND '.join(filters)}" if filters else ""
            dims = ", ".join(f"CAST({b} AS VARCHAR) AS {b}" for b in by)
            # each person is counted once, in one group, so one person's data
            # changes one count by one (the privacy unit)
            frame = arrow(
                local,
                f"SELECT {dims or '1 AS _all'} FROM (SELECT *, row_number() OVER "
                f"(PARTITION BY unit ORDER BY {', '.join(by) or 'unit'}) AS k "
                f"FROM rows_arrow {cond}) WHERE k = 1",
                params,
            )
        finally:
            local.close()
        from opendp.mod import OpenDPException

        try:
            result = dp_counts(frame, by or ["_all"], None, epsilon, DP_DELTA)
        except OpenDPException as exc:  # OpenDP's refusal (a noise scale too large)
            raise UserError(
                f"OpenDP cannot release these counts with epsilon {epsilon:g} "
                f"({str(exc).splitlines()[0][:200]}); ask with a larger epsilon."
            ) from None
        table = result.table
        release_id = self._record(
            access,
            definition,
            grants,
            "dp",
            [json.dumps(r) for r in table.select(by or ["_all"]).to_pylist()],
            np.zeros(table.num_rows, dtype=np.int64),
            np.zeros(table.num_rows, dtype=bool),
            np.zeros(table.num_rows, dtype=np.int64),
            None,
            epsilon,
        )
        for g in grants:
            if g.agreement is not None:
                self._con.execute(
                    "INSERT INTO gov.dp_spend VALUES (?, ?, ?, ?, ?)",
                    [
                        g.agreement.split("@")[0],
                        release_id,
                        epsilon,
                        DP_DELTA,
                        self._clock(),
                    ],
                )
        return Release(
            release_id,
            table,
            table.num_rows,
            0,
            tuple(sorted({g.agreement for g in grants if g.agreement})),
            "dp",
            epsilon,
            result.accuracy,
        )

    def _spent(self, agreement_id: str) -> float:
        row = self._con.execute(
            "SELECT coalesce(sum(epsilon), 0) FROM gov.dp_spend WHERE agreement = ?",
            [agreement_id],
        ).fetchone()
        return float(row[0]) if row else 0.0

    def budget(self, agreement_id: str) -> float:
        """Epsilon spent so far under an agreement."""
        return self._spent(agreement_id)
