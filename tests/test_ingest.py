"""Submissions end to end on small files whose answers were worked out by hand."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml

from backbone import Warehouse
from backbone.errors import InputFileError, UserError
from backbone.ingest.report import (
    QuarantineExample,
    build_report,
    quarantine_csv,
    report_html,
)
from backbone.partners.feeds import Feed

from .ingest_fixtures import (
    ATTENDANCE,
    ENROLLMENTS,
    EXPECTED_ATTENDANCE,
    MAPPINGS,
    csv_file,
    decide_raw,
    make_warehouse,
    submit,
)
from .signin import steward, steward_env

ON = date(2026, 1, 20)


@pytest.fixture
def wh(tmp_path: Path) -> Iterator[Warehouse]:
    w = make_warehouse(tmp_path)
    yield w
    w.close()


def _q(wh: Warehouse, sid: int) -> dict[int, list[str]]:
    rows = wh._con.execute(
        "SELECT source_row, list_distinct(rules) FROM ops.quarantine WHERE submission_id = ?",
        [sid],
    ).fetchall()
    return {r: sorted(rules) for r, rules in rows}


def _load_enrollments(wh: Warehouse, tmp_path: Path) -> int:
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "enroll.csv", ENROLLMENTS)], on=ON
    )
    return r.submission_id


def test_enrollments_load_and_the_bad_one_is_quarantined(
    wh: Warehouse, tmp_path: Path
) -> None:
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "enroll.csv", ENROLLMENTS)], on=ON
    )
    assert (r.status, r.rows_read, r.rows_loaded, r.rows_quarantined) == (
        "loaded",
        4,
        3,
        1,
    )
    assert _q(wh, r.submission_id) == {5: ["date_order"]}
    rows = wh._con.execute(
        "SELECT student_local_id, school_id, entry_grade_level, school_year, exit_withdraw_type, submission_id "
        "FROM analytic.enrollment ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("S1", "d1/HS01", "Ninth grade", 2026, None, r.submission_id),
        ("S2", "d1/HS01", "Ninth grade", 2026, "Transferred", r.submission_id),
        ("S3", "d1/HS01", "Kindergarten", 2026, None, r.submission_id),
    ]


def test_attendance_rules_on_a_hand_checked_file(wh: Warehouse, tmp_path: Path) -> None:
    _load_enrollments(wh, tmp_path)
    [r] = submit(
        wh, "d1", "attendance", [csv_file(tmp_path / "att.csv", ATTENDANCE)], on=ON
    )
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (8, 2, 6)
    assert _q(wh, r.submission_id) == EXPECTED_ATTENDANCE
    loaded = wh._con.execute(
        "SELECT student_local_id, event_date, attendance_event_category FROM analytic.attendance_event ORDER BY 2"
    ).fetchall()
    assert loaded == [
        ("S1", date(2025, 9, 2), "Unexcused Absence"),
        ("S1", date(2025, 9, 3), "Excused Absence"),
    ]
    report = build_report(wh._con, r.submission_id)
    assert report.reconciles
    (target,) = report.targets
    assert (target.entity, target.rows_in, target.rows_loaded) == (
        "attendance_event",
        8,
        2,
    )
    assert target.rows_quarantined == 6 and target.rows_replaced == 0
    page = report_html(report)
    assert "<td>attendance_event</td><td>8</td><td>2</td><td>6</td><td>0</td>" in page
    sub = wh.ingest.get(r.submission_id)
    assert sub in wh.ingest.list("d1") and sub not in wh.ingest.list("d2")
    assert (sub.partner_id, sub.feed, sub.file_name) == ("d1", "attendance", "att.csv")
    assert (sub.rows_read, sub.rows_loaded, sub.rows_quarantined) == (8, 2, 6)
    assert (wh.path / sub.raw_path).is_file()
    by_rule = {g.rule: g for g in report.groups}
    assert by_rule["unknown_code"].examples == (
        QuarantineExample(
            5,
            "attendance_event_category (from code): 'X' is not a known code; add it to the mapping's codes",
        ),
    )
    assert by_rule["duplicate_in_file"].examples == (
        QuarantineExample(4, "the same record as row 2"),
    )


def test_the_same_file_twice_is_a_no_op_that_says_so(
    wh: Warehouse, tmp_path: Path
) -> None:
    path = csv_file(tmp_path / "enroll.csv", ENROLLMENTS)
    [first] = submit(wh, "d1", "records", [path], on=ON)
    [again] = submit(wh, "d1", "records", [path], on=ON)
    assert again.status == "duplicate"
    assert again.submission_id == first.submission_id
    assert "already loaded as submission 1" in again.message
    assert wh._con.execute("SELECT count(*) FROM analytic.enrollment").fetchall() == [
        (3,)
    ]
    assert wh._con.execute("SELECT count(*) FROM ops.submission").fetchall() == [(1,)]


def test_a_corrected_file_replaces_its_period_and_the_old_rows_stay_recoverable(
    wh: Warehouse, tmp_path: Path
) -> None:
    first = _load_enrollments(wh, tmp_path)
    corrected = ENROLLMENTS.replace(
        "S4,HS01,2025-08-25,10,2025-08-01,T", "S4,HS01,2025-08-25,10,,"
    )
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "enroll_v2.csv", corrected)], on=ON
    )
    assert (r.rows_loaded, r.rows_quarantined) == (4, 0)
    assert r.targets[0].rows_replaced == 3 and r.targets[0].periods == (2026,)
    assert wh._con.execute(
        "SELECT count(*), min(submission_id) FROM analytic.enrollment"
    ).fetchall() == [(4, r.submission_id)]
    assert wh._con.execute("SELECT * FROM ops.replacement").fetchall() == [
        (r.submission_id, "enrollment", first, 3)
    ]
    raw = wh._con.execute(
        "SELECT raw_path FROM ops.submission WHERE submission_id = ?", [first]
    ).fetchall()[0][0]
    assert (
        wh.path / raw
    ).read_text() == ENROLLMENTS  # the replaced rows' file, byte for byte


def test_append_mode_adds_rows(wh: Warehouse, tmp_path: Path) -> None:
    _load_enrollments(wh, tmp_path)
    more = "id,school,entry,grade,exit,why\nS5,HS01,2025-09-15,11,,\n"
    [r] = submit(
        wh,
        "d1",
        "records",
        [csv_file(tmp_path / "enroll_more.csv", more)],
        mode="append",
        on=ON,
    )
    assert r.targets[0].rows_replaced == 0
    assert wh._con.execute("SELECT count(*) FROM analytic.enrollment").fetchall() == [
        (4,)
    ]
    again = "id,school,entry,grade,exit,why\nS5,HS01,2025-09-15,11,,\nS6,HS01,2025-09-15,11,,\n"
    [r2] = submit(
        wh,
        "d1",
        "records",
        [csv_file(tmp_path / "enroll_again.csv", again)],
        mode="append",
        on=ON,
    )
    assert _q(wh, r2.submission_id) == {2: ["duplicate_of_loaded"]}


def test_identity_records_merge(wh: Warehouse, tmp_path: Path) -> None:
    submit(
        wh,
        "d1",
        "records",
        [
            csv_file(
                tmp_path / "students.csv",
                "id,first,last,dob,middle\nS1,Ana,Ruiz,02/03/2011,\n",
            )
        ],
        on=ON,
    )
    submit(
        wh,
        "d1",
        "records",
        [
            csv_file(
                tmp_path / "students2.csv",
                "id,first,last,dob,middle\nS1,Ana,Ruiz-Lopez,,\nS2,Ben,Ode,07/30/2010,\n",
            )
        ],
        on=ON,
    )
    rows = wh._con.execute(
        "SELECT local_id, last_surname, birth_date, submission_id FROM identity.partner_record ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("S1", "Ruiz-Lopez", date(2011, 2, 3), 2),
        ("S2", "Ode", date(2010, 7, 30), 2),
    ]


def test_undeclared_and_disallowed_columns_are_never_stored(
    wh: Warehouse, tmp_path: Path
) -> None:
    text = "id,first,last,dob,middle,ssn\nS1,Ana,Ruiz,02/03/2011,Maria,123-45-6789\nS2,Ben,Ode,13/45/2010,,987-65-4321\n"
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "students.csv", text)], on=ON
    )
    assert r.undeclared == ["ssn"]
    assert r.dropped == [
        "partner_record.middle_name"
    ]  # the agreement does not share it
    assert _q(wh, r.submission_id) == {3: ["invalid_date"]}
    dump = json.dumps(
        wh._con.execute("SELECT * FROM ops.quarantine").fetchall(), default=str
    )
    dump += json.dumps(
        wh._con.execute("SELECT * FROM identity.partner_record").fetchall(), default=str
    )
    for secret in ("123-45-6789", "987-65-4321", "Maria"):
        assert secret not in dump
    assert wh._con.execute(
        "SELECT undeclared_columns, decision FROM ops.raw_decision"
    ).fetchall() == [(["partner_record.middle_name", "ssn"], None)]
    raw = (
        wh.path
        / wh._con.execute("SELECT raw_path FROM ops.submission").fetchall()[0][0]
    )
    assert raw.exists()
    with pytest.raises(UserError, match="Give the reason"):
        decide_raw(wh, r.submission_id, keep=False, reason=" ")
    assert (
        decide_raw(wh, r.submission_id, keep=False, reason="SSNs are not shared")
        == "purge"
    )
    assert not raw.exists()
    with pytest.raises(UserError, match="already decided"):
        decide_raw(wh, r.submission_id, keep=True, reason="x")


def test_no_agreement_in_force_means_nothing_is_stored(
    wh: Warehouse, tmp_path: Path
) -> None:
    with pytest.raises(
        UserError, match=r"data cannot be accepted on 2028-01-01\. Nothing was stored"
    ):
        submit(
            wh,
            "d1",
            "records",
            [csv_file(tmp_path / "enroll.csv", ENROLLMENTS)],
            on=date(2028, 1, 1),
        )
    assert wh._con.execute("SELECT count(*) FROM ops.submission").fetchall() == [(0,)]
    assert not any((wh.path / "raw").rglob("*"))


def test_quarantined_rows_export_fix_and_resubmit(
    wh: Warehouse, tmp_path: Path
) -> None:
    _load_enrollments(wh, tmp_path)
    bad = 'id,school,date,code,note\nS1,HS01,2025-09-02,X,\n=HYPERLINK("http://x"),HS01,2025-09-03,U,\n'
    [r] = submit(wh, "d1", "attendance", [csv_file(tmp_path / "att.csv", bad)], on=ON)
    assert r.rows_quarantined == 2
    exported = quarantine_csv(wh._con, r.submission_id)
    lines = exported.splitlines()
    assert lines[0] == "code,date,id,school,backbone_errors"
    assert (
        "'=HYPERLINK" in exported and ",=HYPERLINK" not in exported
    )  # never executable
    fixed = exported.replace("X,2025-09-02", "U,2025-09-02").replace(
        '\'=HYPERLINK(""http://x"")', "S2"
    )
    [r2] = submit(
        wh,
        "d1",
        "attendance",
        [csv_file(tmp_path / "fixed.csv", fixed)],
        mode="append",
        on=ON,
    )
    assert (r2.rows_loaded, r2.rows_quarantined) == (2, 0)


def test_lineage_every_row_names_its_submission(wh: Warehouse, tmp_path: Path) -> None:
    first = _load_enrollments(wh, tmp_path)
    [att] = submit(
        wh, "d1", "attendance", [csv_file(tmp_path / "att.csv", ATTENDANCE)], on=ON
    )
    assert wh._con.execute(
        "SELECT DISTINCT provider_partner_id, submission_id FROM analytic.enrollment"
    ).fetchall() == [("d1", first)]
    assert wh._con.execute(
        "SELECT DISTINCT submission_id FROM analytic.attendance_event"
    ).fetchall() == [(att.submission_id,)]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\x00\x01\x02PK garbage\x00", "is not a text file"),
        (
            b"id;school;entry;grade;exit;why\nS1;HS01;2025-08-25;9;;\n",
            None,
        ),  # semicolons are detected
        (b"id school entry\nS1 HS01 2025\n", "lacks the column(s)"),
        (
            "id,school,entry,grade,exit,why\nS1,HS01,2025-08-25,9,,caf\u00e9\n".encode()
            + b"S2,HS01,2025-08-25,9,,caf\xe9\n",
            "mixes text encodings",
        ),
    ],
    ids=[
        "empty",
        "binary",
        "semicolon",
        "wrong-delimiter",
        "mixed-encodings",
    ],
)
def test_bad_files_get_a_clear_message(
    wh: Warehouse, tmp_path: Path, content: bytes, message: str | None
) -> None:
    path = tmp_path / "enroll_bad.csv"
    path.write_bytes(content)
    if message is None:
        [r] = submit(wh, "d1", "records", [path], on=ON)
        assert r.rows_loaded == 1
        return
    with pytest.raises(
        InputFileError, match=message.replace("(", r"\(").replace(")", r"\)")
    ):
        submit(wh, "d1", "records", [path], on=ON)


def test_a_header_only_file_is_recorded_as_empty_and_changes_nothing(
    wh: Warehouse, tmp_path: Path
) -> None:
    _load_enrollments(wh, tmp_path)
    [r] = submit(
        wh,
        "d1",
        "records",
        [csv_file(tmp_path / "enroll_empty.csv", "id,school,entry,grade,exit,why\n")],
        on=ON,
    )
    assert r.status == "empty" and "has a header but no rows" in r.message
    assert wh._con.execute("SELECT count(*) FROM analytic.enrollment").fetchall() == [
        (3,)
    ]


def test_a_100_mb_single_line_is_refused_clearly(wh: Warehouse, tmp_path: Path) -> None:
    path = tmp_path / "enroll_line.csv"
    with path.open("wb") as f:
        f.write(b"id,")
        f.write(b"x" * (100 << 20))
    with pytest.raises(InputFileError, match="first line is longer than 8 MB"):
        submit(wh, "d1", "records", [path], on=ON)


def test_latin1_and_bom_files_read_correctly(wh: Warehouse, tmp_path: Path) -> None:
    students = "id,first,last,dob,middle\nS1,José,Muñoz,02/03/2011,\n"
    submit(
        wh,
        "d1",
        "records",
        [csv_file(tmp_path / "students_latin.csv", students, "latin-1")],
        on=ON,
    )
    submit(
        wh,
        "d1",
        "records",
        [
            csv_file(
                tmp_path / "students_bom.csv", students.replace("S1", "S2"), "utf-8-sig"
            )
        ],
        on=ON,
    )
    assert wh._con.execute(
        "SELECT local_id, first_name, last_surname FROM identity.partner_record ORDER BY 1"
    ).fetchall() == [("S1", "José", "Muñoz"), ("S2", "José", "Muñoz")]


def test_hostile_file_names_are_only_labels(wh: Warehouse, tmp_path: Path) -> None:
    path = csv_file(tmp_path / "enroll\x1b[31m;rm -rf ~.csv", ENROLLMENTS)
    [r] = submit(wh, "d1", "records", [path], on=ON)
    assert r.file_name == "enroll?[31m;rm -rf ~.csv"
    stored = list((wh.path / "raw").rglob("*"))
    assert all(p.name == r.sha256 or p.is_dir() for p in stored)


def test_a_file_matching_no_section_is_refused(wh: Warehouse, tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="matches no section"):
        submit(
            wh, "d1", "records", [csv_file(tmp_path / "grades.csv", ENROLLMENTS)], on=ON
        )


def test_a_file_name_with_a_wildcard_reads_only_that_file(
    wh: Warehouse, tmp_path: Path
) -> None:
    folder = tmp_path / "glob"
    csv_file(folder / "enroll_1.csv", ENROLLMENTS)
    csv_file(folder / "enroll_2.csv", ENROLLMENTS.replace("S1,", "S7,"))
    one = csv_file(
        folder / "enroll_*.csv",
        "id,school,entry,grade,exit,why\nS9,HS01,2025-08-25,9,,\n",
    )
    [r] = submit(wh, "d1", "records", [one], on=ON)
    assert r.rows_read == 1
    assert wh._con.execute(
        "SELECT student_local_id FROM analytic.enrollment"
    ).fetchall() == [("S9",)]


def test_a_mistyped_year_is_quarantined_not_a_reason_to_wipe_that_year(
    wh: Warehouse, tmp_path: Path
) -> None:
    _load_enrollments(wh, tmp_path)
    last_year = "id,school,entry,grade,exit,why\nS1,HS01,2024-08-26,8,,\nS2,HS01,2024-08-26,8,,\n"
    submit(
        wh, "d1", "records", [csv_file(tmp_path / "enroll_2025.csv", last_year)], on=ON
    )
    typo = ENROLLMENTS.replace("S3,HS01,2025-08-25,KG", "S3,HS01,2024-08-25,KG")
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "enroll_fix.csv", typo)], on=ON
    )
    assert _q(wh, r.submission_id) == {4: ["outside_period"], 5: ["date_order"]}
    assert r.targets[0].periods == (2026,)
    years = wh._con.execute(
        "SELECT school_year, count(*) FROM analytic.enrollment GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert years == [(2025, 2), (2026, 2)]  # 2024-25 untouched


def test_a_file_whose_rows_were_replaced_can_be_submitted_again(
    wh: Warehouse, tmp_path: Path
) -> None:
    original = csv_file(tmp_path / "enroll.csv", ENROLLMENTS)
    submit(wh, "d1", "records", [original], on=ON)
    submit(
        wh,
        "d1",
        "records",
        [
            csv_file(
                tmp_path / "enroll_v2.csv",
                "id,school,entry,grade,exit,why\nS1,HS01,2025-08-25,9,,\n",
            )
        ],
        on=ON,
    )
    [again] = submit(wh, "d1", "records", [original], on=ON)
    assert again.status == "loaded" and again.rows_loaded == 3


def test_undeclared_fields_nested_in_json_are_never_stored(
    wh: Warehouse, tmp_path: Path
) -> None:
    import yaml

    mapping = {
        "partner": "d1",
        "feed": "attendance",
        "files": [
            {
                "match": "*.jsonl",
                "entity": "attendance_event",
                "columns": {
                    "student_local_id": "student.id",
                    "school_id": {"template": "{partner_id}/{school}"},
                    "school_year": {"school_year_from": "date"},
                    "event_date": "date",
                    "attendance_event_category": {
                        "column": "code",
                        "codes": {"U": "Unexcused Absence"},
                    },
                },
            }
        ],
    }
    (wh.path / "mappings/d1/attendance.yaml").write_text(yaml.safe_dump(mapping))
    _load_enrollments(wh, tmp_path)
    lines = [
        '{"student": {"id": "S1", "ssn": "123-45-6789"}, "school": "HS01", "date": "2025-09-02", "code": "U"}',
        '{"student": {"id": "S1", "ssn": "123-45-6789"}, "school": "HS01", "date": "2025-09-03", "code": "Q"}',
    ]
    [r] = submit(
        wh,
        "d1",
        "attendance",
        [csv_file(tmp_path / "att.jsonl", "\n".join(lines) + "\n")],
        on=ON,
    )
    assert r.undeclared == ["student.ssn"]
    assert r.rows_quarantined == 1
    stored = json.dumps(
        wh._con.execute("SELECT * FROM ops.quarantine").fetchall(), default=str
    )
    assert "123-45-6789" not in stored and "student.id" in stored


def test_json_values_mixing_numbers_and_text_are_read_as_values(
    wh: Warehouse, tmp_path: Path
) -> None:
    import yaml

    mapping = {
        "partner": "d1",
        "feed": "records",
        "files": [
            {
                "match": "*.jsonl",
                "entity": "partner_record",
                "columns": {"local_id": "id", "first_name": "first"},
            }
        ],
    }
    (wh.path / "mappings/d1/records.yaml").write_text(yaml.safe_dump(mapping))
    text = '{"id": 101, "first": "Ana"}\n{"id": "S2", "first": "Ben"}\n'
    submit(wh, "d1", "records", [csv_file(tmp_path / "students.jsonl", text)], on=ON)
    assert wh._con.execute(
        "SELECT local_id FROM identity.partner_record ORDER BY 1"
    ).fetchall() == [("101",), ("S2",)]


def test_quoted_fields_may_span_lines(wh: Warehouse, tmp_path: Path) -> None:
    text = 'id,first,last,dob,middle\nS1,"Ana\nMaria",Ruiz,02/03/2011,\nS2,Ben,Ode,07/30/2010,\n'
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "students.csv", text)], on=ON
    )
    assert r.rows_read == 2 and r.rows_loaded == 2


def test_crosswalks_must_name_canonical_codes(wh: Warehouse, tmp_path: Path) -> None:
    import yaml

    bad = json.loads(
        json.dumps(
            yaml.safe_load((wh.path / "mappings/d1/attendance.yaml").read_text())
        )
    )
    bad["files"][0]["columns"]["attendance_event_category"]["codes"]["U"] = (
        "Bogus Thing"
    )
    (wh.path / "mappings/d1/attendance.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(
        InputFileError,
        match="'Bogus Thing' is not a AttendanceEventCategoryDescriptor value",
    ):
        submit(
            wh, "d1", "attendance", [csv_file(tmp_path / "att.csv", ATTENDANCE)], on=ON
        )


def test_a_mapping_the_database_cannot_apply_is_refused_not_a_crash(
    wh: Warehouse, tmp_path: Path
) -> None:
    import yaml

    doc = yaml.safe_load((wh.path / "mappings/d1/records.yaml").read_text())
    doc["files"][1]["columns"]["entry_date"] = {
        "column": "entry",
        "date_format": "%Q%Y",
    }
    (wh.path / "mappings/d1/records.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(UserError, match="mapping could not be applied"):
        submit(
            wh, "d1", "records", [csv_file(tmp_path / "enroll.csv", ENROLLMENTS)], on=ON
        )
    assert wh._con.execute("SELECT status FROM ops.submission").fetchall() == [
        ("refused",)
    ]


def test_negative_numbers_stay_numbers_in_exports() -> None:
    from backbone.ingest.report import safe_cell

    assert safe_cell("-1") == "-1"
    assert safe_cell("=1+1") == "'=1+1"
    assert safe_cell("-x") == "'-x"
    assert safe_cell("@SUM(A1)") == "'@SUM(A1)"


def test_a_section_for_some_rows_counts_only_those(
    wh: Warehouse, tmp_path: Path
) -> None:
    import yaml

    doc = yaml.safe_load((wh.path / "mappings/d1/records.yaml").read_text())
    exits = {
        "match": "enroll*",
        "entity": "partner_record",
        "only_when": "exit",
        "columns": {"local_id": "id"},
        "ignore": ["school", "entry", "grade", "why"],
    }
    doc["files"].append(exits)
    (wh.path / "mappings/d1/records.yaml").write_text(yaml.safe_dump(doc))
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "enroll.csv", ENROLLMENTS)], on=ON
    )
    # only S2 and S4 have an exit date: the filtered section reads just those two rows
    counts = {
        t.entity: (t.rows_in, t.rows_loaded, t.rows_quarantined) for t in r.targets
    }
    assert counts == {"enrollment": (4, 3, 1), "partner_record": (2, 2, 0)}
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined) == (4, 3, 1)
    assert wh._con.execute(
        "SELECT local_id FROM identity.partner_record ORDER BY 1"
    ).fetchall() == [
        ("S2",),
        ("S4",),
    ]
    only = {"partner": "d1", "feed": "records", "files": [exits]}
    (wh.path / "mappings/d1/records.yaml").write_text(yaml.safe_dump(only))
    with pytest.raises(UserError, match="add one that reads every row"):
        submit(
            wh,
            "d1",
            "records",
            [csv_file(tmp_path / "enroll2.csv", ENROLLMENTS)],
            on=ON,
        )


def test_the_stock_edfi_mapping_reads_grades(tmp_path: Path) -> None:
    from backbone.partners.feeds import Feed

    w = make_warehouse(
        tmp_path,
        fields={
            "course_transcript": [
                "school_id",
                "school_year",
                "term",
                "course_code",
                "final_letter_grade_earned",
                "final_numeric_grade_earned",
            ]
        },
    )
    try:
        with w.session() as s:
            w.feeds.add(
                s,
                Feed(
                    "d1",
                    "edfi",
                    ("course_transcript",),
                    "term",
                    "DSA-D1",
                    None,
                    date(2024, 9, 1),
                ),
            )
        (w.path / "mappings/d1/edfi.yaml").write_text("stock: edfi\n")
        grade = {
            "studentSectionAssociationReference": {
                "studentUniqueId": "604822",
                "schoolId": 255901001,
                "schoolYear": 2026,
                "localCourseCode": "ALG-1",
                "sectionIdentifier": "ALG-1-1",
                "sessionName": "Fall",
                "beginDate": "2025-08-25",
            },
            "gradingPeriodReference": {
                "gradingPeriodDescriptor": "uri://ed-fi.org/GradingPeriodDescriptor#First Semester",
                "periodSequence": 1,
                "schoolId": 255901001,
                "schoolYear": 2026,
            },
            "gradeTypeDescriptor": "uri://ed-fi.org/GradeTypeDescriptor#Semester",
            "letterGradeEarned": "B",
            "numericGradeEarned": 84,
        }
        path = tmp_path / "grades.json"
        path.write_text(
            json.dumps(
                [
                    grade,
                    {
                        **grade,
                        "numericGradeEarned": 91,
                        "letterGradeEarned": "A",
                        "gradingPeriodReference": {
                            **grade["gradingPeriodReference"],
                            "gradingPeriodDescriptor": "uri://ed-fi.org/GradingPeriodDescriptor#Second Semester",
                        },
                    },
                ]
            )
        )
        [r] = submit(w, "d1", "edfi", [path], on=ON)
        assert (r.rows_read, r.rows_loaded, r.undeclared) == (2, 2, [])
        rows = w._con.execute(
            "SELECT student_local_id, school_id, term, course_code, final_numeric_grade_earned "
            "FROM analytic.course_transcript ORDER BY term"
        ).fetchall()
        assert rows == [
            ("604822", "d1/255901001", "Fall Semester", "ALG-1", 84),
            ("604822", "d1/255901001", "Spring Semester", "ALG-1", 91),
        ]
    finally:
        w.close()


def test_show_reports_interruptions_and_raw_file_decisions(
    wh: Warehouse, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from backbone.cli import app

    text = "id,first,last,dob,middle,ssn\nS1,Ana,Ruiz,02/03/2011,,123-45-6789\n"
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "students.csv", text)], on=ON
    )
    decide_raw(wh, r.submission_id, keep=False, reason="SSNs are not shared")
    wh._con.execute(
        "INSERT INTO ops.submission VALUES (9, 'd1', 'records', 'big.csv', 'x', 1, 'raw/x', now(), "
        "'received', NULL, NULL, NULL, NULL, NULL)"
    )
    env = {"COLUMNS": "250", **steward_env(wh, "b0")}
    wh.close()
    runner = CliRunner()
    shown = runner.invoke(
        app,
        ["submissions", "show", str(r.submission_id), "-w", str(tmp_path / "wh")],
        env=env,
    ).output
    assert "Raw file decision: purge" in shown and "SSNs are not shared" in shown
    stuck = runner.invoke(
        app,
        ["submissions", "show", "9", "-w", str(tmp_path / "wh")],
        env=env,
    ).output
    assert "did not finish" in stuck and "reconciled" not in stuck
    out = runner.invoke(
        app,
        [
            "submissions",
            "quarantine",
            str(r.submission_id),
            "--out",
            str(tmp_path / "fix.csv"),
            "-w",
            str(tmp_path / "wh"),
        ],
        env=env,
    ).output
    assert "give the fixed file such a name" in out


def test_a_feed_replaces_only_its_own_rows_of_a_period(
    wh: Warehouse, tmp_path: Path
) -> None:
    """Two feeds of one entity (a district's daily absences and a program's own
    tardy file): loading or correcting one never removes the other's rows."""
    _load_enrollments(wh, tmp_path)
    with wh.session() as s:
        wh.feeds.add(
            s,
            Feed(
                "d1",
                "tardies",
                ("attendance_event",),
                "monthly",
                "DSA-D1",
                None,
                date(2024, 9, 1),
            ),
        )
    mapping = json.loads(json.dumps(MAPPINGS["attendance"]))
    mapping["feed"] = "tardies"
    (wh.path / "mappings" / "d1" / "tardies.yaml").write_text(
        yaml.safe_dump(mapping, sort_keys=False)
    )
    absences = (
        "id,school,date,code,note\nS1,HS01,2025-09-02,U,\nS1,HS01,2025-09-03,E,\n"
    )
    tardies = "id,school,date,code,note\nS2,HS01,2025-09-04,T,\nS3,HS01,2025-09-05,T,\n"
    [a] = submit(
        wh, "d1", "attendance", [csv_file(tmp_path / "a.csv", absences)], on=ON
    )
    [t] = submit(wh, "d1", "tardies", [csv_file(tmp_path / "t.csv", tardies)], on=ON)
    assert t.targets[0].rows_replaced == 0

    def rows() -> list[tuple[str, int]]:
        return wh._con.execute(
            "SELECT student_local_id, submission_id FROM analytic.attendance_event "
            "ORDER BY event_date"
        ).fetchall()

    assert rows() == [
        ("S1", a.submission_id),
        ("S1", a.submission_id),
        ("S2", t.submission_id),
        ("S3", t.submission_id),
    ]
    # the tardy file corrected: only its own rows of 2025-26 are replaced
    fixed = "id,school,date,code,note\nS2,HS01,2025-09-04,T,\n"
    [t2] = submit(wh, "d1", "tardies", [csv_file(tmp_path / "t2.csv", fixed)], on=ON)
    assert t2.targets[0].rows_replaced == 2
    assert rows() == [
        ("S1", a.submission_id),
        ("S1", a.submission_id),
        ("S2", t2.submission_id),
    ]
    assert wh._con.execute(
        "SELECT replaced_submission_id, rows FROM ops.replacement"
    ).fetchall() == [(t.submission_id, 2)]


def test_numbers_a_spreadsheet_wrote_as_decimals_are_codes_again(
    wh: Warehouse, tmp_path: Path
) -> None:
    """School 63 and grade 9 exported by a spreadsheet as 63.0 and 9.0 match the
    registered school and the grade; 0063 sent as text keeps its zeros."""
    with wh.session() as s:
        wh.partners.add_school(s, "d1", "63", "Sixty-Three High", "High")
    text = (
        "id,school,entry,grade,exit,why\n"
        "S1,63.0,2025-08-25,9.0,,\n"
        "S2,0063,2025-08-25,9,,\n"
    )
    [r] = submit(wh, "d1", "records", [csv_file(tmp_path / "enroll.csv", text)], on=ON)
    assert (r.rows_loaded, r.rows_quarantined) == (1, 1)
    assert _q(wh, r.submission_id) == {3: ["unknown_school"]}
    assert wh._con.execute(
        "SELECT student_local_id, school_id, entry_grade_level FROM analytic.enrollment"
    ).fetchall() == [("S1", "d1/63", "Ninth grade")]


def test_a_file_loaded_before_is_processed_again_after_its_mapping_changed(
    wh: Warehouse, tmp_path: Path
) -> None:
    """The district's exit code 'W' (dropped out) was unknown; once the mapping knows it,
    the same file sent again with reprocess loads that row too, replacing the rows
    of the first load instead of adding to them."""
    text = ENROLLMENTS.replace(
        "S4,HS01,2025-08-25,10,2025-08-01,T", "S4,HS01,2025-08-25,10,2025-09-01,W"
    )
    path = csv_file(tmp_path / "enroll.csv", text)
    [first] = submit(wh, "d1", "records", [path], on=ON)
    assert (first.rows_loaded, first.rows_quarantined) == (3, 1)
    [same] = submit(wh, "d1", "records", [path], on=ON)
    assert same.status == "duplicate"
    fixed = json.loads(json.dumps(MAPPINGS["records"]))
    fixed["files"][1]["columns"]["exit_withdraw_type"]["codes"]["W"] = "Dropout"
    source = tmp_path / "records-v2.yaml"
    source.write_text(yaml.safe_dump(fixed, sort_keys=False))
    with wh.session(steward(wh, "b0")) as s:
        wh.ingest.set_mapping(s, "d1", "records", source)
    old = list((wh.path / "mappings" / "d1").glob("records.*.yaml.old"))
    assert len(old) == 1 and "W:" not in old[0].read_text()
    with wh.session(steward(wh, "b0")) as s:
        [again] = wh.ingest.submit(s, "d1", "records", [path], on=ON, reprocess=True)
    assert (again.rows_loaded, again.rows_quarantined) == (4, 0)
    assert again.targets[0].rows_replaced == 3
    assert "Processed again" in again.message
    assert wh._con.execute(
        "SELECT count(*), min(submission_id), max(submission_id) FROM analytic.enrollment"
    ).fetchall() == [(4, again.submission_id, again.submission_id)]
    assert wh._con.execute(
        "SELECT submission_id, entity, replaced_submission_id, rows FROM ops.replacement"
    ).fetchall() == [(again.submission_id, "enrollment", first.submission_id, 3)]
    entries = [e for e in wh.audit.entries() if e["action"] == "mapping"]
    assert len(entries) == 1
    assert "d1/records set from records-v2.yaml" in entries[0]["what"]


def test_a_mapping_is_checked_before_it_is_recorded(
    wh: Warehouse, tmp_path: Path
) -> None:
    wrong = json.loads(json.dumps(MAPPINGS["attendance"]))
    source = tmp_path / "m.yaml"
    source.write_text(yaml.safe_dump(wrong, sort_keys=False))
    before = (wh.path / "mappings" / "d1" / "records.yaml").read_text()
    with (
        pytest.raises(InputFileError, match="for d1/attendance, not d1/records"),
        wh.session(steward(wh, "b0")) as s,
    ):
        wh.ingest.set_mapping(s, "d1", "records", source)
    wrong["feed"] = "records"
    source.write_text(yaml.safe_dump(wrong, sort_keys=False))
    with (
        pytest.raises(
            InputFileError, match="fills attendance_event, which feed records"
        ),
        wh.session(steward(wh, "b0")) as s,
    ):
        wh.ingest.set_mapping(s, "d1", "records", source)
    assert (wh.path / "mappings" / "d1" / "records.yaml").read_text() == before


def test_reprocessing_keeps_the_old_rows_when_nothing_loads_and_never_outdoes_a_newer_file(
    wh: Warehouse, tmp_path: Path
) -> None:
    first = csv_file(tmp_path / "enroll.csv", ENROLLMENTS)
    [a] = submit(wh, "d1", "records", [first], on=ON)
    # a mapping that reads the entry date in the wrong format quarantines every row
    broken = json.loads(json.dumps(MAPPINGS["records"]))
    broken["files"][1]["columns"]["entry_date"] = {
        "column": "entry",
        "date_format": "%d.%m.%Y",
    }
    source = tmp_path / "broken.yaml"
    source.write_text(yaml.safe_dump(broken, sort_keys=False))
    with wh.session(steward(wh, "b0")) as s:
        wh.ingest.set_mapping(s, "d1", "records", source)
    with (
        pytest.raises(UserError, match="none of its 4 rows loads"),
        wh.session(steward(wh, "b0")) as s,
    ):
        wh.ingest.submit(s, "d1", "records", [first], on=ON, reprocess=True)
    assert wh._con.execute(
        "SELECT count(*), max(submission_id) FROM analytic.enrollment"
    ).fetchall() == [(3, a.submission_id)]
    # a newer file of the feed: the older one may not be processed again over it
    restore = tmp_path / "records.yaml"
    restore.write_text(yaml.safe_dump(MAPPINGS["records"], sort_keys=False))
    with wh.session(steward(wh, "b0")) as s:
        wh.ingest.set_mapping(s, "d1", "records", restore)
    newer = ENROLLMENTS.replace("S3,HS01,2025-08-25,KG,,\n", "")
    submit(wh, "d1", "records", [csv_file(tmp_path / "enroll_v2.csv", newer)], on=ON)
    with (
        pytest.raises(UserError, match="was loaded after it and may hold newer rows"),
        wh.session(steward(wh, "b0")) as s,
    ):
        wh.ingest.submit(s, "d1", "records", [first], on=ON, reprocess=True)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            {"each": [{"s": "x"}, {"t": "y"}]},
            "every entry of each must name the same keys",
        ),
        ({"each": [{"s": "code"}]}, "each is given but no field uses its keys"),
        (
            {"columns.event_date": "$when"},
            r"\$when is used but the section has no each",
        ),
        (
            {"each": [{"s": "code"}], "columns.event_date": "$when"},
            r"\$when is not a key of the each entries",
        ),
        (
            {
                "columns.attendance_event_category": {
                    "column": "code",
                    "codes": {"X": None},
                }
            },
            "attendance_event_category is required, so code 'X' cannot map to null",
        ),
        (
            {"skip_when": [{"column": "note"}]},
            "give exactly one of equals, one_of or empty",
        ),
    ],
)
def test_a_wide_or_skipping_section_is_checked_with_its_mistake_named(
    wh: Warehouse, tmp_path: Path, change: dict[str, object], said: str
) -> None:
    doc = json.loads(json.dumps(MAPPINGS["attendance"]))
    section = doc["files"][0]
    for key, value in change.items():
        if key.startswith("columns."):
            section["columns"][key.removeprefix("columns.")] = value
        else:
            section[key] = value
    source = tmp_path / "m.yaml"
    source.write_text(yaml.safe_dump(doc, sort_keys=False))
    with (
        pytest.raises(InputFileError, match=f"files\\[0\\].*{said}"),
        wh.session(steward(wh, "b0")) as s,
    ):
        wh.ingest.set_mapping(s, "d1", "attendance", source)


def test_a_wide_file_whose_two_parts_repeat_a_key_names_the_files_row(
    wh: Warehouse, tmp_path: Path
) -> None:
    """A morning and an afternoon code per day: the same code twice in one row is
    one event, so the afternoon's is a duplicate of the file's own row 2."""
    doc = json.loads(json.dumps(MAPPINGS["attendance"]))
    section = doc["files"][0]
    section["each"] = [{"code": "am"}, {"code": "pm"}]
    section["columns"]["attendance_event_category"]["column"] = "$code"
    section["skip_when"] = [{"column": "pm", "empty": True}]
    (wh.path / "mappings" / "d1" / "attendance.yaml").write_text(yaml.safe_dump(doc))
    submit(wh, "d1", "records", [csv_file(tmp_path / "enroll.csv", ENROLLMENTS)], on=ON)
    [r] = submit(
        wh,
        "d1",
        "attendance",
        [
            csv_file(
                tmp_path / "days.csv",
                "id,school,date,am,pm,note\n"
                "S1,HS01,2025-09-02,U,U,\n"
                "S1,HS01,2025-09-03,E,T,\n"
                "S2,HS01,2025-09-04,T,,half day\n",
            )
        ],
        on=ON,
    )
    assert (r.rows_read, r.rows_loaded, r.rows_quarantined, r.rows_skipped) == (
        3,
        1,
        1,
        1,
    )
    [t] = r.targets
    assert (t.rows_in, t.rows_loaded, t.rows_quarantined, t.rows_skipped) == (
        4,
        3,
        1,
        2,
    )
    assert wh._con.execute(
        "SELECT source_row, messages FROM ops.quarantine WHERE submission_id = ?",
        [r.submission_id],
    ).fetchall() == [(2, ["part 2 of 2 — the same record as row 2"])]


def test_a_corrected_quarantine_goes_back_only_where_it_was_refused(
    wh: Warehouse, tmp_path: Path
) -> None:
    """The quarantine of the attendance file, fixed (row 5's code X made U) and sent
    back with the feed's own mode, replace-period: the two rows loaded first stay
    (nothing replaced), the fixed row loads once, the unfixed ones are quarantined
    again, and a row added by hand without a reason is not taken."""
    _load_enrollments(wh, tmp_path)
    [first] = submit(
        wh, "d1", "attendance", [csv_file(tmp_path / "att.csv", ATTENDANCE)], on=ON
    )
    assert (first.rows_loaded, first.rows_quarantined) == (2, 6)
    exported = quarantine_csv(wh._con, first.submission_id)
    fixed = exported.replace("X,2025-09-04,S2", "U,2025-09-04,S2")
    assert fixed != exported
    fixed += "U,2025-09-09,S1,HS01,\n"  # not refused before: not taken
    [again] = submit(
        wh, "d1", "attendance", [csv_file(tmp_path / "fixed.csv", fixed)], on=ON
    )
    assert (again.rows_read, again.rows_loaded, again.rows_quarantined) == (7, 1, 5)
    assert again.rows_skipped == 1
    assert "nothing replaced" in again.message
    assert [t.rows_replaced for t in again.targets] == [0]
    assert wh._con.execute(
        "SELECT student_local_id, event_date::VARCHAR, submission_id "
        "FROM analytic.attendance_event ORDER BY 2"
    ).fetchall() == [
        ("S1", "2025-09-02", first.submission_id),
        ("S1", "2025-09-03", first.submission_id),
        ("S2", "2025-09-04", again.submission_id),
    ]


def test_a_fixed_part_of_a_wide_row_goes_back_without_its_sibling(
    wh: Warehouse, tmp_path: Path
) -> None:
    """Morning and afternoon codes; row 2's afternoon code X is unknown (its
    morning loads). The export names the part; fixed and sent back, only the
    afternoon is taken: loaded once, nothing refused as already loaded."""
    doc = json.loads(json.dumps(MAPPINGS["attendance"]))
    section = doc["files"][0]
    section["each"] = [{"code": "am"}, {"code": "pm"}]
    section["columns"]["attendance_event_category"]["column"] = "$code"
    section["skip_when"] = [{"column": "note", "equals": "holiday"}]
    section["ignore"] = []
    (wh.path / "mappings" / "d1" / "attendance.yaml").write_text(yaml.safe_dump(doc))
    submit(wh, "d1", "records", [csv_file(tmp_path / "enroll.csv", ENROLLMENTS)], on=ON)
    days = (
        "id,school,date,am,pm,note\nS1,HS01,2025-09-02,U,X,\nS1,HS01,2025-09-03,E,T,\n"
    )
    [first] = submit(
        wh, "d1", "attendance", [csv_file(tmp_path / "days.csv", days)], on=ON
    )
    assert (first.rows_loaded, first.rows_quarantined) == (1, 1)
    exported = quarantine_csv(wh._con, first.submission_id)
    assert (
        "attendance_event: part 2 of 2 — attendance_event_category (from pm)"
        in exported
    )
    assert "note" in exported.splitlines()[0]  # the skip_when column goes with it
    [again] = submit(
        wh,
        "d1",
        "attendance",
        [csv_file(tmp_path / "fixed.csv", exported.replace(",X,", ",E,"))],
        on=ON,
    )
    assert (again.rows_read, again.rows_loaded, again.rows_quarantined) == (1, 1, 0)
    assert wh._con.execute(
        "SELECT event_date::VARCHAR, attendance_event_category FROM "
        "analytic.attendance_event WHERE event_date = '2025-09-02' ORDER BY 2"
    ).fetchall() == [
        ("2025-09-02", "Excused Absence"),
        ("2025-09-02", "Unexcused Absence"),
    ]


def test_a_local_id_given_to_two_people_is_refused_not_merged(
    wh: Warehouse, tmp_path: Path
) -> None:
    """A roster may list a person twice (merged), never two people under one id:
    the second person's row is refused, named with the row of the first."""
    roster = (
        "id,first,last,dob,middle\n"
        "S1,Ana,Ruiz,02/03/2010,\n"  # line 2 (the header is line 1)
        "S1,ANA,Ruiz,,\n"  # the same person again (other capitals, no date)
        "S2,Ben,Lee,05/06/2010,\n"  # line 4
        "S2,Cy,Lee,07/08/2011,\n"  # line 5: a sibling under Ben's id
    )
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "students.csv", roster)], on=ON
    )
    assert _q(wh, r.submission_id) == {5: ["local_id_reused"]}  # line 5
    message = wh._con.execute(
        "SELECT messages[1] FROM ops.quarantine WHERE submission_id = ?",
        [r.submission_id],
    ).fetchall()[0][0]
    assert "local id S2 is another person's in row 4" in message
    held = wh._con.execute(
        "SELECT local_id, first_name, birth_date FROM identity.partner_record "
        "ORDER BY 1"
    ).fetchall()
    # one record of S1: the birth date its first row gave kept, not lost to the
    # second row that left it out
    assert held == [("S1", "ANA", date(2010, 2, 3)), ("S2", "Ben", date(2010, 5, 6))]


def test_a_template_keeps_the_parts_a_row_has(tmp_path: Path) -> None:
    """``{number} {street}`` without a number is the street; with neither, empty."""
    from .ingest_fixtures import ENROLLMENT_FIELDS, RECORD_FIELDS

    wh = make_warehouse(
        tmp_path,
        fields={
            "partner_record": [*RECORD_FIELDS, "address"],
            "enrollment": ENROLLMENT_FIELDS,
        },
    )
    mapping = dict(MAPPINGS["records"])
    section = dict(mapping["files"][0])
    section["columns"] = {
        **section["columns"],
        "address": {"template": "{number} {street}"},
    }
    mapping["files"] = [section]
    wh.close()
    path = tmp_path / "wh" / "mappings" / "d1" / "records.yaml"
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    roster = (
        "id,first,last,dob,middle,number,street\n"
        "S1,Ana,Ruiz,02/03/2010,,12,Elm Street\n"
        "S2,Ben,Lee,05/06/2010,,,Oak Avenue\n"
        "S3,Cy,Ng,07/08/2010,,,\n"
    )
    with Warehouse.open(tmp_path / "wh") as wh:
        submit(
            wh, "d1", "records", [csv_file(tmp_path / "students.csv", roster)], on=ON
        )
        addresses = wh._con.execute(
            "SELECT local_id, address FROM identity.partner_record ORDER BY 1"
        ).fetchall()
    assert addresses == [("S1", "12 Elm Street"), ("S2", "Oak Avenue"), ("S3", None)]


def test_birth_dates_are_plausible_from_the_warehouse_setting(tmp_path: Path) -> None:
    """An adult learner born in 1935 is kept by default (1900 on); a warehouse of
    school children may refuse anything before 1990."""
    roster = (
        "id,first,last,dob,middle\nS1,Ana,Ruiz,02/03/1935,\nS2,Ben,Lee,05/06/1899,\n"
    )
    wh = make_warehouse(tmp_path)
    [r] = submit(
        wh, "d1", "records", [csv_file(tmp_path / "students.csv", roster)], on=ON
    )
    assert _q(wh, r.submission_id) == {3: ["out_of_range"]}
    wh.close()
    toml = tmp_path / "wh" / "backbone.toml"
    toml.write_text(
        toml.read_text().replace(
            "earliest_birth_year = 1900", "earliest_birth_year = 1990"
        )
    )
    with Warehouse.open(tmp_path / "wh") as wh:
        again = roster.replace("S1,", "S3,").replace("S2,", "S4,")
        [r] = submit(
            wh, "d1", "records", [csv_file(tmp_path / "students2.csv", again)], on=ON
        )
        assert _q(wh, r.submission_id) == {2: ["out_of_range"], 3: ["out_of_range"]}


def test_a_much_smaller_replace_period_file_waits_for_confirmation(
    wh: Warehouse, tmp_path: Path
) -> None:
    """A cut-off export of a school year must not wipe the year: 120 rows loaded,
    then a 10-row file of the same year is refused (nothing changes) until it is
    sent again with --replace-smaller."""
    rows = "\n".join(f"S{n},HS01,2025-08-25,10,," for n in range(120))
    whole = csv_file(
        tmp_path / "enroll_all.csv", f"id,school,entry,grade,exit,why\n{rows}\n"
    )
    submit(wh, "d1", "records", [whole], on=ON)
    cut = "\n".join(f"S{n},HS01,2025-08-25,10,," for n in range(10))
    short = csv_file(
        tmp_path / "enroll_cut.csv", f"id,school,entry,grade,exit,why\n{cut}\n"
    )
    with pytest.raises(UserError, match=r"10 good rows .* would replace 120 rows"):
        submit(wh, "d1", "records", [short], on=ON)
    assert wh._con.execute("SELECT count(*) FROM analytic.enrollment").fetchone() == (
        120,
    )
    with wh.session(steward(wh, "b0")) as s:
        [r] = wh.ingest.submit(s, "d1", "records", [short], on=ON, replace_smaller=True)
    assert r.targets[0].rows_replaced == 120
    assert wh._con.execute("SELECT count(*) FROM analytic.enrollment").fetchone() == (
        10,
    )
