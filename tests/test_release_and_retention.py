"""The release gate against differencing, and retention with a fake clock."""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from backbone import Warehouse
from backbone.errors import PolicyDenied
from backbone.governance.audit import canonical_json
from backbone.governance.release import _rates
from backbone.governance.retention import DestructionCertificate, Purge
from tests.policy_fixtures import NOW, Clock, build, club_agreement, user


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("release") / "wh"
    build(path)
    return path


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def folder(built: Path, tmp_path: Path) -> Path:
    shutil.copytree(built, tmp_path / "wh")
    return tmp_path / "wh"


@pytest.fixture
def wh(folder: Path, clock: Clock) -> Iterator[Warehouse]:
    with Warehouse.open(folder, clock=clock) as w:
        yield w


def _persons(release: object) -> dict[tuple[str, ...], int | None]:
    table = release.table  # type: ignore[attr-defined]
    dims = [c for c in table.column_names if c not in ("persons", "note")]
    return {tuple(str(r[d]) for d in dims): r["persons"] for r in table.to_pylist()}


# --- the release gate -----------------------------------------------------------------


def test_counts_with_margins_and_the_strictest_minimum(wh: Warehouse) -> None:
    release = wh.access(user(wh, "f1.viewer"), "program_evaluation").count(
        "enrollment", ["school_id"]
    )
    assert _persons(release) == {("(all)",): 70, ("S1",): 30, ("S2",): 10, ("T1",): 30}
    assert release.suppressed == 0 and release.agreements == ("DSA-D1@1", "DSA-D2@1")
    thresholds = dict(
        wh._con.execute(
            "SELECT label, threshold FROM gov.release_cell WHERE release_id = ?",
            [release.release_id],
        ).fetchall()
    )
    # d1 agreed to 10, d2 to 11: a cell holding d2's students takes 11
    assert thresholds == {'["(all)"]': 11, '["S1"]': 10, '["S2"]': 10, '["T1"]': 11}


def test_a_small_cell_and_its_complement_are_suppressed(wh: Warehouse) -> None:
    release = wh.access(user(wh, "steward"), "shared_measurement").count(
        "demographics", ["english_learner"]
    )
    # 3 English learners < 10; with the total (40) published, the 37 would give the
    # 3 away, so it goes too
    assert _persons(release) == {("(all)",): 40, ("false",): None, ("true",): None}
    # the notes say no more than the cells: which one was small is not told (with
    # the total of 40 it would pin the 3 between 1 and 9 ... or the 37)
    notes = {r["english_learner"]: r["note"] for r in release.table.to_pylist()}
    assert notes["true"] == notes["false"] == "suppressed"


def test_differencing_total_minus_subgroup_is_blocked(wh: Warehouse) -> None:
    steward = wh.access(user(wh, "steward"), "shared_measurement")
    first = steward.count("demographics", [])
    assert _persons(first) == {("(all)",): 40}
    # 40 students, then 37 who are not English learners: 3 would be known
    second = steward.count("demographics", [], where={"english_learner": ["false"]})
    assert _persons(second) == {("(all)",): None}
    # the same attack by a different principal is audited against the same ledger
    other = wh.access(user(wh, "analyst"), "shared_measurement")
    third = other.count("demographics", [], where={"english_learner": ["false"]})
    assert _persons(third) == {("(all)",): None}


def test_links_made_between_releases_do_not_open_a_difference(wh: Warehouse) -> None:
    # the first table is counted while d1's records are not linked yet...
    links = wh._con.execute(
        "SELECT * FROM identity.record_person WHERE partner_id = 'd1'"
    ).fetchall()
    wh._con.execute("DELETE FROM identity.record_person WHERE partner_id = 'd1'")
    steward = wh.access(user(wh, "steward"), "shared_measurement")
    assert _persons(steward.count("demographics", [])) == {("(all)",): 40}
    # ...the second after linking gave every record a person: the ledger follows
    # the records to their persons, so 40 - 37 still cannot be published
    wh._con.executemany(
        "INSERT INTO identity.record_person VALUES (?, ?, ?, ?, ?)", links
    )
    second = steward.count("demographics", [], where={"english_learner": ["false"]})
    assert _persons(second) == {("(all)",): None}


def test_a_merge_after_a_release_does_not_block_later_ones(wh: Warehouse) -> None:
    steward = wh.access(user(wh, "steward"), "shared_measurement")
    first = steward.count("enrollment", ["school_id"])
    assert _persons(first)[("(all)",)] == 70
    # linking later finds d2-01 to be d1-01's person: the first release keeps the
    # persons it counted, so the ledger stays consistent with what it published
    wh._con.execute(
        "UPDATE identity.record_person SET person_id = 1 "
        "WHERE partner_id = 'd2' AND local_id = 'd2-01'"
    )
    later = steward.count("enrollment", ["entry_grade_level"])
    counts = _persons(later)
    # not refused; the new total (69 against the 70 counted before the merge) and
    # a complement are held back, so the merge stays unseen
    assert counts[("Ninth grade",)] == 49
    assert counts[("(all)",)] is None and later.suppressed == 2


def test_differencing_this_year_minus_last_is_blocked(wh: Warehouse) -> None:
    # d1's analyst counts d1's own rows (every year) and d2's (as d2's agreement
    # grants for shared measurement): 40 + 30 enrolled in 2026
    own = wh.access(user(wh, "d1.analyst"), "shared_measurement")
    this_year = own.count("enrollment", [], where={"school_year": [2026]})
    assert _persons(this_year) == {("(all)",): 70}
    # everyone enrolled in 2024 or 2026 is 73: the 3 who left would be exposed
    both = own.count("enrollment", [], where={"school_year": [2024, 2026]})
    assert _persons(both) == {("(all)",): None}
    by_year = own.count("enrollment", ["school_year"])
    published = {k: v for k, v in _persons(by_year).items() if v is not None}
    assert ("2024",) not in published  # 8 persons in 2024 < 10


def test_rates_hide_small_counts_and_what_would_reveal_them(wh: Warehouse) -> None:
    release = wh.access(user(wh, "steward"), "shared_measurement").rate(
        "enrollment", ["school_id"], {"entry_grade_level": ["Ninth grade"]}
    )
    rows = {r["school_id"]: r for r in release.table.to_pylist()}
    # S1: 15 of 30 in ninth grade; S2: 5 of 10 (too few); T1: all 30; all schools:
    # 50 of 70. With the total and T1's numerator published, S1's 15 would give
    # S2's 5 away, so it goes too: S2's 5 (and the other 5) can then be anything
    # from 0 to 10.
    assert rows["S2"]["rate"] == "*" and rows["S2"]["matching"] is None
    assert rows["S1"]["rate"] == "*" and rows["S1"]["persons"] == 30
    assert rows["(all)"]["rate"] == "71.4%"
    # beside the text, the number a chart or an API uses; none where the text hides it
    assert rows["(all)"]["rate_value"] == pytest.approx(50 / 70)
    assert rows["S1"]["rate_value"] is None and rows["S2"]["rate_value"] is None
    # d2 codes rates above 95%: its school's 100% would be ">95%", but with its
    # counts beside it (30 persons, none in the rest) the coding would say "all";
    # the coded counts are suppressed as small, and so the row goes
    assert rows["T1"]["rate"] == "*" and rows["T1"]["matching"] is None
    assert rows["T1"]["persons"] is None and rows["T1"]["rate_value"] is None


def test_differential_privacy_spends_a_budget_and_never_mixes(wh: Warehouse) -> None:
    steward = wh.access(user(wh, "steward"), "shared_measurement")
    release = steward.count("enrollment", ["school_id"], epsilon=0.6)
    assert release.mode == "dp" and release.epsilon == 0.6 and release.accuracy
    assert wh.gate.budget("DSA-D1") == pytest.approx(0.6)
    with pytest.raises(PolicyDenied, match="privacy budget is spent"):
        steward.count("enrollment", ["entry_grade_level"], epsilon=0.5)
    steward.count("demographics", ["english_learner"])
    with pytest.raises(PolicyDenied, match="released with suppression"):
        steward.count("demographics", ["english_learner"], epsilon=0.1)
    with pytest.raises(PolicyDenied, match="sets no differential-privacy budget"):
        wh.access(user(wh, "steward"), "early_warning").count(
            "program_participation", ["program_id"], epsilon=0.1
        )


def test_the_gate_refuses_what_the_agreements_refuse(wh: Warehouse) -> None:
    with pytest.raises(PolicyDenied):
        wh.access(user(wh, "f1.viewer"), "early_warning").count(
            "enrollment", ["school_id"]
        )
    with pytest.raises(PolicyDenied, match="may not aggregate"):
        wh.access(user(wh, "d1.uploader"), "early_warning").count("enrollment", [])
    from backbone.errors import UserError

    with pytest.raises(UserError, match="identifies a person"):
        wh.access(user(wh, "steward"), "early_warning").count(
            "enrollment", ["student_local_id"]
        )


# --- retention --------------------------------------------------------------------------


def _plant_flows(wh: Warehouse) -> Path:
    """Rows of every kind a provider's data flows into, for d1 and c1."""
    raw = wh.path / "raw" / "ab" / ("ab" * 32)
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text("local_id,first_name\nd1-01,First1\n", encoding="utf-8")
    con = wh._con
    con.execute(
        "INSERT INTO ops.submission VALUES (1, 'd1', 'records', 'students.csv', ?, 40, ?, ?, "
        "'loaded', 2, 1, 1, NULL, 0)",
        ["ab" * 32, "raw/ab/" + "ab" * 32, NOW],
    )
    con.execute(
        "INSERT INTO ops.submission_target VALUES (1, 'partner_record', 2, 1, 1, 0, NULL, 0)"
    )
    con.execute(
        "INSERT INTO ops.quarantine VALUES (1, 'partner_record', 3, ['bad_date'], "
        "['birth_date is not a date'], '{\"local_id\": \"d1-99\"}')"
    )
    con.execute(
        "INSERT INTO identity.encoding VALUES ('c1', 'c1-1', 'AAAA', 'backbone', ?)",
        [NOW],
    )
    con.execute(
        "INSERT INTO identity.link_edge VALUES ('c1', 'c1-1', 'd1', 'd1-01', 1, 'model', 9.0, "
        "0.99, 'link', NULL)"
    )
    con.execute(
        "INSERT INTO identity.person_event VALUES (1, 'merge', 1, 7, 1, ?, ?)",
        [
            '[{"left": "c1:c1-1", "right": "d1:d1-01", "method": "model"}, '
            '{"left": "d1:d1-02", "right": "d2:d2-05", "method": "model"}]',
            NOW,
        ],
    )
    (wh.path / "reports").mkdir(exist_ok=True)
    (wh.path / "reports" / "submission-1.html").write_text(
        "d1-99 First99", encoding="utf-8"
    )
    return raw


def _run_retention(wh: Warehouse) -> list[Purge]:
    """The retention schedule's daily step, run by the steward admin."""
    with wh.session(user(wh, "steward")) as s:
        return wh.retention.run(s)


def _count(wh: Warehouse, sql: str) -> int:
    return int(wh._con.execute(sql).fetchall()[0][0])


def test_nothing_is_destroyed_before_it_is_due_but_access_ends(
    folder: Path, clock: Clock
) -> None:
    with Warehouse.open(folder, clock=clock) as wh:
        _plant_flows(wh)
    clock.now = datetime(2027, 7, 15)  # agreements ended 2027-06-30; due 30 days later
    with Warehouse.open(folder, clock=clock) as wh:
        assert wh.retention.due() == []
        assert _count(wh, "SELECT count(*) FROM analytic.enrollment") == 78
        with pytest.raises(PolicyDenied, match="expired"):
            wh.access(user(wh, "steward"), "early_warning").rows("enrollment")


def test_retention_purges_everywhere_with_a_certificate(
    folder: Path, clock: Clock
) -> None:
    with Warehouse.open(folder, clock=clock) as wh:
        raw = _plant_flows(wh)
    clock.now = datetime(2027, 7, 31, 6)
    with Warehouse.open(folder, clock=clock) as wh:
        _run_retention(wh)  # the schedule's daily run
        for table, column in (
            ("analytic.enrollment", "provider_partner_id"),
            ("analytic.demographics", "provider_partner_id"),
            ("analytic.program_participation", "provider_partner_id"),
            ("analytic.consent", "provider_partner_id"),
            ("identity.partner_record", "partner_id"),
            ("identity.record_person", "partner_id"),
            ("identity.encoding", "partner_id"),
            ("identity.link_edge", "partner_id_l"),
        ):
            assert _count(wh, f"SELECT count(*) FROM {table}") == 0, table
            del column
        assert _count(wh, "SELECT count(*) FROM ops.quarantine") == 0
        assert not (wh.path / "reports" / "submission-1.html").exists()
        assert wh._con.execute(
            "SELECT evidence FROM identity.person_event"
        ).fetchall() == [("[]",)]
        assert (
            _count(wh, "SELECT count(*) FROM identity.person WHERE retired_at IS NULL")
            == 0
        )
        assert not raw.exists()
        purges = wh._con.execute(
            "SELECT provider_partner_id, due_on, certificate FROM gov.purge ORDER BY 1"
        ).fetchall()
        assert [p[0] for p in purges] == ["c1", "d1", "d2"]
        assert all(p[1] == date(2027, 7, 30) for p in purges)
        d1 = json.loads(purges[1][2])
        assert d1["rows"]["analytic.enrollment"] == 48 and d1["raw_files"] == [
            "ab" * 32
        ]
        assert d1["agreements"] == ["DSA-D1@1"] and len(d1["sha256"]) == 64
        # the seal covers the rest of the certificate
        body = {k: v for k, v in d1.items() if k != "sha256"}
        assert (
            d1["sha256"]
            == hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()
        )
        certificate = wh.retention.certificates()[1].certificate
        assert certificate == DestructionCertificate.from_json(d1)
        assert certificate.as_json() == d1
        assert (certificate.name, certificate.provider) == ("destruction-2", "d1")
        assert certificate.due_on == date(2027, 7, 30)
        assert certificate.destroyed_at == datetime(2027, 7, 31, 6)
        logged = wh.audit.entries(action="purge")
        assert [e.providers for e in logged] == [("c1",), ("d1",), ("d2",)]
        assert logged[1].detail["certificate"] == d1
        assert wh.audit.verify().ok
        # no agreement names the districts or the club any more: their users are off
        assert user(wh, "d1.analyst").disabled and not user(wh, "steward").disabled
        assert _run_retention(wh) == []  # nothing twice


def test_a_fixed_destruction_date_holds_while_the_agreement_runs(
    folder: Path, clock: Clock, tmp_path: Path
) -> None:
    with Warehouse.open(folder, clock=clock) as wh:
        doc = copy.deepcopy(club_agreement())
        doc["retention"] = {"destroy_after_days": 30, "destroy_by": "2026-03-01"}
        path = tmp_path / "destroy.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        with wh.session(user(wh, "steward")) as s:
            wh.agreements.amend(
                s, "DSA-C1", path, effective=date(2026, 3, 1), summary="destroy early"
            )
        [purge] = _run_retention(wh)
        assert purge.provider == "c1" and purge.certificate.due_on == date(2026, 3, 1)
        assert _count(wh, "SELECT count(*) FROM analytic.program_participation") == 0


def test_a_terminated_agreement_purges_only_its_provider(
    folder: Path, clock: Clock, tmp_path: Path
) -> None:
    with Warehouse.open(folder, clock=clock) as wh:
        _plant_flows(wh)
        doc = copy.deepcopy(club_agreement())
        doc["status"] = "terminated"
        doc["termination"] = {"notice_days": 0, "destroy_within_days": 0}
        path = tmp_path / "end.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        with wh.session(user(wh, "steward")) as s:
            wh.agreements.amend(
                s, "DSA-C1", path, effective=date(2026, 3, 1), summary="club closed"
            )
        purges = _run_retention(wh)
        assert [p.provider for p in purges] == ["c1"]
        assert _count(wh, "SELECT count(*) FROM analytic.program_participation") == 0
        assert _count(wh, "SELECT count(*) FROM identity.encoding") == 0
        assert (
            _count(
                wh,
                "SELECT count(*) FROM identity.partner_record WHERE partner_id = 'c1'",
            )
            == 0
        )
        assert _count(wh, "SELECT count(*) FROM analytic.enrollment") == 78
        # persons 1-6 still have their district records: nobody was retired
        assert (
            _count(
                wh, "SELECT count(*) FROM identity.person WHERE retired_at IS NOT NULL"
            )
            == 0
        )
        with pytest.raises(PolicyDenied):
            wh.access(user(wh, "d1.analyst"), "early_warning").rows(
                "program_participation", providers=["c1"]
            )
        # the club is still a recipient of the districts' data, so its users keep
        # their accounts; but with its own records gone no student is in its scope
        assert not user(wh, "c1.analyst").disabled
        assert (
            wh.access(user(wh, "c1.analyst"), "early_warning")
            .rows("enrollment")
            .table.num_rows
            == 0
        )


def test_a_coded_rate_carries_no_number() -> None:
    """A top-coded rate shows ">95%" and no fraction (the number would undo the
    coding); a plain one shows both, the fraction exact from the released counts."""
    labels = []
    persons = []
    for school, den, num in (("A", 400, 390), ("B", 200, 120)):
        lab = json.dumps([school])
        labels += [lab, "#" + lab, "!" + lab]
        persons += [den, num, den - num]
    table = pa.table({"persons": persons})
    rates = _rates(["school_id"], table, labels, np.full(6, 10), (95.0, 5.0))
    rows = {r["school_id"]: r for r in rates.to_pylist()}
    assert (rows["A"]["rate"], rows["A"]["rate_value"]) == (">95%", None)
    assert rows["A"]["matching"] is None
    assert (rows["B"]["rate"], rows["B"]["rate_value"]) == ("60.0%", 0.6)
    assert rates.schema.field("rate_value").type == pa.float64()


def test_a_chain_of_releases_cannot_difference_out_a_small_group(
    wh: Warehouse,
) -> None:
    # X counts b (T1's 30), Y counts a ∪ b (S1's 33 in any year, and T1's 30); Z
    # counts a' ⊂ a (S1's 30 of 2026). Z shares no one with X, yet Y - X - Z
    # would give the 3 who were at S1 only in 2024: X must be audited with Z.
    # d1's analyst sees d1's rows of every year and d2's (see the test above)
    steward = wh.access(user(wh, "d1.analyst"), "shared_measurement")
    x = steward.count("enrollment", [], where={"school_id": ["T1"]})
    assert _persons(x) == {("(all)",): 30}
    y = steward.count("enrollment", [], where={"school_id": ["S1", "T1"]})
    assert _persons(y) == {("(all)",): 63}
    z = steward.count(
        "enrollment", [], where={"school_id": ["S1"], "school_year": [2026]}
    )
    assert _persons(z) == {("(all)",): None}


def test_a_table_of_cells_already_released_keeps_their_decisions(
    wh: Warehouse,
) -> None:
    steward = wh.access(user(wh, "d1.analyst"), "shared_measurement")
    first = steward.count("enrollment", ["school_id"])
    before = _persons(first)
    assert before[("T1",)] == 30
    # T1 alone, by school: its cell and its total both count T1's persons, already
    # published; they are in the span of what is public, so no audit is needed,
    # and the decisions are the same
    again = steward.count("enrollment", ["school_id"], where={"school_id": ["T1"]})
    assert _persons(again) == {("(all)",): 30, ("T1",): 30}
    flag = wh._con.execute(
        "SELECT json_extract(definition, '$.in_span') FROM gov.release "
        "WHERE release_id = ?",
        [again.release_id],
    ).fetchall()
    assert flag == [("true",)]
    # 2024 was suppressed (8 persons): alone it stays suppressed, total and all
    small = steward.count("enrollment", ["school_year"], where={"school_year": [2024]})
    assert set(_persons(small).values()) == {None}


def test_a_margin_of_a_table_published_in_full_needs_no_audit(
    wh: Warehouse,
) -> None:
    viewer = wh.access(user(wh, "f1.viewer"), "program_evaluation")
    first = viewer.count("enrollment", ["school_id"])
    assert _persons(first) == {("(all)",): 70, ("S1",): 30, ("S2",): 10, ("T1",): 30}
    # S1 and S2 together: 30 + 10, both published; no one learns anything new
    both = viewer.count("enrollment", [], where={"school_id": ["S1", "S2"]})
    assert _persons(both) == {("(all)",): 40}
    # S1's students of 2024 are part of a school: not a sum of published cells,
    # so the LP audit decides
    other = viewer.count(
        "enrollment", [], where={"school_id": ["S1"], "school_year": [2024]}
    )
    flags = dict(
        wh._con.execute(
            "SELECT release_id, json_extract(definition, '$.in_span') "
            "FROM gov.release WHERE release_id IN (?, ?)",
            [both.release_id, other.release_id],
        ).fetchall()
    )
    assert flags == {both.release_id: "true", other.release_id: None}


def test_one_agreement_field_switches_its_data_to_differential_privacy(
    wh: Warehouse, tmp_path: Path
) -> None:
    from tests.policy_fixtures import district_agreement

    doc = district_agreement("d1", 10)
    doc["version"] = 2
    doc["publication"] = {
        **doc["publication"],
        "method": "differential_privacy",
        "dp_budget": {"epsilon": 1.0, "epsilon_per_release": 0.25},
    }
    path = tmp_path / "dsa-d1-v2.yaml"
    path.write_text(yaml.safe_dump(json.loads(json.dumps(doc, default=str))))
    with wh.session(user(wh, "steward")) as s:
        amended = wh.agreements.amend(
            s, "DSA-D1", path, effective=NOW.date(), summary="Noisy counts from now on."
        )
    assert [c.describe() for c in amended.changes] == [
        "publication.method: suppression -> differential_privacy"
    ]
    steward = wh.access(user(wh, "steward"), "shared_measurement")
    # no epsilon asked: d1's data leaves as noisy counts, 0.25 of its budget each
    first = steward.count("demographics", ["english_learner"])
    assert first.mode == "dp" and first.epsilon == 0.25
    steward.count("demographics", [])
    assert wh.gate.budget("DSA-D1") == pytest.approx(0.5)
    # rates and derived measures of its data are not released at all
    with pytest.raises(PolicyDenied, match="differential privacy"):
        steward.rate(
            "enrollment", ["school_id"], {"entry_grade_level": ["Ninth grade"]}
        )


def test_past_its_audit_capacity_the_gate_refuses_on_public_figures(
    folder: Path, clock: Clock
) -> None:
    (folder / "backbone.toml").write_text(
        "[governance]\naudit_capacity = 5\n", encoding="utf-8"
    )
    with Warehouse.open(folder, clock=clock) as wh:
        analyst = wh.access(user(wh, "d1.analyst"), "shared_measurement")
        first = analyst.count("enrollment", ["school_id"])  # 4 cells: under 5
        analyst.count("enrollment", ["school_year"])  # 4 before: still under
        # 7 cells released: refused whatever the counts, naming the way out
        with pytest.raises(PolicyDenied, match=r"publication\.method"):
            analyst.count("enrollment", ["entry_grade_level"])
        # asking for exactly a released table again still works (no audit)
        assert _persons(analyst.count("enrollment", ["school_id"])) == _persons(first)


def test_the_audit_hands_the_warehouse_back_while_it_computes(
    wh: Warehouse, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    import backbone.governance.disclosure as disclosure

    real_protect = disclosure.protect
    seen: list[int] = []
    writer = (
        "import duckdb, sys\n"
        "c = duckdb.connect(sys.argv[1])\n"
        "c.execute('INSERT INTO gov.release SELECT release_id + 1000, released_at, "
        "user_id, partner_id, purpose, definition, agreements, providers, mode, "
        "cells, suppressed, epsilon FROM gov.release')\n"
        "print(c.execute('SELECT count(*) FROM gov.release').fetchall()[0][0])\n"
    )

    def protect_while_another_writes(*args: object, **kwargs: object) -> object:
        # another process can open the file and write the ledger meanwhile
        if not seen:
            done = subprocess.run(
                [sys.executable, "-c", writer, str(folder / "backbone.duckdb")],
                capture_output=True,
                text=True,
                check=True,
            )
            seen.append(int(done.stdout))
        else:
            seen.append(-1)
        return real_protect(*args, **kwargs)  # type: ignore[arg-type]

    steward = wh.access(user(wh, "d1.analyst"), "shared_measurement")
    steward.count("enrollment", ["school_id"])
    monkeypatch.setattr(disclosure, "protect", protect_while_another_writes)
    release = steward.count("enrollment", ["entry_grade_level"])
    # the ledger changed during the audit: it was audited again, holding the file
    assert seen == [2, -1]
    assert release.release_id > 0 and _persons(release)[("(all)",)] is not None
