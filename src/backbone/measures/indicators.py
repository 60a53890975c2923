"""``wh.indicators``: compute early-warning indicators, and read them through the
policy layer as rosters, segments, tier transitions and trends.

Computing is the steward's derivation inside the warehouse (like linking): each
provider's facts become one component row per record and snapshot, stored with
the definitions version used. Reading is never direct: rosters combine the
component rows the reader may see (:meth:`Access.person_rows`), and every count
leaves through the release gate (:meth:`Access.count_derived`), combined per person
first so a student in two districts is one person in one cell.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

import pyarrow as pa
import pyarrow.compute as pc

from backbone import engines
from backbone.engines import Connection
from backbone.engines.duckdb import transaction
from backbone.engines.offload import EngineChoice, Runner, offloaded
from backbone.errors import Forbidden, UserError, WarehouseError
from backbone.governance.access import Access, locked_connection
from backbone.governance.audit import last_change
from backbone.governance.policy import Grant
from backbone.governance.release import Release
from backbone.measures.definitions import (
    Definitions,
    DefinitionsInUse,
    DefinitionStore,
)
from backbone.measures.indicator_sql import (
    COMPONENT_COLUMNS,
    TIERS,
    components_sql,
    derived_units_sql,
    persons_sql,
)
from backbone.model.calendar import (
    school_year_bounds,
    school_year_label,
    school_year_of,
)
from backbone.model.schema import DERIVED_FROM
from backbone.session import Session

__all__ = ["DIMENSIONS", "Indicators", "Roster", "Snapshot", "with_identifiers"]

ENTITY = "student_indicator"
# computing once more when the warehouse changed meanwhile; then it refuses
COMPUTE_ATTEMPTS = 2
# What segments may be cut by: person-level values after combining.
DIMENSIONS = (
    "district",
    "school_id",
    "grade_level",
    "school_year",
    "sex",
    "race",
    "hispanic_latino_ethnicity",
    "economic_disadvantaged",
    "english_learner",
    "disability",
    "in_program",
    "tier",
    "attendance_level",
    "chronic_days_level",
    "behavior_level",
    "suspension_level",
    "course_mark_level",
    "course_fail_level",
    "gpa_level",
    "on_track_9",
    "credits_behind",
)


@dataclass(frozen=True)
class Snapshot:
    school_year: int
    as_of: date
    definition_version: int
    records: int
    seconds: float = 0.0


@dataclass(frozen=True)
class Roster:
    snapshot: Snapshot
    table: pa.Table
    """One row per person: identifiers the reader may see, values, levels, tier."""
    providers: tuple[str, ...]
    refused: dict[str, str]
    history: pa.Table
    """The same persons' earlier year-end values (the risk score's history)."""


def roster_in_words(ranked: pa.Table) -> pa.Table:
    """A ranked roster (:meth:`backbone.measures.risk.Risk.ranked`) as every door
    shows and saves it: a person's number (``~`` and the start of the unit's code
    where the reader sees no person id), names where the reader sees them
    identified, school names rather than ids, the attendance rate and, with a
    trained model, the risk score and its top factors in words."""
    person = pc.if_else(
        pc.is_null(ranked["person_id"]),
        pc.binary_join_element_wise(
            "~", pc.utf8_slice_codeunits(ranked["unit"], 0, 10), ""
        ),
        pc.cast(ranked["person_id"], pa.string()),
    )
    columns: dict[str, pa.Array | pa.ChunkedArray] = {"person": person}
    if pc.any(pc.is_valid(ranked["name"])).as_py():
        columns["name"] = pc.fill_null(ranked["name"], "")
    columns |= {
        "records": pc.fill_null(pc.binary_join(ranked["records"], ", "), ""),
        "district": pc.fill_null(ranked["district"], ""),
        "school": pc.fill_null(
            pc.coalesce(ranked["school_name"], ranked["school_id"]), ""
        ),
        "grade": pc.fill_null(ranked["grade_level"], ""),
        "tier": ranked["tier"],
        "attendance": ranked["attendance_rate"],
        "flags": pc.fill_null(ranked["flags"], ""),
    }
    if "risk_score" in ranked.column_names:
        columns["risk"] = pc.round(ranked["risk_score"], 2)
        columns["top factors"] = ranked["risk_factors"]
    return pa.table(columns)


class Indicators:
    def __init__(
        self,
        con: Connection,
        clock: Callable[[], datetime],
        school_year_start_month: int,
        engine: Callable[[str | None], EngineChoice] = lambda _kind: EngineChoice(),
    ) -> None:
        self._con = con
        self._start = school_year_start_month
        self._engine = engine
        self.definitions = DefinitionStore(con, clock)

    # --- the school year (the warehouse's calendar) -------------------------------

    @property
    def school_year_start_month(self) -> int:
        return self._start

    def year_bounds(self, school_year: int) -> tuple[date, date]:
        return school_year_bounds(school_year, self._start)

    def school_year_of(self, day: date) -> int:
        return school_year_of(day, self._start)

    def data_years(self) -> list[int]:
        return _data_years(self._con)

    # --- computing --------------------------------------------------------------

    def compute(
        self,
        s: Session,
        access: Access,
        *,
        as_of: date | None = None,
        school_years: Sequence[int] | None = None,
        progress: Callable[[str], None] | None = None,
        engine: str | None = None,
    ) -> list[Snapshot]:
        """Compute and store snapshots: for ``as_of``, one in-year snapshot of its
        school year; otherwise one per school year (at its end, or today for the
        year under way). A snapshot computed again replaces itself. The steward's
        work (``derive``), in one unit of work with one audit entry; ``access`` (the
        same principal's) answers which providers' facts the agreements share.
        ``engine`` (``duckdb``, ``spark``) overrides ``engine.kind`` for the run:
        on Spark only the facts of those providers go to the cluster."""
        s.require("derive", "compute early-warning indicators", action="derive")
        choice = self._engine(engine)
        access = access.within(s)
        in_use = self.definitions._for_write(s)
        today = access.on
        if as_of is not None:
            if as_of > today:
                raise UserError(f"--as-of {as_of} is in the future; use a past day.")
            plan = [(self.school_year_of(as_of), as_of)]
        else:
            years = list(school_years) if school_years else _data_years(s.con)
            if not years:
                raise UserError(
                    "no enrollment, attendance or course data yet; submit some first."
                )
            plan = [(y, min(self.year_bounds(y)[1], today)) for y in years]
            plan = [(y, cut) for y, cut in plan if cut >= self.year_bounds(y)[0]]
        # only providers whose agreements in force give the steward these values,
        # each value only from facts the provider's agreements share
        candidates = _source_providers(s.con)
        answers = access.grants(ENTITY, "row_level_view", candidates)
        allowed = [a.provider for a in answers if isinstance(a, Grant)]
        refused = {a.provider: a.reason for a in answers if not isinstance(a, Grant)}
        if not allowed:
            why = "; ".join(f"{p}: {r}" for p, r in sorted(refused.items()))
            raise UserError(
                "no partner's agreement in force gives you early-warning indicators "
                f"({ENTITY}) for {access.purpose}"
                + (f" ({why})" if why else " (no partner has sent enrollments yet)")
                + f". A district's agreement shares them by listing {ENTITY} under "
                "datasets, with this purpose; compute them under a purpose it lists "
                "(--purpose program_evaluation for an evaluation-only agreement). "
                "Nothing was computed."
            )
        sources = {
            entity: [
                a.provider
                for a in access.grants(entity, "row_level_view", candidates)
                if isinstance(a, Grant)
            ]
            for entity in DERIVED_FROM[ENTITY]
        }
        say = progress or (lambda _m: None)
        for attempt in range(1, COMPUTE_ATTEMPTS + 1):
            in_use = self.definitions.current()
            inputs = _input_copies(s.con, sources)
            read_after = last_change(s.con)
            # the inputs are in memory: the warehouse file is handed back to other
            # processes while the snapshots are computed from them
            with s.released():
                computed = self._computed(
                    inputs, in_use, plan, allowed, sources, say, choice
                )
            if last_change(s.con) == read_after:
                break
            if attempt == COMPUTE_ATTEMPTS:
                raise WarehouseError(
                    "the warehouse changed while the indicators were computed, "
                    f"{COMPUTE_ATTEMPTS} times; nothing was saved. Compute them again "
                    "when the submissions and computations under way are done."
                )
            say("the warehouse changed meanwhile; computing again")
        if not any(table.num_rows for _, table in computed):
            labels = ", ".join(school_year_label(y, self._start) for y, _ in plan)
            raise UserError(
                f"no student has indicators in {labels or 'any school year'}: none of "
                f"{', '.join(allowed)} has an enrollment in those years that the "
                "agreements share for this purpose. Nothing was computed; submit "
                "enrollments first (`backbone submissions list`)."
            )
        # the version read is the version stored (its defaults recorded now if
        # nothing was: a change of definitions meanwhile would have been noticed)
        stored = self.definitions._for_write(s)
        assert stored.version == in_use.version
        out = []
        for (year, cutoff, seconds), table in computed:
            with transaction(s.con), engines.registered(s.con, computed=table):
                # only the providers computed for now: another purpose's
                # snapshot of other providers' students stays
                s.con.execute(
                    f"DELETE FROM analytic.{ENTITY} WHERE school_year = ? "
                    "AND as_of_date = ? AND list_contains(?, provider_partner_id)",
                    [year, cutoff, list(allowed)],
                )
                # submission_id 0: derived by the warehouse, not sent
                s.con.execute(
                    f"INSERT INTO analytic.{ENTITY} BY NAME "
                    "SELECT *, CAST(0 AS BIGINT) AS submission_id FROM computed"
                )
            out.append(Snapshot(year, cutoff, in_use.version, table.num_rows, seconds))
        s.record(
            "derive",
            f"early-warning indicators for {access.purpose}",
            rows=sum(snap.records for snap in out),
            providers=tuple(allowed),
            detail={
                "snapshots": [f"{snap.school_year}@{snap.as_of}" for snap in out],
                "definition_version": in_use.version,
                "refused": refused,
                **({"engine": choice.where()} if choice.on_spark else {}),
            },
        )
        return out

    def _computed(
        self,
        inputs: Mapping[str, pa.Table],
        in_use: DefinitionsInUse,
        plan: Sequence[tuple[int, date]],
        allowed: list[str],
        sources: dict[str, list[str]],
        say: Callable[[str], None],
        choice: EngineChoice,
    ) -> list[tuple[tuple[int, date, float], pa.Table]]:
        """Each planned snapshot's component rows, computed from a private database
        holding copies of the inputs (not the warehouse: it may be handed back),
        there or on the engine ``choice`` names."""
        con = engines.scratch()
        try:
            for name, table in inputs.items():
                schema, plain = name.split(".")
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {engines.ident(schema)}")
                with engines.registered(con, copy=table):
                    engines.create_table_as(
                        con, engines.qualified(schema, plain), "SELECT * FROM copy"
                    )
            out = []
            if choice.on_spark:
                say(f"sending the inputs to {choice.where()}")
            with offloaded(choice, con, list(inputs)) as run:
                out = self._snapshots(run, in_use, plan, allowed, sources, say)
            return out
        finally:
            con.close()

    def _snapshots(
        self,
        run: Runner,
        in_use: DefinitionsInUse,
        plan: Sequence[tuple[int, date]],
        allowed: list[str],
        sources: dict[str, list[str]],
        say: Callable[[str], None],
    ) -> list[tuple[tuple[int, date, float], pa.Table]]:
        """Each planned snapshot's component rows, by ``run``."""
        out = []
        for year, cutoff in plan:
            begin, end = self.year_bounds(year)
            cutoff = min(cutoff, end)
            say(f"indicators for {school_year_label(year, self._start)} as of {cutoff}")
            started = time.perf_counter()
            sql, params = components_sql(
                in_use.definitions,
                version=in_use.version,
                school_year=year,
                year_begin=begin,
                cutoff=cutoff,
                year_end=end,
                start_month=self._start,
                providers=allowed,
                sources=sources,
            )
            table = run.table(sql, params)
            out.append(((year, cutoff, time.perf_counter() - started), table))
        return out

    def snapshots(self, con: Connection | None = None) -> list[Snapshot]:
        """The snapshots stored (as ``con``, a session's cursor, sees them)."""
        return [
            Snapshot(int(y), d, int(v), int(n))
            for y, d, v, n in (con or self._con)
            .execute(
                f"SELECT school_year, as_of_date, max(definition_version), count(*) "
                f"FROM analytic.{ENTITY} GROUP BY 1, 2 ORDER BY 2, 1"
            )
            .fetchall()
        ]

    def computed(self, access: Access) -> list[Snapshot]:
        """The snapshots computed so far, for the steward (how many records each
        holds is the steward's to know)."""
        access.require_steward("row_level_view", "list early-warning snapshots")
        return self.snapshots()

    def snapshot(
        self, *, school_year: int | None = None, as_of: date | None = None
    ) -> Snapshot:
        """The snapshot asked for: ``as_of`` exactly, else the latest of
        ``school_year``, else the latest of all."""
        known = self.snapshots()
        if not known:
            raise UserError(
                "no indicators computed yet; run `backbone indicators compute`."
            )
        chosen = [
            s
            for s in known
            if (as_of is None or s.as_of == as_of)
            and (school_year is None or s.school_year == school_year)
        ]
        if not chosen:
            have = ", ".join(f"{s.school_year}@{s.as_of}" for s in known[-6:])
            raise UserError(
                f"no snapshot for {as_of or school_year}; computed: {have}. "
                "Compute one with `backbone indicators compute --as-of DATE`."
            )
        return chosen[-1]

    # --- person-level values ----------------------------------------------------

    def _definitions(self, versions: Iterable[int]) -> dict[int, Definitions]:
        return {int(v): self.definitions.get(int(v)) for v in versions}

    def evaluate(self, components: pa.Table) -> pa.Table:
        """Person-level indicators, levels and tiers of component rows carrying
        ``unit`` and ``person_id``, each snapshot with its own definitions."""
        if components.num_rows == 0:
            return pa.table({})
        versions = pc.unique(components.column("definition_version")).to_pylist()
        con = locked_connection({"components": components})
        try:
            return engines.arrow(
                con,
                persons_sql(
                    self._definitions([v for v in versions if v is not None]),
                    "components",
                ),
            )
        finally:
            con.close()

    def roster(
        self,
        access: Access,
        *,
        school_year: int | None = None,
        as_of: date | None = None,
        tiers: Sequence[str] | None = None,
        school: str | None = None,
        district: str | None = None,
        grade: str | None = None,
        not_served: bool = False,
        export_to: str | None = None,
    ) -> Roster:
        """The persons of one snapshot the reader may see, combined across the
        providers whose rows the agreements give it, worst first; with their
        earlier year-end snapshots (``history``) for the risk score, their schools'
        names, and their names where the reader may see them identified. With
        ``export_to`` the roster is for a file: exporting must be permitted."""
        if tiers:
            bad = set(tiers) - set(TIERS)
            if bad:
                raise UserError(
                    f"unknown tier {sorted(bad)[0]!r}; use {', '.join(TIERS)}."
                )
        snap = self.snapshot(school_year=school_year, as_of=as_of)
        earlier = [
            s.as_of
            for s in self.snapshots()
            if s.school_year < snap.school_year
            and s.as_of == self.year_bounds(s.school_year)[1]
        ]
        m = access.person_rows(
            ENTITY,
            what=f"early-warning roster {snap.school_year}@{snap.as_of}",
            where={"as_of_date": [*earlier, snap.as_of]},
            export_to=export_to,
        )
        everyone = self.evaluate(with_identifiers(m.table))
        table = history = everyone
        if everyone.num_rows:
            con = locked_connection({"persons": everyone})
            try:
                conds = [
                    "district IS NOT NULL",
                    "school_year = ?",
                    "as_of_date = ?",
                ]
                params: list[object] = [snap.school_year, snap.as_of]
                if tiers:
                    conds.append("list_contains(?, tier)")
                    params.append(list(tiers))
                for column, value in (
                    ("school_id", school),
                    ("district", district),
                    ("grade_level", grade),
                ):
                    if value:
                        conds.append(f"{column} = ?")
                        params.append(value)
                if not_served:
                    conds.append("NOT in_program")
                table = engines.arrow(
                    con,
                    f"SELECT * FROM persons WHERE {' AND '.join(conds)} "
                    "ORDER BY points DESC, attendance_rate NULLS LAST, unit",
                    params,
                )
                history = engines.arrow(
                    con, "SELECT * FROM persons WHERE as_of_date <> ?", [snap.as_of]
                )
            finally:
                con.close()
            table = self._named(access, table, export_to)
        return Roster(
            snap,
            table,
            tuple(sorted(m.rows_by_provider)),
            {r.provider: r.reason for r in m.refusals},
            history,
        )

    def _named(
        self, access: Access, table: pa.Table, export_to: str | None
    ) -> pa.Table:
        """The roster with its schools' names, and each known person's name where
        the reader's access to the partner records that carry it is identified
        (read through the policy layer: one more audit entry); empty otherwise."""
        schools = dict(
            self._con.execute("SELECT school_id, name FROM ref.school").fetchall()
        )
        school_ids = table.column("school_id").to_pylist()
        table = table.append_column(
            "school_name",
            pa.array(
                [schools.get(s, s) if s else None for s in school_ids], pa.string()
            ),
        )
        known = sorted(
            {p for p in table.column("person_id").to_pylist() if p is not None}
        )
        names: dict[int, str] = {}
        if known:
            try:
                m = access.rows(
                    "partner_record",
                    fields=["first_name", "last_surname"],
                    person_ids=known,
                    export_to=export_to,
                )
            except Forbidden:
                m = None
            if m is not None and {"first_name", "last_surname", "person_id"} <= set(
                m.table.column_names
            ):
                con = locked_connection({"names": m.table})
                try:
                    names = dict(
                        con.execute(
                            "SELECT person_id, mode(concat_ws(', ', last_surname, "
                            "first_name)) FROM names WHERE person_id IS NOT NULL "
                            "AND last_surname IS NOT NULL GROUP BY person_id"
                        ).fetchall()
                    )
                finally:
                    con.close()
        return table.append_column(
            "name",
            pa.array(
                [names.get(p) for p in table.column("person_id").to_pylist()],
                pa.string(),
            ),
        )

    # --- aggregates through the release gate ------------------------------------

    def trend(
        self,
        access: Access,
        by: str,
        numerator: Mapping[str, Sequence[object]],
    ) -> Release:
        """The share of persons matching ``numerator`` per ``by`` group and school
        year (each year's latest snapshot), through the release gate."""
        if by == "school_year":
            raise UserError("the trend runs over school years already; pick a group.")
        years = sorted({s.school_year for s in self.snapshots()})
        return self.count(access, [by, "school_year"], years=years, numerator=numerator)

    def count(
        self,
        access: Access,
        by: Sequence[str],
        *,
        school_year: int | None = None,
        as_of: date | None = None,
        where: Mapping[str, Sequence[object]] | None = None,
        numerator: Mapping[str, Sequence[object]] | None = None,
        years: Sequence[int] | None = None,
    ) -> Release:
        """Persons of a snapshot (or, with ``years``, of each year's latest
        snapshot) by up to two person-level dimensions, through the release gate;
        with ``numerator``, the share of them matching it."""
        asked = [*by, *(where or {}), *(numerator or {})]
        bad = [c for c in asked if c not in DIMENSIONS]
        if bad:
            raise UserError(
                f"cannot count by {bad[0]!r}; use one of {', '.join(DIMENSIONS)}."
            )
        if years:
            snaps = [self.snapshot(school_year=y) for y in years]
        else:
            snaps = [self.snapshot(school_year=school_year, as_of=as_of)]
        sql = derived_units_sql(
            self._definitions({s.definition_version for s in snaps}),
            [(s.school_year, s.as_of) for s in snaps],
            list(dict.fromkeys(asked)),
        )
        return access.count_derived(
            ENTITY,
            COMPONENT_COLUMNS,
            sql,
            by,
            where=where,
            numerator=numerator,
            definition={
                "measure": "early_warning",
                "snapshots": [f"{s.school_year}@{s.as_of}" for s in snaps],
                "definitions": sorted({s.definition_version for s in snaps}),
            },
        )

    def transitions(self, access: Access, before: Snapshot, after: Snapshot) -> Release:
        """Persons by tier at ``before`` and at ``after`` (``(absent)`` where a
        person is in one snapshot only), through the release gate."""
        snaps = [before, after]
        sql = derived_units_sql(
            self._definitions({s.definition_version for s in snaps}),
            [(s.school_year, s.as_of) for s in snaps],
            [],
            transitions=True,
        )
        return access.count_derived(
            ENTITY,
            COMPONENT_COLUMNS,
            sql,
            ["tier_before", "tier_after"],
            definition={
                "measure": "tier_transitions",
                "snapshots": [f"{s.school_year}@{s.as_of}" for s in snaps],
                "definitions": sorted({s.definition_version for s in snaps}),
            },
        )


def with_identifiers(table: pa.Table) -> pa.Table:
    """Materialized rows as components: identifiers a reader may not see (all of
    its grants pseudonymous) are there, empty."""
    if table.num_rows == 0:
        return pa.table({})
    for name, type_ in (("student_local_id", pa.string()), ("person_id", pa.int64())):
        if name not in table.column_names:
            table = table.append_column(name, pa.nulls(table.num_rows, type_))
    return table


def _input_copies(
    con: Connection, sources: Mapping[str, Sequence[str]]
) -> dict[str, pa.Table]:
    """Copies of what the indicators are computed from: each entity's facts of the
    providers whose agreements share it for the purpose (``sources``), and the
    calendar (``schema.table`` -> rows). Nothing else leaves the warehouse, for the
    scratch database or for a Spark cluster."""
    copies = {
        f"analytic.{entity}": engines.arrow(
            con,
            f"SELECT * FROM analytic.{engines.ident(entity)} "
            "WHERE list_contains(?, provider_partner_id)",
            [list(sources.get(entity, ()))],
        )
        for entity in sorted(set(DERIVED_FROM[ENTITY]))
    }
    copies["ref.calendar_date"] = engines.arrow(con, "SELECT * FROM ref.calendar_date")
    return copies


def _data_years(con: Connection) -> list[int]:
    return [
        int(r[0])
        for r in con.execute(
            "SELECT DISTINCT school_year FROM analytic.enrollment UNION "
            "SELECT DISTINCT school_year FROM analytic.attendance_period UNION "
            "SELECT DISTINCT school_year FROM analytic.course_transcript "
            "ORDER BY 1"
        ).fetchall()
    ]


def _source_providers(con: Connection) -> list[str]:
    """Providers of any fact the indicators are derived from."""
    union = " UNION ".join(
        f"SELECT DISTINCT provider_partner_id FROM analytic.{t}"
        for t in sorted(set(DERIVED_FROM[ENTITY]))
    )
    return [r[0] for r in con.execute(f"{union} ORDER BY 1").fetchall()]
