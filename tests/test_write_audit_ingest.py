"""Submissions and linkage writes are authorized and audited inside their stages:
submit, encodings, raw-file decisions, review decisions and the linkage run.

For each write: with no one signed in it is refused as "who are you" and changes
nothing; a signed-in user whose role or partner may not do it is refused with 403,
changes nothing and leaves exactly one deny entry; the user who may leaves exactly
one audit entry (for a submission: one per stored submission), in the same
transaction as the change.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from backbone import Warehouse
from backbone.errors import Forbidden, UserError
from backbone.governance import Principal, Role
from backbone.linkage import RecordKey
from backbone.linkage.pprl import BITS

from .ingest_fixtures import (
    ATTENDANCE,
    ENROLLMENTS,
    MAPPINGS,
    csv_file,
    make_warehouse,
)
from .write_audit import (
    Case,
    one_entry_per_write,
    refusal_is_audited,
    snapshot,
    unsigned_changes_nothing,
)

ON = date(2026, 1, 20)
USERS = (
    ("d1.uploader", "d1", Role.partner_uploader),
    ("c1.uploader", "c1", Role.partner_uploader),
    ("f1.viewer", "f1", Role.funder_viewer),
    ("b0.analyst", "b0", Role.steward_analyst),
)
STUDENTS = "id,first,last,dob,middle,ssn\nS1,Ana,Ruiz,02/03/2011,,123-45-6789\nS2,Ben,Ode,03/04/2010,,987-65-4321\n"
# what the warehouse holds of submissions and identities, compared whole
TABLES = (
    "ops.submission",
    "ops.submission_target",
    "ops.raw_decision",
    "analytic.enrollment",
    "analytic.attendance_event",
    "identity.partner_record",
    "identity.encoding",
    "identity.review_decision",
    "identity.link_run",
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """District d1's records (students with an undeclared SSN column, awaiting a
    raw-file decision, and enrollments), a few records of others, a steward admin
    and a few other users."""
    files = tmp_path_factory.mktemp("files")
    wh = make_warehouse(tmp_path_factory.mktemp("ingest"))
    with wh.session() as s:
        admin = wh.users.add(s, "steward", partner="b0", role=Role.steward_admin)
    with wh.session(admin) as s:
        for user_id, partner, role in USERS:
            wh.users.add(s, user_id, partner=partner, role=role)
    with wh.session(wh.users.get("d1.uploader")) as s:
        wh.ingest.submit(
            s,
            "d1",
            "records",
            [
                csv_file(files / "students.csv", STUDENTS),
                csv_file(files / "enroll.csv", ENROLLMENTS),
            ],
            on=ON,
        )
    # other partners' records as if they had sent them: the model trains on pairs
    # across partners (one blocked on birth dates, one on names with a middle initial)
    wh._con.execute(
        "INSERT INTO identity.partner_record (partner_id, local_id, first_name, "
        "middle_name, last_surname, birth_date, submission_id) VALUES "
        "('c1', 'X1', 'Ana', NULL, 'Ruiz', DATE '2011-02-03', 0), "
        "('c1', 'X2', 'Cy', 'Jo', 'Dunn', DATE '2012-05-06', 0), "
        "('b0', 'Y1', 'Cy', 'Jo', 'Dunn', NULL, 0)"
    )
    path = wh.path
    wh.close()
    return path


@pytest.fixture
def wh(built: Path, tmp_path: Path) -> Iterator[Warehouse]:
    shutil.copytree(built, tmp_path / "wh")
    with Warehouse.open(tmp_path / "wh") as w:
        yield w


def _mapping(path: Path) -> Path:
    """The attendance mapping with one more absence code."""
    doc = yaml.safe_load(yaml.safe_dump(MAPPINGS["attendance"]))
    doc["files"][0]["columns"]["attendance_event_category"]["codes"]["A"] = (
        "Unexcused Absence"
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _encodings(path: Path) -> Path:
    clk = base64.b64encode(bytes(BITS // 8)).decode()
    return csv_file(path, f"local_id,clk\nS1,{clk}\nS2,{clk}\n")


CASES = [
    Case(
        "submit: wrong role",
        "upload",
        "d1.uploader",
        "f1.viewer",
        lambda wh, s, tmp: wh.ingest.submit(
            s, "d1", "attendance", [csv_file(tmp / "att.csv", ATTENDANCE)], on=ON
        ),
    ),
    Case(
        "submit: another partner",
        "upload",
        "steward",
        "c1.uploader",
        lambda wh, s, tmp: wh.ingest.submit(
            s, "d1", "attendance", [csv_file(tmp / "att.csv", ATTENDANCE)], on=ON
        ),
    ),
    Case(
        "encodings submit",
        "upload",
        "d1.uploader",
        "c1.uploader",
        lambda wh, s, tmp: wh.linkage.add_encodings(
            s, "d1", _encodings(tmp / "clk.csv"), project="p"
        ),
    ),
    Case(
        "mapping add",
        "mapping",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.ingest.set_mapping(
            s, "d1", "attendance", _mapping(tmp / "attendance.yaml")
        ),
    ),
    Case(
        "submissions decide-raw",
        "raw_decision",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.ingest.decide_raw(
            s, 1, keep=False, reason="SSNs are not shared"
        ),
    ),
    Case(
        "review decide",
        "review",
        "b0.analyst",
        "d1.uploader",
        lambda wh, s, tmp: wh.linkage.decide(
            s, RecordKey("d1", "S1"), RecordKey("d1", "S2"), "different"
        ),
    ),
    Case(
        "link",
        "link",
        "steward",
        "d1.uploader",
        lambda wh, s, tmp: wh.linkage.run(s, on=ON),
    ),
    Case(
        "linkage withdraw identifying",
        "purge",
        "steward",
        "b0.analyst",
        lambda wh, s, tmp: wh.linkage.withdraw_identifying(s, "c1"),
    ),
]


def _state(wh: Warehouse) -> dict[str, object]:
    mappings = {str(p): p.read_bytes() for p in (wh.path / "mappings").rglob("*.yaml*")}
    return snapshot(wh, TABLES, "raw") | {"mappings": mappings}


def _user(wh: Warehouse, user_id: str) -> Principal:
    return wh.users.get(user_id)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_without_sign_in_nothing_changes(
    wh: Warehouse, tmp_path: Path, case: Case
) -> None:
    unsigned_changes_nothing(wh, tmp_path, case, _state)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_who_may_not_is_refused_and_the_refusal_audited(
    wh: Warehouse, tmp_path: Path, case: Case
) -> None:
    refusal_is_audited(wh, tmp_path, case, _state)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_write_leaves_exactly_one_entry(
    wh: Warehouse, tmp_path: Path, case: Case
) -> None:
    one_entry_per_write(wh, tmp_path, case, _state)


def test_every_stored_submission_has_one_upload_entry_and_a_refusal_keeps_the_rest(
    wh: Warehouse, tmp_path: Path
) -> None:
    seq = wh.audit.head().seq
    september = csv_file(tmp_path / "sept.csv", ATTENDANCE)
    october = csv_file(
        tmp_path / "oct.csv", ATTENDANCE.replace("2025-09-0", "2025-10-1")
    )
    broken = csv_file(tmp_path / "nov.csv", "id,school\nS1,HS01\n")
    with (
        pytest.raises(UserError, match="lacks the column"),
        wh.session(_user(wh, "d1.uploader")) as s,
    ):
        wh.ingest.submit(
            s,
            "d1",
            "attendance",
            [september, october, september, broken],
            mode="append",
            on=ON,
        )
    statuses = wh._con.execute(
        "SELECT submission_id, file_name, status FROM ops.submission "
        "WHERE feed = 'attendance' ORDER BY 1"
    ).fetchall()
    assert statuses == [
        (3, "sept.csv", "loaded"),
        (4, "oct.csv", "loaded"),
        (5, "nov.csv", "refused"),
    ]
    entries = wh.audit.entries(since_seq=seq)
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("upload", "d1.uploader")
    ] * 4
    assert [e["what"] for e in entries] == [
        "submission 3 (sept.csv) to attendance: loaded",
        "submission 4 (oct.csv) to attendance: loaded",
        "submission 3 (sept.csv) to attendance: duplicate",
        "submission 5 (nov.csv) to attendance: refused",
    ]
    assert entries[0]["rows"] == 8 and entries[0]["detail"]["loaded"] == 2
    assert wh.audit.verify().ok


def test_a_raw_file_decision_is_the_signed_in_steward_admins(
    wh: Warehouse,
) -> None:
    raw = wh.path / wh.ingest.get(1).raw_path
    seq = wh.audit.head().seq
    with wh.session(_user(wh, "steward")) as s:
        assert wh.ingest.decide_raw(s, 1, keep=False, reason="No SSNs") == "purge"
    assert not raw.exists()
    [d] = wh.ingest.raw_decisions(1)
    decision, reason, by = d.decision, d.reason, d.by
    assert (decision, reason, by) == ("purge", "No SSNs", "steward")
    [entry] = wh.audit.entries(since_seq=seq)
    assert entry["actor"] == "steward" and entry["providers"] == ["d1"]
    assert entry["what"] == "raw file of submission 1 (students.csv): purge"
    assert entry["reason"] == "No SSNs"


def test_a_review_decision_on_providers_that_may_not_be_linked_is_refused(
    wh: Warehouse,
) -> None:
    before, seq = _state(wh), wh.audit.head().seq
    with (
        pytest.raises(Forbidden, match="do not both allow linking"),
        wh.session(_user(wh, "steward")) as s,
    ):
        wh.linkage.decide(s, RecordKey("d1", "S1"), RecordKey("c1", "X1"), "same")
    assert _state(wh) == before
    [entry] = wh.audit.entries(since_seq=seq)
    assert (entry["decision"], entry["action"], entry["providers"]) == (
        "deny",
        "review",
        ["c1", "d1"],
    )
