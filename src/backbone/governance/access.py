"""Governed access: the only way person-level rows leave the warehouse.

``wh.access(principal, purpose)`` gives an :class:`Access` for one principal and one
declared purpose on one day. Each read asks the policy layer for a grant per
provider, materializes only the permitted rows and fields (query-layer enforcement:
DuckDB has no row-level security, so nothing else is ever handed out), and appends
an audit entry naming the agreement versions relied on, whatever the outcome.
Aggregates go on to the release gate; :meth:`Access.session` hands analysts a fresh
in-memory DuckDB holding only their permitted rows, with file access switched off
and the configuration locked.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from backbone.engines import (
    Connection,
    arrow,
    create_table_as,
    registered,
    scratch,
)
from backbone.engines.duckdb import set_option
from backbone.engines.sql import ident
from backbone.errors import NotFoundError, PolicyDenied, UserError
from backbone.governance.audit import AuditEntry, AuditLog
from backbone.governance.extracts import (
    ExtractProtection,
    new_seed,
    protect_extract,
    shuffled,
)
from backbone.governance.policy import (
    ENTITIES,
    Grant,
    Refusal,
    decide_grants,
    in_force_versions,
    permitted_rows_sql,
    pseudonym_sql,
    subject_columns,
)
from backbone.governance.principals import Principal, Role
from backbone.model.calendar import school_year_of
from backbone.partners.agreements.decide import VersionView
from backbone.partners.agreements.document import AccessLevel
from backbone.partners.agreements.inforce import VersionState
from backbone.session import Session
from backbone.spreadsheet import RISKY_START

if TYPE_CHECKING:
    from backbone.governance.release import (
        Derived,
        Release,
        ReleaseGate,
        StatisticsRelease,
    )

__all__ = [
    "Access",
    "Export",
    "ExportFormat",
    "Keys",
    "Materialized",
    "export_bytes",
    "locked_connection",
]


class Keys:
    """The warehouse's own secret, from which per-use keys are derived."""

    def __init__(self, master: bytes) -> None:
        self._master = master

    @property
    def secret(self) -> bytes:
        """The warehouse's secret itself, for a key derived outside this class
        (the audit checkpoints' signing key)."""
        return self._master

    def derive(self, use: str) -> str:
        return hmac.new(self._master, use.encode("utf-8"), hashlib.sha256).hexdigest()

    def pseudonym_key(self, recipient: str) -> str:
        return self.derive(f"pseudonym:{recipient}")


def locked_connection(tables: dict[str, pa.Table]) -> Connection:
    """A fresh in-memory DuckDB holding only ``tables``, unable to read or write
    files and unable to change that."""
    con = scratch()
    for name, table in tables.items():
        source = f"_{name}_arrow"
        with registered(con, **{source: table}):
            create_table_as(con, ident(name), f"SELECT * FROM {ident(source)}")
    set_option(con, "enable_external_access", False)
    set_option(con, "lock_configuration", True)
    return con


@dataclass(frozen=True)
class Materialized:
    table: pa.Table
    grants: tuple[Grant, ...]
    refusals: tuple[Refusal, ...]
    rows_by_provider: dict[str, int] = field(default_factory=dict)
    """How many of the rows each provider's grant gave (for the audit log)."""
    total_rows: int | None = None
    """the rows of all pages, when this is one page of them"""
    protection: ExtractProtection | None = None
    """what was done to its pseudonymous rows before they left (k, coarsening)"""

    @property
    def agreements(self) -> tuple[str, ...]:
        return tuple(sorted({g.agreement for g in self.grants if g.agreement}))

    @property
    def providers(self) -> tuple[str, ...]:
        return tuple(sorted({g.provider for g in self.grants}))


def _page(m: Materialized, offset: int, limit: int) -> Materialized:
    """Rows ``offset`` to ``offset + limit`` of ``m`` (already in its release's
    order, each tagged with its provider), with the providers' counts of those
    rows only."""
    table = m.table
    shown = table.slice(offset, max(0, min(limit, table.num_rows - offset)))
    return Materialized(
        shown,
        m.grants,
        m.refusals,
        _recount(shown, PROVIDER_TAG),
        table.num_rows,
        m.protection,
    )


# each released row's provider, while it is counted (never leaves)
PROVIDER_TAG = "_backbone_provider"


def _constant(value: str, rows: int) -> pa.DictionaryArray:
    """``value`` on each of ``rows`` rows, without a Python object per row."""
    indices = pa.array(np.zeros(rows, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, pa.array([value], pa.string()))


class ExportFormat(StrEnum):
    """The file formats permitted rows are exported in."""

    csv = "csv"
    parquet = "parquet"
    xlsx = "xlsx"

    @classmethod
    def of(cls, name: str | PurePath) -> ExportFormat:
        """The format a file name asks for by its suffix (``.csv``, ``.parquet``)."""
        suffix = PurePath(name).suffix.lower().lstrip(".")
        try:
            return cls(suffix)
        except ValueError:
            raise UserError(
                f"{name}: export to a .csv, .xlsx or .parquet file."
            ) from None


def export_bytes(table: pa.Table, format: ExportFormat) -> bytes:
    """The bytes of ``table`` written as a ``format`` file."""
    if format is ExportFormat.xlsx:
        return _xlsx_bytes(table)
    sink = pa.BufferOutputStream()
    if format is ExportFormat.csv:
        pacsv.write_csv(_formula_safe(table), sink)
    else:
        pq.write_table(table, sink)
    return bytes(sink.getvalue().to_pybytes())


def _formula_safe(table: pa.Table) -> pa.Table:
    """Text a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a tab
    or carriage return first) quoted with a leading apostrophe, column by column
    (no loop over rows); numbers stay numbers."""
    import pyarrow.compute as pc

    columns = []
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            risky = pc.match_substring_regex(column, RISKY_START)
            quoted = pc.binary_join_element_wise(pa.scalar("'"), column, "")
            column = pc.if_else(pc.fill_null(risky, False), quoted, column)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _xlsx_bytes(table: pa.Table) -> bytes:
    """One sheet, a header row, then the rows; text never becomes a formula or link."""
    import io

    import xlsxwriter  # loads only for a spreadsheet

    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(
        buffer,
        {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False},
    )
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, table.column_names)
    for number, row in enumerate(table.to_pylist(), start=1):
        sheet.write_row(number, 0, [_cell(v) for v in row.values()])
    book.close()
    return buffer.getvalue()


def _cell(value: object) -> object:
    return (
        value if value is None or isinstance(value, (int, float, str)) else str(value)
    )


@dataclass(frozen=True)
class Export:
    """An export: the file's bytes, and the permitted rows they hold."""

    content: bytes
    format: ExportFormat
    materialized: Materialized

    @property
    def table(self) -> pa.Table:
        return self.materialized.table

    @property
    def agreements(self) -> tuple[str, ...]:
        return self.materialized.agreements


class Access:
    """What one principal may do, for one purpose, on one day."""

    def __init__(
        self,
        *,
        con: Connection,
        views: Callable[[], list[VersionView]],
        audit: AuditLog,
        gate: ReleaseGate,
        keys: Keys,
        principal: Principal,
        purpose: str,
        on: date,
        school_year_start_month: int,
        min_cell_size: int,
    ) -> None:
        if not purpose or not purpose.strip():
            raise UserError("name the purpose of this read (--purpose).")
        self._con = con
        self._load_views = views
        self._cached_views: list[VersionView] | None = None
        self._audit = audit
        self._gate = gate
        self._keys = keys
        self.principal = principal
        self.purpose = purpose.strip()
        self.on = on
        self._school_year = school_year_of(on, school_year_start_month)
        self.school_year_start_month = school_year_start_month
        """The warehouse's ``calendar.school_year_start_month``."""
        self._min_cell = min_cell_size

    # --- decisions ---------------------------------------------------------------

    def _views(self) -> list[VersionView]:
        """The agreement versions, parsed once per access (one request, one day)
        rather than once per provider asked about."""
        if self._cached_views is None:
            self._cached_views = self._load_views()
        return self._cached_views

    def within(self, s: Session) -> Access:
        """This access inside a unit of work that stores what it derives from the
        rows it reads (the risk model): reads see the session's transaction, their
        audit entries are written in it, and a refusal is audited after its
        rollback. The release gate keeps its own ledger: release counts through an
        access outside a session."""
        if s.actor().user_id != self.principal.user_id:
            raise UserError(
                f"this access is {self.principal.user_id}'s, not {s.actor().user_id}'s."
            )
        bound = copy.copy(self)
        bound._enter(s)
        return bound

    def _enter(self, s: Session) -> None:
        self._con = s.con

    def _write(self, entry: AuditEntry) -> None:
        # inside a unit of work the log writes it in the unit's transaction, and
        # writes it again should the unit roll back (see AuditLog.append)
        self._audit.append(entry)

    def _deny(self, action: str, what: str, reason: str, **detail: Any) -> PolicyDenied:
        self._write(
            AuditEntry(
                action,
                self.principal.user_id,
                decision="deny",
                reason=reason,
                actor_partner=self.principal.partner_id,
                purpose=self.purpose,
                what=what,
                providers=tuple(detail.pop("providers", ())),
                agreements=tuple(detail.pop("agreements", ())),
                detail=detail,
            )
        )
        return PolicyDenied(f"{what}: {reason}")

    def _providers(self, entity: str) -> list[str]:
        provider_col, _ = subject_columns(entity)
        table = ENTITIES[entity].qualified_name
        return [
            r[0]
            for r in self._con.execute(
                f"SELECT DISTINCT {provider_col} FROM {table} ORDER BY 1"
            ).fetchall()
        ]

    def grants(
        self,
        entity: str,
        operation: str,
        providers: Sequence[str] | None = None,
        *,
        link_with: str | None = None,
    ) -> list[Grant | Refusal]:
        """The policy's answer per provider, without reading anything."""
        if entity not in ENTITIES:
            raise NotFoundError(
                f"unknown entity {entity!r}; use one of {', '.join(sorted(ENTITIES))}."
            )
        return decide_grants(
            user_partner=self.principal.partner_id,
            role=self.principal.role.value,
            is_steward=self.principal.is_steward,
            pseudonymous_only=self.principal.role is Role.researcher,
            entity=entity,
            purpose=self.purpose,
            operation=operation,
            on=self.on,
            providers=list(providers) if providers else self._providers(entity),
            views=self._views(),
            default_min_cell_size=self._min_cell,
            link_with=link_with,
        )

    def _admit(
        self,
        action: str,
        entity: str,
        operation: str,
        providers: Sequence[str] | None,
    ) -> tuple[list[Grant], list[Refusal]]:
        what = f"{operation} {entity}" + (
            f" of {', '.join(providers)}" if providers else ""
        )
        lapsed = self.principal.lapsed(self.on)
        if lapsed:
            raise self._deny(action, what, lapsed)
        if not self.principal.may(operation):
            raise self._deny(
                action,
                what,
                f"role {self.principal.role.value} may not {operation.replace('_', ' ')}",
            )
        answers = self.grants(entity, operation, providers)
        grants = [a for a in answers if isinstance(a, Grant)]
        refusals = [a for a in answers if isinstance(a, Refusal)]
        if not grants:
            reasons = "; ".join(f"{r.provider}: {r.reason}" for r in refusals)
            raise self._deny(
                action,
                what,
                reasons or "no partner has sent such data",
                providers=[r.provider for r in refusals],
                agreements=[r.agreement for r in refusals if r.agreement],
            )
        return grants, refusals

    def require_steward(self, operation: str, what: str) -> None:
        """Steward-only work (linking, reviewing, evaluating): refuse anyone else."""
        lapsed = self.principal.lapsed(self.on)
        if lapsed:
            raise self._deny("read", what, lapsed)
        if not (self.principal.is_steward and self.principal.may(operation)):
            raise self._deny(
                "read",
                what,
                f"only the steward's admins and analysts may; {self.principal.user_id} "
                f"is {self.principal.role.value} of {self.principal.partner_id}",
            )

    def require_some(self, entity: str, operation: str, what: str) -> None:
        """Refuse at once (audited) when no provider's agreement in force grants
        ``operation`` on ``entity`` for this purpose: for a door that would
        otherwise start costly work for someone who may see none of it."""
        lapsed = self.principal.lapsed(self.on)
        if lapsed:
            raise self._deny("read", what, lapsed)
        answers = self.grants(entity, operation)
        if not any(isinstance(a, Grant) for a in answers):
            reasons = sorted({a.reason for a in answers if isinstance(a, Refusal)})
            raise self._deny(
                "read",
                what,
                "; ".join(reasons[:3]) or f"no agreement gives {entity} for this",
            )

    def require_own_or_steward_aggregate(self, partner: str, what: str) -> None:
        """Aggregates about a partner's own undertaking (a funder's initiative):
        for that partner's users and the steward. The data under it still passes
        each provider's agreement and the release gate."""
        lapsed = self.principal.lapsed(self.on)
        allowed = self.principal.may("aggregate") and (
            self.principal.is_steward or self.principal.partner_id == partner
        )
        if lapsed or not allowed:
            raise self._deny(
                "release",
                what,
                lapsed
                or f"only {partner}'s own users and the steward may; "
                f"{self.principal.user_id} is {self.principal.role.value} of "
                f"{self.principal.partner_id}",
            )

    def submission_scope(self) -> str | None:
        """Whose submissions (file names, dates, counts) the principal may list:
        ``None`` for the steward (everyone's), its own partner for a partner's
        uploaders and analysts; anyone else is refused, and the refusal audited."""
        lapsed = self.principal.lapsed(self.on)
        if not lapsed and self.principal.is_steward:
            return None
        if not lapsed and self.principal.role in (
            Role.partner_uploader,
            Role.partner_analyst,
        ):
            return self.principal.partner_id
        raise self._deny(
            "read",
            "the list of submissions",
            lapsed or "only a partner's own users and the steward may",
        )

    def own_or_steward(
        self, partner: str, what: str, *, rows: int | None = None
    ) -> None:
        """Rows a partner sent that never entered the warehouse (its quarantine, its
        validation reports): for that partner's own users and the steward."""
        lapsed = self.principal.lapsed(self.on)
        own = self.principal.partner_id == partner and self.principal.role in (
            Role.partner_uploader,
            Role.partner_analyst,
        )
        steward = (
            self.principal.is_steward
            and self.principal.may("row_level_view")
            and self._receives_from(partner)
        )
        if lapsed or not (own or steward):
            raise self._deny(
                "read",
                what,
                lapsed
                or f"only {partner}'s own users, and the steward while an agreement "
                f"of {partner}'s in force names it, may",
                providers=[partner],
            )
        self.log("read", what, providers=[partner], rows=rows)

    def _link_answers(self, left: str, right: str) -> list[Grant | Refusal]:
        out: list[Grant | Refusal] = []
        for provider, other in ((left, right), (right, left)):
            out += self.grants("partner_record", "link", [provider], link_with=other)
        return out

    def link_refusals(self, left: str, right: str) -> list[Refusal]:
        """Why the principal may not link ``left``'s records with ``right``'s (each
        provider's agreement must allow linking with the other), or nothing."""
        return [a for a in self._link_answers(left, right) if isinstance(a, Refusal)]

    def _receives_from(self, provider: str) -> bool:
        """Whether an agreement of ``provider`` in force today names the
        principal's partner as a recipient."""
        return any(
            VersionState(v, self.on).applies
            and any(
                r.partner == self.principal.partner_id for r in v.document.recipients
            )
            for v in in_force_versions(self._views(), provider, self.on)
        )

    def require(
        self, entity: str, operation: str, providers: Sequence[str], *, what: str
    ) -> tuple[Grant, ...]:
        """All of ``providers`` must grant ``operation``, or the whole request is
        refused (e.g. showing two records side by side for clerical review; for
        ``link``, each provider must allow linking with the other)."""
        if operation == "link" and len(providers) == 2:
            self.require_steward("link", what)
            answers = self._link_answers(providers[0], providers[1])
            refusals = [a for a in answers if isinstance(a, Refusal)]
            if refusals:
                raise self._deny(
                    "read",
                    what,
                    "; ".join(f"{r.provider}: {r.reason}" for r in refusals),
                    providers=sorted(providers),
                )
            return tuple(a for a in answers if isinstance(a, Grant))
        grants, refusals = self._admit("read", entity, operation, providers)
        if refusals:
            reasons = "; ".join(f"{r.provider}: {r.reason}" for r in refusals)
            raise self._deny(
                "read",
                what,
                reasons,
                providers=[r.provider for r in refusals],
            )
        return tuple(grants)

    # --- materializing -----------------------------------------------------------

    def _read(
        self,
        grant: Grant,
        fields: Sequence[str] | None,
        person_ids: Sequence[int] | None,
        where: Mapping[str, Sequence[object]] | None = None,
    ) -> pa.Table:
        identified = grant.access is AccessLevel.identified
        sql, params = permitted_rows_sql(
            grant,
            on=self.on,
            school_year=self._school_year,
            school_year_start_month=self.school_year_start_month,
            pseudonym_key=None
            if identified
            else self._keys.pseudonym_key(self.principal.partner_id),
        )
        if person_ids is not None:
            if not identified:
                return pa.table({})  # pseudonyms cannot be looked up by person id
            sql = f"SELECT * FROM ({sql}) WHERE list_contains(?, person_id)"
            params = [*params, list(person_ids)]
        if where:
            # columns come from the canonical model (checked by the caller)
            conds = [f"list_contains(?, CAST({column} AS VARCHAR))" for column in where]
            sql = f"SELECT * FROM ({sql}) WHERE {' AND '.join(conds)}"
            params = [*params, *([str(v) for v in vs] for vs in where.values())]
        if fields is not None:
            keep = [f for f in fields if f in grant.fields]
            key = "person_id" if identified else "pseudonym"
            sql = f"SELECT {', '.join([*keep, key])} FROM ({sql})"
        return arrow(self._con, sql, params)

    def _materialize(
        self,
        entity: str,
        *,
        operation: str = "row_level_view",
        providers: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
        person_ids: Sequence[int] | None = None,
        action: str = "read",
        where: Mapping[str, Sequence[object]] | None = None,
        tagged: bool = False,
    ) -> Materialized:
        grants, refusals = self._admit(action, entity, operation, providers)
        if where:
            bad = set(where) - {c.name for c in ENTITIES[entity].columns}
            if bad:
                raise UserError(f"{entity} has no field {sorted(bad)[0]!r}.")
            # a filter on a field a grant masks would reveal it: those rows go
            grants = [g for g in grants if set(where) <= set(g.fields)]
        if fields is not None:
            unknown = set(fields) - {c.name for c in ENTITIES[entity].columns}
            if unknown:
                raise UserError(
                    f"{entity} has no field {sorted(unknown)[0]!r}; its fields are "
                    f"{', '.join(c.name for c in ENTITIES[entity].columns)}."
                )
        read = [(g.provider, self._read(g, fields, person_ids, where)) for g in grants]
        counts: dict[str, int] = {}
        for provider, part in read:
            if part.num_rows:
                counts[provider] = counts.get(provider, 0) + part.num_rows
        if tagged:  # each row's provider, whatever the grants mask
            read = [
                (g, p.append_column(PROVIDER_TAG, _constant(g, p.num_rows)))
                for g, p in read
                if p.num_columns
            ]
        parts = [p for _, p in read if p.num_columns]
        table = (
            pa.concat_tables(parts, promote_options="default")
            if parts
            else pa.table({})
        )
        return Materialized(table, tuple(grants), tuple(refusals), counts)

    def _record(
        self,
        action: str,
        m: Materialized,
        what: str,
        *,
        destination: str | None = None,
        **detail: Any,
    ) -> None:
        """One entry per read: the providers whose rows were disclosed (with how
        many each), the agreement versions relied on, and what was refused."""
        by_provider = m.rows_by_provider
        disclosed = [g for g in m.grants if by_provider.get(g.provider)]
        self._write(
            AuditEntry(
                action,
                self.principal.user_id,
                actor_partner=self.principal.partner_id,
                purpose=self.purpose,
                agreements=tuple(
                    sorted({g.agreement for g in disclosed if g.agreement})
                ),
                providers=tuple(sorted(by_provider)),
                what=what,
                rows=m.table.num_rows,
                destination=destination,
                reason="; ".join(g.reason for g in m.grants),
                detail={
                    "on": self.on.isoformat(),
                    "rows_by_provider": by_provider,
                    "access": {g.provider: g.access.value for g in m.grants},
                    "refused": {r.provider: r.reason for r in m.refusals},
                    **detail,
                },
            )
        )

    # --- the doors' verbs --------------------------------------------------------

    def rows(
        self,
        entity: str,
        *,
        providers: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
        person_ids: Sequence[int] | None = None,
        export_to: str | None = None,
        page: tuple[int, int] | None = None,
        order_seed: int | None = None,
    ) -> Materialized:
        """Row-level view of an entity: only permitted rows and fields, the
        pseudonymous ones protected (:meth:`_released`), in a random order of
        this release (``order_seed``: the pages of one release share it). With
        ``export_to`` the rows are for a file there: exporting must be permitted
        (export_microdata) and the entry names where they go. With ``page``
        (offset, limit) only those rows, and only they are recorded as read."""
        if page is not None and order_seed is None:
            raise ValueError("the pages of one release share its order_seed")
        action = "export" if export_to else "read"
        m = self._released(
            entity,
            providers=providers,
            fields=fields,
            person_ids=person_ids,
            operation="export_microdata" if export_to else "row_level_view",
            action=action,
            seed=order_seed,
        )
        what = f"rows of {entity}"
        if page is not None:
            m = _page(m, *page)
            if m.table.num_rows != m.total_rows:  # a part: which rows
                first, last = page[0] + 1, page[0] + m.table.num_rows
                what += f" (rows {first:,} to {last:,} of {m.total_rows:,})"
        m = _only(m, fields)
        self._record(
            action,
            m,
            what,
            destination=export_to,
            persons=len(person_ids) if person_ids is not None else None,
            **_protection_detail(m),
        )
        return m

    def _released(
        self,
        entity: str,
        *,
        providers: Sequence[str] | None,
        fields: Sequence[str] | None,
        person_ids: Sequence[int] | None,
        operation: str,
        action: str,
        seed: int | None,
    ) -> Materialized:
        """The permitted rows as they may leave, in this release's random order,
        each tagged with its provider (:data:`PROVIDER_TAG`, to count each
        provider's rows; :func:`_only` keeps what was asked for). Pseudonymous
        rows, read or exported, are protected
        (:func:`~backbone.governance.extracts.protect_extract`, at the largest
        ``publication.extract_k`` of the agreements behind them) over every field
        the grants give, whatever was asked: a history asked for one field at a
        time must not slip through."""
        if fields is not None:  # names checked before anything is read
            known = {c.name for c in ENTITIES[entity].columns}
            unknown = sorted(set(fields) - known)
            if unknown:
                raise UserError(
                    f"{entity} has no field {unknown[0]!r}; its fields are "
                    f"{', '.join(c.name for c in ENTITIES[entity].columns)}."
                )
        m = self._materialize(
            entity,
            providers=providers,
            fields=None,  # every granted field: the whole history is judged
            person_ids=person_ids,
            operation=operation,
            action=action,
            tagged=True,
        )
        table, protection = m.table, None
        ks = [
            g.extract_k
            for g in m.grants
            if g.access is AccessLevel.pseudonymous
            and m.rows_by_provider.get(g.provider)
        ]
        if ks:
            table, protection = protect_extract(
                table,
                max(ks),
                self.school_year_start_month,
                self._keys.pseudonym_key(self.principal.partner_id),
            )
        counts = m.rows_by_provider
        if protection is not None and protection.withheld_rows:
            counts = _recount(table, PROVIDER_TAG)
        table = shuffled(table, new_seed() if seed is None else seed)
        return replace(m, table=table, protection=protection, rows_by_provider=counts)

    def export(
        self,
        entity: str,
        format: ExportFormat,
        *,
        destination: str,
        providers: Sequence[str] | None = None,
        fields: Sequence[str] | None = None,
    ) -> Export:
        """Permitted rows as the bytes of a CSV or Parquet file, for the door to put
        at ``destination`` (named in the audit entry: where the rows go)."""
        m = _only(
            self._released(
                entity,
                providers=providers,
                fields=fields,
                person_ids=None,
                operation="export_microdata",
                action="export",
                seed=None,
            ),
            fields,
        )
        content = export_bytes(m.table, format)
        self._record(
            "export",
            m,
            f"export of {entity}",
            destination=destination,
            **_protection_detail(m),
        )
        return Export(content, format, m)

    def session(
        self, entities: Sequence[str], *, operation: str = "row_level_view"
    ) -> Connection:
        """A locked in-memory database with one table per entity: the permitted
        rows only. Anything run there sees nothing else."""
        tables = {}
        for entity in entities:
            m = self._materialize(entity, operation=operation)
            self._record("read", m, f"session table {entity}")
            tables[entity] = m.table
        return locked_connection(tables)

    def count(
        self,
        entity: str,
        by: Sequence[str],
        *,
        where: Mapping[str, Sequence[object]] | None = None,
        epsilon: float | None = None,
    ) -> Release:
        """Persons per group, through the release gate (suppression, or
        differential privacy when ``epsilon`` is given)."""
        return self._gate.count(self, entity, list(by), dict(where or {}), epsilon)

    def rate(
        self,
        entity: str,
        by: Sequence[str],
        numerator: Mapping[str, Sequence[object]],
        *,
        where: Mapping[str, Sequence[object]] | None = None,
    ) -> Release:
        """Persons per group, those of them matching ``numerator``, and the rate,
        through the release gate (small counts and rates that would reveal them
        suppressed; rates top and bottom coded as the agreements say)."""
        return self._gate.count(
            self, entity, list(by), dict(where or {}), None, dict(numerator)
        )

    # --- measures: one person's rows from several providers -----------------------

    def person_rows(
        self,
        entity: str,
        *,
        what: str,
        where: Mapping[str, Sequence[object]] | None = None,
        export_to: str | None = None,
    ) -> Materialized:
        """Permitted rows to combine per person (a measure over several providers),
        each with a ``unit`` shared by one person's rows, and ``person_id`` where
        known. One audit entry. With ``export_to`` (a roster saved to a file) the
        agreements must permit exporting, and the entry names the file.

        Rows are combined at one access level: a reader who sees any provider
        identified gets only its identified rows, so no pseudonymous grant's row is
        ever attached to a known person; a reader with pseudonymous access only gets
        those rows, combined by its pseudonyms. Units of identified rows are keyed
        with a key made for this call, so they match nothing else the reader holds.
        """
        action = "export" if export_to else "read"
        m = self._materialize(
            entity,
            where=where,
            operation="export_microdata" if export_to else "row_level_view",
            action=action,
        )
        identified = [g for g in m.grants if g.access is AccessLevel.identified]
        used = identified or list(m.grants)
        if export_to and not identified and m.table.num_rows:
            # per-pseudonym measures with exact schools, grades and dates would
            # leave without the protection an extract of the rows gets
            raise self._deny(
                action,
                what,
                "a roster of pseudonyms is read here, not saved to a file: its "
                "histories are not protected as an extract's are; export the rows "
                "themselves (`backbone export rows`), which are",
            )
        left_out = [
            Refusal(
                g.provider,
                entity,
                "shared pseudonymously: not combined with persons you know",
                g.agreement,
            )
            for g in m.grants
            if g not in used
        ]
        key = secrets.token_hex(16)
        provider_col, local_col = subject_columns(entity)
        local = scratch()
        try:
            parts = []
            for grant in used:
                part = m.table.filter(
                    pc.equal(m.table.column(provider_col), grant.provider)
                )
                if not part.num_rows:
                    continue
                # drop the column the concatenation padded with nulls
                known = grant.access is AccessLevel.identified
                padded = "pseudonym" if known else "person_id"
                if padded in part.column_names:
                    part = part.drop_columns([padded])
                if known:
                    unit = pseudonym_sql("person_id", provider_col, local_col)
                    sql = f"SELECT *, {unit} AS unit FROM part"
                    params: list[object] = [key, key]
                else:
                    sql = (
                        "SELECT * EXCLUDE (pseudonym), pseudonym AS unit, "
                        "CAST(NULL AS BIGINT) AS person_id FROM part"
                    )
                    params = []
                with registered(local, part=part):
                    parts.append(arrow(local, sql, params))
        finally:
            local.close()
        table = (
            pa.concat_tables(parts, promote_options="default")
            if parts
            else pa.table({})
        )
        providers = {g.provider for g in used}
        out = Materialized(
            table,
            tuple(used),
            (*m.refusals, *left_out),
            {p: n for p, n in m.rows_by_provider.items() if p in providers},
        )
        self._record(action, out, what, destination=export_to)
        return out

    def count_derived(
        self,
        entity: str,
        columns: Sequence[str],
        derive_sql: str,
        by: Sequence[str],
        *,
        params: Sequence[object] = (),
        where: Mapping[str, Sequence[object]] | None = None,
        numerator: Mapping[str, Sequence[object]] | None = None,
        definition: Mapping[str, Any] | None = None,
        inputs: Mapping[str, tuple[str, Sequence[str]]] | None = None,
        optional: Collection[str] = (),
    ) -> Release:
        """Persons per group of a measure combined per person, through the
        release gate: ``derive_sql`` runs in a locked database over ``units``
        (each permitted row of ``entity``'s ``columns`` with its provider and the
        ledger's unit and record hashes) — or, with ``inputs``, over one such
        table per alias (alias → (entity, columns)), ``optional`` ones empty when
        not shared — and must return (provider, unit, record and the dimensions);
        only the protected counts come back."""
        return self._gate.count_derived(
            self,
            dict(inputs) if inputs else {"units": (entity, list(columns))},
            derive_sql,
            list(params),
            list(by),
            dict(where or {}),
            dict(numerator) if numerator is not None else None,
            dict(definition or {}),
            optional,
        )

    def statistics(
        self,
        inputs: Mapping[str, tuple[str, Sequence[str]]],
        derive: Callable[[Connection], Derived],
        *,
        definition: Mapping[str, Any],
        optional: Collection[str] = (),
    ) -> StatisticsRelease:
        """Statistics of groups of persons (means, effects), computed by
        ``derive`` over the permitted inputs in a locked database, through the
        release gate: each group is protected like a count, and a statistic of a
        suppressed group is not released."""
        return self._gate.statistics(self, inputs, derive, dict(definition), optional)

    def log(self, action: str, what: str, **detail: Any) -> None:
        """Record a use that is not a read of rows (e.g. a decision shown)."""
        self._write(
            AuditEntry(
                action,
                self.principal.user_id,
                actor_partner=self.principal.partner_id,
                purpose=self.purpose,
                what=what,
                providers=tuple(detail.pop("providers", ())),
                agreements=tuple(detail.pop("agreements", ())),
                rows=detail.pop("rows", None),
                detail=detail,
            )
        )


def _protection_detail(m: Materialized) -> dict[str, Any]:
    return {"protection": m.protection.as_detail()} if m.protection else {}


def _recount(table: pa.Table, provider_col: str) -> dict[str, int]:
    """Rows per provider left after persons were withheld."""
    if provider_col not in table.column_names or not table.num_rows:
        return {}
    counted = pc.value_counts(table.column(provider_col)).to_pylist()
    return {str(c["values"]): int(c["counts"]) for c in counted}


def _only(m: Materialized, fields: Sequence[str] | None) -> Materialized:
    """``m`` with the columns asked for (and the person key), in that order, and
    without its provider tag."""
    names = [c for c in m.table.column_names if c != PROVIDER_TAG]
    if fields is None:
        return replace(m, table=m.table.select(names))
    keep = [f for f in fields if f in names]
    keep += [k for k in ("person_id", "pseudonym") if k in names and k not in keep]
    return replace(m, table=m.table.select(keep))
