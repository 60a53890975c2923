"""The release gate: every aggregate leaves through here, and is remembered.

A release counts persons per group of one entity. The gate

1. reads the permitted rows through the policy layer (``aggregate`` operation) into
   a locked in-memory database, each person as a keyed hash (the *unit*);
2. forms the table's cells with their margins (1 or 2 dimensions) as sets of units;
3. takes every earlier release that counted any of the same units from the ledger,
   and groups all units into *atoms* by which cells, old and new, they belong to;
4. suppresses cells (primary: 0 < n < the strictest minimum cell size of the
   providers in the cell; complementary until a linear-programming interval audit
   of every small cell and atom is clean, earlier releases included, which stops
   differencing within a table and across releases);
5. records the release, its cells and their units in the ledger, and the audit log.

With ``epsilon`` the counts are released with differential privacy instead
(OpenDP), charged to each provider agreement's budget; a table once released one
way is never released the other way.

The package: :mod:`.cells` (shapes, cells, margins, the released table),
:mod:`.ledger` (recording releases, finding identical ones), :mod:`.suppression`,
:mod:`.privacy` (differential privacy and budgets), :mod:`.gate`
(:class:`ReleaseGate`, reading units and counting) and :mod:`.results`.
"""

from __future__ import annotations

from backbone.governance.release.cells import (
    MAX_DIMENSIONS,
    RECORD_HASH,
    TOTAL,
    cell_pairs_sql,
)
from backbone.governance.release.cells import _rates as _rates
from backbone.governance.release.gate import REFERENCE_TABLES, ReleaseGate
from backbone.governance.release.ledger import Protected
from backbone.governance.release.privacy import DP_DELTA
from backbone.governance.release.results import (
    Derived,
    PublishedStatistic,
    Release,
    Statistic,
    StatisticsRelease,
)

__all__ = [
    "DP_DELTA",
    "MAX_DIMENSIONS",
    "RECORD_HASH",
    "REFERENCE_TABLES",
    "TOTAL",
    "Derived",
    "Protected",
    "PublishedStatistic",
    "Release",
    "ReleaseGate",
    "Statistic",
    "StatisticsRelease",
    "cell_pairs_sql",
]
