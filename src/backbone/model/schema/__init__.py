"""The canonical model, declared as data.

Tables live in four DuckDB schemas so that identifying data stays apart from analysis:

* ``ops``       – the warehouse's own bookkeeping (meta, migrations, submissions);
* ``ref``       – partners, schools, programs, initiatives, institutions, descriptors;
* ``identity``  – what partners sent to identify a person, and the linked persons;
* ``analytic``  – the canonical, longitudinal facts (Ed-Fi names and natural keys).

Analytic rows name their subject by ``(provider_partner_id, student_local_id)``, the
partner's own id; ``identity.record_person`` maps that pair to a linked person, so
re-linking never rewrites facts. Every analytic row carries its provider and the
submission it came from (lineage). DDL is produced by pure functions below.
submission it came from (lineage). One module per schema declares its tables
(:mod:`.ops`, :mod:`.ref`, :mod:`.identity`, :mod:`.analytic`, :mod:`.gov`); the
shared machinery and the DDL builders (pure functions) are in :mod:`.core`. Here
they are put together in declaration order: migrations and tests rely on it.
"""

from __future__ import annotations

from backbone.model.schema.analytic import (
    ANALYTIC_TABLES,
    CONSENT_TABLES,
    DERIVED_FROM,
    INDICATOR_TABLES,
    PERIOD_SQL,
)
from backbone.model.schema.core import (
    ID_SEQUENCES,
    SCHEMAS,
    Column,
    IdSequence,
    Table,
    analytic_table,
    create_sequence_sql,
    create_table_sql,
)
from backbone.model.schema.gov import ACCESS_TABLES, MODEL_TABLES, RECORD_TABLES
from backbone.model.schema.identity import IDENTITY_TABLES, LINKAGE_TABLES
from backbone.model.schema.ops import INGEST_TABLES, OPS_TABLES
from backbone.model.schema.ref import (
    CALENDAR_TABLES,
    CONTACT_TABLES,
    PARTNER_KINDS,
    REF_TABLES,
)

__all__ = [
    "ALL_TABLES",
    "ANALYTIC_TABLES",
    "CALENDAR_TABLES",
    "DERIVED_FROM",
    "GOVERNANCE_TABLES",
    "IDENTITY_TABLES",
    "ID_SEQUENCES",
    "INGEST_TABLES",
    "LINKAGE_TABLES",
    "MEASURE_TABLES",
    "OPS_TABLES",
    "PARTNER_KINDS",
    "PERIOD_SQL",
    "POLICY_TABLES",
    "REF_TABLES",
    "SCHEMAS",
    "Column",
    "IdSequence",
    "Table",
    "analytic_table",
    "create_sequence_sql",
    "create_table_sql",
    "table",
]

# The tables each migration added, in declaration order.
# Added by migration 3: partners' contacts and the partnership's governance records.
GOVERNANCE_TABLES = (*CONTACT_TABLES, *RECORD_TABLES)
# Added by migration 6: who may read, what they read, what was released and purged.
POLICY_TABLES = (*ACCESS_TABLES, *CONSENT_TABLES)
# Added by migration 7: early-warning indicators and the risk model.
MEASURE_TABLES = (*INDICATOR_TABLES, *MODEL_TABLES)

ALL_TABLES: tuple[Table, ...] = (
    *OPS_TABLES,
    *REF_TABLES,
    *IDENTITY_TABLES,
    *ANALYTIC_TABLES,
    *CALENDAR_TABLES,
    *GOVERNANCE_TABLES,
    *INGEST_TABLES,
    *LINKAGE_TABLES,
    *POLICY_TABLES,
    *MEASURE_TABLES,
)


def table(qualified_name: str) -> Table:
    """Look a table up by ``schema.name``."""
    for t in ALL_TABLES:
        if t.qualified_name == qualified_name:
            return t
    raise KeyError(qualified_name)
