"""What we get: each partner's findings for its board.

:func:`what_we_get` writes one partner's findings as sentences
with released numbers: what the partnership shows it that its own records could
not. Every number is a release of the gate under the reader's purpose; a finding
the reader is refused says so instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from backbone.errors import PolicyDenied
from backbone.governance.access import Access
from backbone.governance.policy import Grant
from backbone.governance.release import TOTAL, Release
from backbone.measures.college import college_release
from backbone.measures.indicator_sql import COMPONENT_COLUMNS, derived_units_sql
from backbone.measures.indicators import Snapshot
from backbone.measures.scorecard import (
    INDICATOR_ENTITY,
    _districts,
    _snapshots,
    chronic_absence_release,
)
from backbone.measures.scorecard_sql import _same_definitions
from backbone.model.calendar import school_year_label

if TYPE_CHECKING:
    from backbone.measures.stages import MeasureStages

__all__ = ["Finding", "what_we_get"]

NO_DIPLOMA = "no community high-school diploma"


@dataclass(frozen=True)
class Finding:
    """One sentence for a partner's board, with the releases its numbers are from."""

    topic: str
    text: str
    release_ids: tuple[int, ...] = ()
    refused: str | None = None
    """why the reader may not have this finding (then ``text`` says so)"""


def _year_label(wh: MeasureStages, year: int | str) -> str:
    return school_year_label(int(year), wh.settings["calendar.school_year_start_month"])


def _count(value: int | None) -> str:
    return "a number too small to show" if value is None else f"{value:,}"


def _rate(row: Mapping[str, Any] | None) -> str:
    """A released rate as words: '40.0% (12 of 30)'."""
    if row is None:
        return "no one"
    rate, matching, persons = row.get("rate"), row.get("matching"), row.get("persons")
    if rate is None or rate == "*":
        return "not shown (a group too small to publish)"
    if matching is None or persons is None:
        return f"{rate}" + (f" of {persons:,}" if persons is not None else "")
    return f"{rate} ({matching:,} of {persons:,})"


def _row(release: Release, **dims: str) -> dict[str, Any] | None:
    for row in release.table.to_pylist():
        if all(row.get(k) == v for k, v in dims.items()):
            return dict(row)
    return None


def _year_window(wh: MeasureStages, year: int) -> tuple[date, date]:
    return wh.indicators.year_bounds(year)


def _latest_snapshot(wh: MeasureStages) -> Snapshot | None:
    snaps = [
        s
        for s in _snapshots(wh, None)
        if s.as_of == wh.indicators.year_bounds(s.school_year)[1]
    ] or _snapshots(wh, None)
    return snaps[-1] if snaps else None


def _refused(topic: str, what: str, why: str) -> Finding:
    return Finding(
        topic, f"{what} cannot be shown to you for this purpose: {why}.", (), why
    )


def _movers(wh: MeasureStages, access: Access, partner: str, name: str) -> Finding:
    topic = "moves between districts"
    year = wh.indicators.school_year_of(access.on)
    districts = _districts(wh)
    others = [
        a
        for a in access.grants("enrollment", "aggregate")
        if a.provider != partner and a.provider in districts
    ]
    if others and not any(isinstance(a, Grant) for a in others):
        why = "; ".join(f"{a.provider}: {a.reason}" for a in others)
        return _refused(topic, "Moves to and from other community districts", why)
    sql = """
WITH e AS (SELECT * FROM enrollment WHERE school_year = ?),
mine AS (SELECT DISTINCT unit FROM e WHERE provider = ?),
spans AS (
    SELECT unit, arg_max(provider, entry_date) AS last_provider,
           count(*) FILTER (WHERE provider <> ?) AS elsewhere
    FROM e WHERE unit IN (SELECT unit FROM mine) GROUP BY unit
)
SELECT e.provider, e.unit, e.record,
       CASE WHEN s.elsewhere = 0 THEN 'stayed'
            WHEN s.last_provider <> ? THEN 'left for another district'
            ELSE 'came from another district' END AS mobility
FROM e JOIN spans s USING (unit)
"""
    release = access.count_derived(
        "enrollment",
        (),
        sql,
        ["mobility"],
        params=[year, partner, partner, partner],
        definition={"measure": "what_we_get:movers", "partner": partner, "year": year},
        inputs={"enrollment": ("enrollment", ["school_year", "entry_date"])},
    )
    total = _row(release, mobility=TOTAL)
    if total is None:
        return Finding(
            topic,
            f"{name} has no enrollment in {_year_label(wh, year)} yet.",
            (release.release_id,),
        )
    came = _row(release, mobility="came from another district")
    left = _row(release, mobility="left for another district")
    text = (
        f"In {_year_label(wh, year)}, {name} enrolled {_count(total['persons'])} students; "
        f"{_count(came['persons'] if came else 0)} of them came from another "
        f"community district during the year and "
        f"{_count(left['persons'] if left else 0)} left for one, moves its own "
        "records cannot follow."
    )
    missing = [a.provider for a in others if not isinstance(a, Grant)]
    if missing:
        text += (
            f" (Moves involving {', '.join(missing)} are not counted: not shared "
            "with you for this purpose.)"
        )
    return Finding(topic, text, (release.release_id,))


def _served(wh: MeasureStages, access: Access, partner: str, name: str) -> Finding:
    topic = "students served by community programs"
    year = wh.indicators.school_year_of(access.on)
    begin, end = _year_window(wh, year)
    sql = """
WITH students AS (
    SELECT provider, unit, record FROM enrollment WHERE school_year = ? AND provider = ?
),
served AS (
    SELECT provider, unit, record FROM participation
    WHERE provider <> ? AND begin_date <= ? AND coalesce(end_date, ?) >= ?
      AND unit IN (SELECT unit FROM students)
)
SELECT provider, unit, record,
       CASE WHEN unit IN (SELECT unit FROM served) THEN 'yes' ELSE 'no' END AS served
FROM students
UNION
SELECT provider, unit, record, 'yes' FROM served
"""
    release = access.count_derived(
        "enrollment",
        (),
        sql,
        [],
        params=[year, partner, partner, end, end, begin],
        numerator={"served": ["yes"]},
        definition={"measure": "what_we_get:served", "partner": partner, "year": year},
        inputs={
            "enrollment": ("enrollment", ["school_year"]),
            "participation": (
                "program_participation",
                ["program_id", "begin_date", "end_date"],
            ),
        },
    )
    row = _row(release, group=TOTAL)
    if row is None:
        return Finding(
            topic,
            f"{name} has no enrollment in {_year_label(wh, year)} yet.",
            (release.release_id,),
        )
    return Finding(
        topic,
        f"In {_year_label(wh, year)}, {_rate(row)} of {name}'s students took part in a "
        "community organization's program, from the organizations' own records.",
        (release.release_id,),
    )


def _graduates_college(
    wh: MeasureStages, access: Access, partner: str, name: str
) -> Finding:
    topic = "graduates' college enrollment"
    release = college_release(
        access,
        "enrolled_first_fall",
        as_of=access.on,
        by=["class_of"],
        where={"district": [partner]},
    )
    classes = sorted(
        (r for r in release.table.to_pylist() if r["class_of"] != TOTAL),
        key=lambda r: int(r["class_of"]),
    )[-3:]
    if not classes:
        return Finding(
            topic,
            f"No class of {name}'s graduates has reached its first college fall yet.",
            (release.release_id,),
        )
    parts = "; ".join(f"class of {r['class_of']}: {_rate(r)}" for r in classes)
    return Finding(
        topic,
        f"Enrolled in college the fall after high school, from the college "
        f"agency's records linked to {name}'s graduates: {parts}.",
        (release.release_id,),
    )


def _chronic_beside(
    wh: MeasureStages, access: Access, partner: str, name: str
) -> Finding:
    topic = "chronic absence beside the community"
    snap = _latest_snapshot(wh)
    if snap is None:
        return Finding(topic, "No early-warning snapshot has been computed yet.")
    release = chronic_absence_release(
        wh, access, years=[snap.school_year], by=["district"]
    )
    assert release is not None  # a snapshot exists
    mine = _row(release, district=partner)
    text = (
        f"In {_year_label(wh, snap.school_year)}, {_rate(mine)} of {name}'s students "
        "were chronically absent"
    )
    missing = _not_shared(access, INDICATOR_ENTITY, partner, _districts(wh))
    if missing is None:
        text += (
            f", beside {_rate(_row(release, district=TOTAL))} across the community "
            "(a student who attended two districts counts once, in the district "
            "attended last, with absences from both)."
        )
    elif missing:
        text += (
            f", beside {_rate(_row(release, district=TOTAL))} across the districts "
            f"that share with you for this purpose ({', '.join(missing)} do not)."
        )
    else:
        text += (
            "; the other districts do not share their figures with you for this "
            "purpose, so there is no community figure beside it."
        )
    return Finding(topic, text, (release.release_id,))


def _not_shared(
    access: Access, entity: str, partner: str, districts: Mapping[str, str]
) -> list[str] | None:
    """The other districts holding ``entity`` that do not give the reader
    aggregates of it for its purpose: None when all do, [] when none does."""
    others = [
        a
        for a in access.grants(entity, "aggregate")
        if a.provider != partner and a.provider in districts
    ]
    refused = [a.provider for a in others if not isinstance(a, Grant)]
    if not refused:
        return None
    return [] if len(refused) == len(others) else refused


def _community_chronic(
    wh: MeasureStages, access: Access, partner: str, name: str
) -> Finding:
    topic = "chronic absence across the community"
    snap = _latest_snapshot(wh)
    if snap is None:
        return Finding(topic, "No early-warning snapshot has been computed yet.")
    release = chronic_absence_release(
        wh, access, years=[snap.school_year], by=["district"]
    )
    assert release is not None  # a snapshot exists
    districts = _districts(wh)
    parts = "; ".join(
        f"{districts.get(r['district'], r['district'])} {_rate(r)}"
        for r in release.table.to_pylist()
        if r["district"] != TOTAL
    )
    return Finding(
        topic,
        f"In {_year_label(wh, snap.school_year)}, {_rate(_row(release, district=TOTAL))} "
        f"of the community's students were chronically absent"
        + (f" ({parts})" if parts else "")
        + "; every district measured the same way, each student counted once.",
        (release.release_id,),
    )


def _matched(wh: MeasureStages, access: Access, partner: str, name: str) -> Finding:
    topic = "participants matched to district records"
    year = wh.indicators.school_year_of(access.on)
    begin, end = _year_window(wh, year)
    sql = """
WITH mine AS (
    SELECT provider, unit, record FROM participation
    WHERE provider = ? AND begin_date <= ? AND coalesce(end_date, ?) >= ?
),
known AS (SELECT DISTINCT unit FROM enrollment WHERE unit IN (SELECT unit FROM mine))
SELECT provider, unit, record,
       CASE WHEN unit IN (SELECT unit FROM known) THEN 'yes' ELSE 'no' END AS matched
FROM mine
UNION
SELECT provider, unit, record, 'yes' FROM enrollment
WHERE unit IN (SELECT unit FROM known)
"""
    release = access.count_derived(
        "program_participation",
        (),
        sql,
        [],
        params=[partner, end, end, begin],
        numerator={"matched": ["yes"]},
        definition={"measure": "what_we_get:matched", "partner": partner, "year": year},
        inputs={
            "participation": (
                "program_participation",
                ["program_id", "begin_date", "end_date"],
            ),
            "enrollment": ("enrollment", ["school_year"]),
        },
    )
    row = _row(release, group=TOTAL)
    if row is None:
        return Finding(
            topic,
            f"{name} has no participants in {_year_label(wh, year)} yet.",
            (release.release_id,),
        )
    return Finding(
        topic,
        f"In {_year_label(wh, year)}, {_rate(row)} of {name}'s participants were "
        "matched to a community district's enrollment records.",
        (release.release_id,),
    )


def _participants(
    wh: MeasureStages, access: Access, partner: str, name: str, *, risk: bool
) -> Finding:
    topic = "participants' risk" if risk else "participants' attendance"
    snap = _latest_snapshot(wh)
    if snap is None:
        return Finding(topic, "No early-warning snapshot has been computed yet.")
    in_use = wh.indicators.definitions.current()
    base = derived_units_sql(
        _same_definitions(in_use.definitions, [snap]),
        [(snap.school_year, snap.as_of)],
        ["attendance_rate", "attendance_level", "tier"],
    )
    begin, end = _year_window(wh, snap.school_year)
    value, cond = (
        ("CASE WHEN tier <> 'on track' THEN 'yes' ELSE 'no' END", "true")
        if risk
        else (
            "CASE WHEN attendance_level = 2 THEN 'yes' ELSE 'no' END",
            "attendance_rate IS NOT NULL",
        )
    )
    column = "at_risk" if risk else "chronically_absent"
    sql = f"""
WITH ind AS ({base}),
person AS (SELECT DISTINCT unit, {value} AS v FROM ind WHERE {cond}),
served AS (
    SELECT provider, unit, record FROM participation
    WHERE provider = ? AND begin_date <= ? AND coalesce(end_date, ?) >= ?
      AND unit IN (SELECT unit FROM person)
)
SELECT i.provider, i.unit, i.record,
       CASE WHEN i.unit IN (SELECT unit FROM served) THEN 'yes' ELSE 'no' END
           AS served,
       p.v AS {column}
FROM ind i JOIN person p USING (unit)
UNION
SELECT s.provider, s.unit, s.record, 'yes', p.v FROM served s JOIN person p USING (unit)
"""
    release = access.count_derived(
        INDICATOR_ENTITY,
        (),
        sql,
        ["served"],
        params=[partner, end, end, begin],
        numerator={column: ["yes"]},
        definition={
            "measure": f"what_we_get:participants_{column}",
            "partner": partner,
            "snapshot": f"{snap.school_year}@{snap.as_of}",
            "definitions": in_use.version,
        },
        inputs={
            "units": (INDICATOR_ENTITY, list(COMPONENT_COLUMNS)),
            "participation": (
                "program_participation",
                ["program_id", "begin_date", "end_date"],
            ),
        },
    )
    served = _row(release, served="yes")
    others = _row(release, served="no")
    community = _row(release, served=TOTAL)
    what = (
        "were on the early-warning watch or high-risk tier"
        if risk
        else "were chronically absent"
    )
    return Finding(
        topic,
        f"In {_year_label(wh, snap.school_year)}, {_rate(served)} of {name}'s "
        f"participants enrolled in community schools {what}, beside "
        f"{_rate(others)} of students it did not serve and {_rate(community)} "
        "across the community.",
        (release.release_id,),
    )


def _feeder_schools(
    wh: MeasureStages, access: Access, partner: str, name: str
) -> Finding:
    topic = "high schools its students come from"
    sql = """
WITH mine AS (SELECT provider, unit, record FROM postsecondary_enrollment WHERE provider = ?),
diploma AS (
    SELECT provider, unit, record, school_id,
           row_number() OVER (PARTITION BY unit
                              ORDER BY graduation_date, provider, record) AS n
    FROM graduation WHERE unit IN (SELECT unit FROM mine)
),
names AS (
    SELECT school_id,
           CASE WHEN count(*) OVER (PARTITION BY name) > 1
                THEN name || ' (' || school_id || ')' ELSE name END AS label
    FROM school
),
school_of AS (
    SELECT d.provider, d.unit, d.record, coalesce(n.label, d.school_id) AS high_school
    FROM diploma d LEFT JOIN names n ON n.school_id = d.school_id WHERE d.n = 1
)
SELECT m.provider, m.unit, m.record, coalesce(s.high_school, ?) AS high_school
FROM mine m LEFT JOIN school_of s USING (unit)
UNION
SELECT provider, unit, record, high_school FROM school_of
"""
    release = access.count_derived(
        "postsecondary_enrollment",
        (),
        sql,
        ["high_school"],
        params=[partner, NO_DIPLOMA],
        definition={"measure": "what_we_get:feeder_schools", "partner": partner},
        inputs={
            "postsecondary_enrollment": (
                "postsecondary_enrollment",
                ["term_begin_date"],
            ),
            "graduation": ("graduation", ["school_id", "graduation_date"]),
        },
    )
    rows = release.table.to_pylist()
    total = _row(release, high_school=TOTAL)
    schools = sorted(
        (r for r in rows if r["high_school"] not in (TOTAL, NO_DIPLOMA)),
        key=lambda r: (-(r["persons"] or 0), r["high_school"]),
    )
    if total is None:
        return Finding(
            topic, f"{name} has sent no college enrollment yet.", (release.release_id,)
        )
    none = _row(release, high_school=NO_DIPLOMA)
    listed = ", ".join(f"{r['high_school']} {_count(r['persons'])}" for r in schools)
    return Finding(
        topic,
        f"Of the {_count(total['persons'])} students in {name}'s college records, "
        f"graduates of community high schools: {listed or 'none'}; "
        f"{_count(none['persons'] if none else 0)} have no community high-school "
        "diploma (or are not linked to one).",
        (release.release_id,),
    )


_FINDINGS: dict[
    str, tuple[tuple[str, Callable[[MeasureStages, Access, str, str], Finding]], ...]
] = {
    "school_district": (
        ("moves between districts", _movers),
        ("students served by community programs", _served),
        ("graduates' college enrollment", _graduates_college),
        ("chronic absence beside the community", _chronic_beside),
    ),
    "community_organization": (
        ("participants matched to district records", _matched),
        (
            "participants' attendance",
            lambda wh, a, p, n: _participants(wh, a, p, n, risk=False),
        ),
        (
            "participants' risk",
            lambda wh, a, p, n: _participants(wh, a, p, n, risk=True),
        ),
    ),
    "higher_education_agency": (
        ("high schools its students come from", _feeder_schools),
    ),
}
_COMMUNITY = (("chronic absence across the community", _community_chronic),)


def what_we_get(wh: MeasureStages, access: Access, partner_id: str) -> list[Finding]:
    """What the partnership shows ``partner_id`` that its own system could not,
    as sentences with released numbers for its board. Every number is a gated
    release under the reader's purpose; a finding the reader may not have says
    so, and the others still stand. Nothing person-level leaves."""
    partner = wh.partners.get(partner_id)
    findings = []
    for topic, build in _FINDINGS.get(partner.kind, _COMMUNITY):
        try:
            findings.append(build(wh, access, partner.partner_id, partner.name))
        except PolicyDenied as denied:
            findings.append(_refused(topic, topic[0].upper() + topic[1:], str(denied)))
    access.log(
        "publish",
        f"what we get: {partner.partner_id}",
        releases=[i for f in findings for i in f.release_ids],
        refused=[f.topic for f in findings if f.refused],
    )
    return findings
