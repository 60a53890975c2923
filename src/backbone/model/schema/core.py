"""The machinery every schema module declares its tables with: :class:`Column`,
:class:`Table`, the column helpers, and the DDL builders (pure functions)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = [
    "ID_SEQUENCES",
    "SCHEMAS",
    "Column",
    "IdSequence",
    "Table",
    "analytic_table",
    "create_sequence_sql",
    "create_table_sql",
]

SCHEMAS = ("ops", "ref", "identity", "analytic")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool = True
    descriptor: str | None = None
    """Ed-Fi descriptor whose code values this column holds (canonical, not local)."""
    doc: str = ""
    default: str | None = None
    """SQL default expression, where a migration gave the column one."""


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    doc: str = ""
    edfi: str | None = None
    """The Ed-Fi entity this table mirrors, where there is one."""
    person_level: bool = field(default=False)
    """Rows describe one person; reads go through the policy layer."""
    derived: bool = field(default=False)
    """Computed by the warehouse from partners' facts, never submitted."""

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"

    def column(self, name: str) -> Column:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(f"{self.qualified_name} has no column {name!r}")


def create_table_sql(table: Table, *, enforce_key: bool = True) -> str:
    """``CREATE TABLE`` for one table (DuckDB dialect; sqlglot translates it).

    ``enforce_key=False`` leaves the natural key to validation: bulk loads into a
    table with a large composite primary-key index are many times slower.
    """
    lines = []
    for column in table.columns:
        null = "" if column.nullable else " NOT NULL"
        default = "" if column.default is None else f" DEFAULT {column.default}"
        lines.append(f"    {column.name} {column.type}{null}{default}")
    if table.primary_key and enforce_key:
        lines.append(f"    PRIMARY KEY ({', '.join(table.primary_key)})")
    body = ",\n".join(lines)
    return f"CREATE TABLE {table.qualified_name} (\n{body}\n)"


def _c(
    name: str,
    type_: str,
    *,
    required: bool = False,
    descriptor: str | None = None,
    doc: str = "",
    default: str | None = None,
) -> Column:
    return Column(
        name,
        type_,
        nullable=not required,
        descriptor=descriptor,
        doc=doc,
        default=default,
    )


def _lineage() -> tuple[Column, ...]:
    return (
        _c("provider_partner_id", "VARCHAR", required=True, doc="who sent the row"),
        _c("submission_id", "BIGINT", required=True, doc="the submission it came from"),
    )


def _student() -> Column:
    return _c(
        "student_local_id",
        "VARCHAR",
        required=True,
        doc="the provider's own id for the person; see identity.record_person",
    )


def analytic_table(
    name: str,
    columns: Iterable[Column],
    primary_key: Iterable[str],
    *,
    edfi: str | None = None,
    doc: str = "",
    person_level: bool = True,
    derived: bool = False,
) -> Table:
    """An analytic table: lineage columns first, then the facts."""
    lead = (*_lineage()[:1], _student()) if person_level else _lineage()[:1]
    return Table(
        "analytic",
        name,
        (*lead, *columns, _lineage()[1]),
        ("provider_partner_id", *primary_key),
        doc=doc,
        edfi=edfi,
        person_level=person_level,
        derived=derived,
    )


@dataclass(frozen=True)
class IdSequence:
    """The sequence that numbers one table's id column. A sequence never hands out a
    number twice, even after the row is deleted or its transaction rolls back, and
    two writers can never draw the same one (``max() + 1`` could do all three)."""

    name: str
    """qualified, ``schema.name``: what :func:`backbone.engines.duckdb.next_id` takes"""
    table: str
    column: str


ID_SEQUENCES = (
    IdSequence("ops.submission_id_seq", "ops.submission", "submission_id"),
    IdSequence("identity.link_run_id_seq", "identity.link_run", "run_id"),
    IdSequence("identity.person_id_seq", "identity.person", "person_id"),
    IdSequence("gov.commitment_id_seq", "gov.commitment", "commitment_id"),
    IdSequence("gov.release_id_seq", "gov.release", "release_id"),
    IdSequence("gov.purge_id_seq", "gov.purge", "purge_id"),
    IdSequence("gov.risk_model_id_seq", "gov.risk_model", "model_id"),
)


def create_sequence_sql(sequence: IdSequence, start: int = 1) -> str:
    """``CREATE SEQUENCE`` for one id sequence, starting at ``start``."""
    return f"CREATE SEQUENCE {sequence.name} START WITH {int(start)}"
