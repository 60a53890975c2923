"""Early-warning indicators on a partnership worked out by hand
(tests/early_warning_fixtures.py): values, levels, tiers, a student who moved,
in-year snapshots, what each reader may see, counts through the release gate,
versioned definitions, retention."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlglot

from backbone import Warehouse
from backbone.errors import Forbidden, InputFileError, PolicyDenied, UserError
from backbone.governance.retention import Due
from backbone.measures.definitions import default_definitions, default_text
from backbone.measures.indicator_sql import components_sql, person_indicators_sql
from backbone.measures.indicators import Indicators, Snapshot
from tests.early_warning_fixtures import NOW, build

YEAR_END = date(2026, 6, 30)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("early") / "wh"
    build(path)
    with Warehouse.open(path, clock=lambda: NOW) as wh:
        _compute(wh)
    return path


@pytest.fixture
def wh(built: Path, tmp_path: Path) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh", clock=lambda: NOW) as w:
        yield w


def _compute(wh: Warehouse, user: str = "steward", **kw: Any) -> list[Snapshot]:
    """Compute indicators as ``user``, in a unit of work of their own."""
    principal = wh.users.get(user)
    with wh.session(principal, purpose="early_warning") as s:
        return wh.indicators.compute(s, wh.access(principal, "early_warning"), **kw)


def _by_person(table: Any) -> dict[int, dict[str, Any]]:
    return {r["person_id"]: r for r in table.to_pylist()}


def _roster(wh: Warehouse, user: str, **kw: Any) -> Any:
    return wh.indicators.roster(wh.access(wh.users.get(user), "early_warning"), **kw)


# --- the SQL, as strings ----------------------------------------------------------


def test_sql_builders_take_codes_as_parameters_and_translate_to_spark() -> None:
    d = default_definitions()
    sql, params = components_sql(
        d,
        version=1,
        school_year=2026,
        start_month=7,
        year_begin=date(2025, 7, 1),
        cutoff=date(2026, 6, 30),
    )
    # configured codes travel as parameters, never spliced into the SQL text
    assert (
        "Excused Absence" not in sql
        and ["Excused Absence", "Unexcused Absence"] in params.values()
    )
    assert "Out of School Suspension" not in sql
    assert "$p1" in sql and params["p1"] == 2026
    person = person_indicators_sql(d)
    assert "attendance_rate < 0.9" in person and "gpa <= 2.0" in person
    for text in (sql, person):
        spark = sqlglot.transpile(text, read="duckdb", write="spark")[0]
        assert "MAX_BY" in spark.upper()


def test_cut_points_come_from_the_definitions() -> None:
    d = default_definitions()
    stricter = d.model_copy(
        update={"attendance": d.attendance.model_copy(update={"chronic_below": 0.85})}
    )
    assert "attendance_rate < 0.85" in person_indicators_sql(stricter)


# --- values and tiers, by hand --------------------------------------------------


def test_components_per_record_match_the_hand_worked_facts(wh: Warehouse) -> None:
    rows = {
        (r["provider_partner_id"], r["student_local_id"]): r
        for r in wh._con.sql(
            "SELECT * FROM analytic.student_indicator WHERE as_of_date = ?",
            params=[YEAR_END],
        )
        .to_arrow_table()
        .to_pylist()
    }
    assert len(rows) == 56  # 54 persons: one with two district records, one in c1
    a1 = rows[("d1", "a1")]
    assert (a1["days_enrolled"], a1["days_absent"], a1["conduct_incidents"]) == (
        9,
        1.5,
        2,
    )
    assert (rows[("d1", "a2")]["days_enrolled"], rows[("d1", "a2")]["days_absent"]) == (
        5,
        1,
    )
    b2 = rows[("d2", "b2")]
    assert (b2["days_enrolled"], b2["days_absent"], b2["suspension_days"]) == (4, 2, 2)
    a3 = rows[("d1", "a3")]
    assert a3["ela_mark_total"] / a3["ela_marks"] == 65
    assert (a3["core_course_fails"], a3["credits_earned"], a3["terms_completed"]) == (
        1,
        2.5,
        2,
    )
    assert (a3["gpa"], a3["cumulative_credits"], a3["state_offenses"]) == (1.9, 2.5, 1)
    a4 = rows[("d1", "a4")]
    assert (a4["conduct_incidents"], a4["suspensions"]) == (
        0,
        0,
    )  # a victim; no suspension
    assert rows[("c1", "k4")]["programs"] == 1
    assert {r["definition_version"] for r in rows.values()} == {1}


def test_steward_roster_tiers_match_the_hand_worked_answers(wh: Warehouse) -> None:
    roster = _roster(wh, "steward")
    persons = _by_person(roster.table)
    assert len(persons) == 54
    tiers = [r["tier"] for r in persons.values()]
    assert (
        tiers.count("on track"),
        tiers.count("watch"),
        tiers.count("high risk"),
    ) == (31, 21, 2)
    a1 = persons[1]
    assert a1["attendance_rate"] == pytest.approx(1 - 1.5 / 9)
    assert (a1["attendance_level"], a1["attendance_severe"], a1["behavior_level"]) == (
        2,
        False,
        1,
    )
    assert (a1["points"], a1["tier"]) == (3, "watch")
    a3 = persons[3]
    assert (a3["course_mark_level"], a3["course_fail_level"], a3["gpa_level"]) == (
        1,
        1,
        2,
    )
    assert (a3["on_track_9"], a3["credits_behind"], a3["tier"]) == (
        False,
        True,
        "high risk",
    )
    assert "1 state offense(s)" in a3["flags"] and "off track in grade 9" in a3["flags"]
    assert persons[4]["in_program"] is True and persons[4]["tier"] == "on track"
    assert persons[101]["attendance_rate"] == pytest.approx(8 / 9)
    # worst first
    assert roster.table.column("tier").to_pylist()[:2] == ["high risk", "high risk"]


def test_a_student_who_moved_districts_mid_year_is_counted_across_both(
    wh: Warehouse,
) -> None:
    moved = _by_person(_roster(wh, "steward").table)[2]
    assert (moved["days_enrolled"], moved["days_absent"]) == (9, 3)
    assert moved["attendance_rate"] == pytest.approx(6 / 9)
    assert moved["attendance_severe"] is True
    assert (moved["district"], moved["school_id"]) == ("d2", "T1")
    assert moved["records"] == ["d1:a2", "d2:b2"]
    assert (moved["suspension_level"], moved["tier"]) == (2, "high risk")


def test_in_year_snapshot_counts_only_what_happened_by_its_day(wh: Warehouse) -> None:
    steward = wh.access(wh.users.get("steward"), "early_warning")
    (snap,) = _compute(wh, as_of=date(2025, 8, 29))
    assert (snap.school_year, snap.as_of) == (2026, date(2025, 8, 29))
    persons = _by_person(wh.indicators.roster(steward, as_of=date(2025, 8, 29)).table)
    assert persons[1]["days_enrolled"] == 5 and persons[1]["days_absent"] == 1.5
    assert persons[1]["attendance_severe"] is True  # 70% so far
    assert persons[1]["behavior_level"] == 0  # the second incident came later
    assert persons[2]["district"] == "d1"  # not yet in d2
    assert persons[3]["tier"] == "on track"  # no marks final, no offense yet


def test_computing_again_replaces_the_snapshot(wh: Warehouse) -> None:
    _compute(wh)
    n = wh._con.execute("SELECT count(*) FROM analytic.student_indicator").fetchone()
    assert n == (56,)


def test_computing_is_the_stewards_and_is_audited(wh: Warehouse) -> None:
    with pytest.raises(Forbidden):
        _compute(wh, "d1.analyst")
    actions = [e["action"] for e in wh.audit.entries()]
    assert "derive" in actions


# --- what each reader may see ---------------------------------------------------


def test_a_district_sees_its_own_students_and_no_other_districts_rows(
    wh: Warehouse,
) -> None:
    roster = _roster(wh, "d1.analyst")
    persons = _by_person(roster.table)
    assert len(persons) == 34  # a1-a4 and 30 others; none of d2's own students
    assert not set(persons) & set(range(101, 121))
    # d2's rows about the student who moved are d2's to share, and it does not
    assert "d2" in roster.refused
    moved = persons[2]
    assert (moved["days_enrolled"], moved["days_absent"]) == (5, 1)
    assert (moved["suspension_level"], moved["tier"]) == (0, "watch")
    assert moved["records"] == ["d1:a2"]  # its own handle on the student
    entry = [
        e for e in wh.audit.entries() if e["what"].startswith("early-warning roster")
    ][-1]
    assert entry["actor"] == "d1.analyst" and entry["providers"] == ["d1"]


def test_pseudonymous_rows_are_never_attached_to_a_known_student(
    wh: Warehouse,
) -> None:
    roster = _roster(wh, "d1.analyst")
    # c1 shares with d1 only as pseudonyms: its row stays out of d1's persons
    assert "pseudonymously" in roster.refused["c1"]
    assert _by_person(roster.table)[4]["in_program"] is False
    assert roster.providers == ("d1",)
    # and the roster's person keys match none of the pseudonyms d1 can read (as
    # the policy permits them, before a history too rare to leave is withheld)
    pseudonyms = set(
        wh.access(wh.users.get("d1.analyst"), "early_warning")
        ._materialize("program_participation", providers=["c1"])
        .table.column("pseudonym")
        .to_pylist()
    )
    assert pseudonyms and not pseudonyms & set(roster.table.column("unit").to_pylist())


def test_a_club_sharing_identified_shows_schools_who_it_serves(tmp_path: Path) -> None:
    build(tmp_path / "wh", club_access="identified")
    with Warehouse.open(tmp_path / "wh", clock=lambda: NOW) as wh:
        _compute(wh)
        roster = _roster(wh, "d1.analyst")
        assert roster.providers == ("c1", "d1")
        assert _by_person(roster.table)[4]["in_program"] is True
        not_served = _roster(wh, "d1.analyst", not_served=True)
        assert 4 not in _by_person(not_served.table)
        assert not_served.table.num_rows == 33


def test_a_funder_gets_no_roster_and_the_refusal_is_recorded(wh: Warehouse) -> None:
    with pytest.raises(PolicyDenied):
        _roster(wh, "f1.viewer")
    assert wh.audit.entries()[-1]["decision"] == "deny"


def test_roster_filters(wh: Warehouse) -> None:
    high = _roster(wh, "steward", tiers=["high risk"])
    assert sorted(_by_person(high.table)) == [2, 3]
    at_t1 = _roster(wh, "steward", school="T1")
    assert len(at_t1.table) == 21  # the 20 at T1 and the student who moved there
    tenth = _roster(wh, "steward", grade="Tenth grade", district="d2")
    assert sorted(_by_person(tenth.table)) == list(range(101, 121))
    with pytest.raises(UserError, match="unknown tier"):
        _roster(wh, "steward", tiers=["doomed"])


# --- counts through the release gate --------------------------------------------


def _cells(release: Any, key: str) -> dict[str, Any]:
    return {str(r[key]): r["persons"] for r in release.table.to_pylist()}


def test_segments_count_persons_once_and_suppress_small_groups(wh: Warehouse) -> None:
    steward = wh.access(wh.users.get("steward"), "early_warning")
    total = wh.indicators.count(steward, [])
    assert total.table.column("persons").to_pylist() == [54]  # not 55 records
    tiers = _cells(wh.indicators.count(steward, ["tier"]), "tier")
    assert tiers["high risk"] is None  # 2 persons
    # and it cannot be worked out from what was published
    known = [tiers["on track"], tiers["watch"], tiers["(all)"]]
    assert None in known


def test_a_district_counts_only_what_its_agreements_give_it(wh: Warehouse) -> None:
    d2 = wh.access(wh.users.get("d2.analyst"), "early_warning")
    release = wh.indicators.count(d2, [])
    # d2's own 21 students; d1 shares with d2 only for shared_measurement
    assert release.table.column("persons").to_pylist() == [21]


def test_count_refuses_unknown_dimensions(wh: Warehouse) -> None:
    steward = wh.access(wh.users.get("steward"), "early_warning")
    with pytest.raises(UserError, match="cannot count by"):
        wh.indicators.count(steward, ["student_local_id"])


def test_a_trend_is_a_share_per_group_and_school_year(wh: Warehouse) -> None:
    steward = wh.access(wh.users.get("steward"), "early_warning")
    years = sorted({s.school_year for s in wh.indicators.snapshots()})
    trend = wh.indicators.trend(steward, "district", {"tier": ["high risk"]})
    # the same release as counting by group and year over every year's snapshot
    assert (
        trend.table.column_names
        == wh.indicators.count(
            steward,
            ["district", "school_year"],
            years=years,
            numerator={"tier": ["high risk"]},
        ).table.column_names
    )
    assert {"district", "school_year"} <= set(trend.table.column_names)
    with pytest.raises(UserError, match="pick a group"):
        wh.indicators.trend(steward, "school_year", {"tier": ["high risk"]})


def test_tier_transitions_between_two_snapshots(wh: Warehouse) -> None:
    steward = wh.access(wh.users.get("steward"), "early_warning")
    (early,) = _compute(wh, as_of=date(2025, 8, 29))
    late = wh.indicators.snapshot(as_of=YEAR_END)
    release = wh.indicators.transitions(steward, early, late)
    cells = {
        (r["tier_before"], r["tier_after"]): r["persons"]
        for r in release.table.to_pylist()
    }
    assert cells[("(all)", "(all)")] == 54
    assert cells[("on track", "(all)")] == 32  # a3, a4 and the 30 others
    assert cells[("watch", "(all)")] == 22  # a1, a2 and the 20 at T1
    assert cells[("on track", "high risk")] is None  # a3 alone
    assert cells[("watch", "high risk")] is None  # a2 alone


# --- definitions ------------------------------------------------------------------


def test_definitions_are_versioned_and_values_keep_theirs(
    wh: Warehouse, tmp_path: Path
) -> None:
    store = wh.indicators.definitions
    assert store.current().version == 1
    stricter = default_text().replace("chronic_below: 0.90", "chronic_below: 0.85")
    path = tmp_path / "ours.yaml"
    path.write_text(stricter)
    with wh.session(wh.users.get("steward")) as s:
        assert store.record_file(s, path) == 2
        assert store.record_file(s, path) == 2  # the same text: no new version
    assert store.get(1).attendance.chronic_below == 0.90
    old = _by_person(_roster(wh, "steward").table)
    assert old[101]["attendance_level"] == 2  # 88.9% < 90%: v1's snapshot
    _compute(wh)
    new = _by_person(_roster(wh, "steward").table)
    assert new[101]["attendance_level"] == 1  # 88.9% ≥ 85%, < 95%
    assert new[101]["definition_version"] == 2


def test_bad_definitions_name_the_field(tmp_path: Path, wh: Warehouse) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(default_text().replace("warning_below: 0.95", "warning_below: 0.5"))
    with (
        pytest.raises(InputFileError, match="attendance") as err,
        wh.session(wh.users.get("steward")) as s,
    ):
        wh.indicators.definitions.record_file(s, path)
    assert str(path) in str(err.value)
    assert wh.indicators.definitions.current().version == 1


# --- retention ----------------------------------------------------------------------


def test_destroying_a_providers_facts_destroys_what_was_derived_from_them(
    wh: Warehouse,
) -> None:
    due = Due("d2", "attendance_event", "DSA-D2@1", date(2026, 6, 30), date(2026, 7, 1))
    with wh.session(wh.users.get("steward")) as s:
        purge = wh.retention._purge(s, "d2", [due], "test", [])
    assert purge.rows["analytic.student_indicator"] == 21
    left = wh._con.execute(
        "SELECT count(*) FROM analytic.student_indicator WHERE provider_partner_id = 'd2'"
    ).fetchone()
    assert left == (0,)


def test_year_bounds_follow_the_school_year_start(wh: Warehouse) -> None:
    ind: Indicators = wh.indicators
    assert ind.year_bounds(2026) == (date(2025, 7, 1), date(2026, 6, 30))
    assert ind.school_year_of(date(2025, 8, 29)) == 2026
