"""Nothing lost under a real kill -9, and no traceback for any bytes a partner sends."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from backbone import Warehouse
from backbone.cli import app
from backbone.errors import BackboneError
from backbone.ingest.readers import stage

from .ingest_fixtures import ENROLLMENTS, csv_file, make_warehouse, submit
from .signin import steward_env

ON = date(2026, 1, 20)


def _big_attendance(path: Path, rows: int) -> Path:
    con = duckdb.connect()
    con.execute(
        f"""COPY (SELECT 'S' || (i % 3 + 1) AS id, 'HS01' AS school,
                   strftime(DATE '2025-08-25' + (i % 200)::INT, '%Y-%m-%d') AS date,
                   CASE i % 3 WHEN 0 THEN 'U' WHEN 1 THEN 'E' ELSE 'T' END AS code, '' AS note
            FROM range({rows}) t(i)) TO '{path}' (HEADER)"""
    )
    return path


@pytest.mark.slow
def test_kill_9_mid_load_leaves_no_partial_rows(tmp_path: Path) -> None:
    wh = make_warehouse(tmp_path)
    submit(wh, "d1", "records", [csv_file(tmp_path / "enroll.csv", ENROLLMENTS)], on=ON)
    wh.close()
    big = _big_attendance(tmp_path / "attendance_big.csv", 3_000_000)
    script = textwrap.dedent(
        f"""
        from datetime import date
        from backbone import Warehouse
        with Warehouse.open({str(tmp_path / "wh")!r}) as wh, wh.session() as s:
            wh.ingest.submit(s, "d1", "attendance", [{str(big)!r}], on=date(2026, 1, 20))
        print("finished", flush=True)
        """
    )
    import hashlib

    sha = hashlib.sha256(big.read_bytes()).hexdigest()
    stored = tmp_path / "wh" / "raw" / sha[:2] / sha
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not stored.exists():
        time.sleep(0.01)
    # the raw file is stored first; staging and validating 3M rows takes seconds more
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    with Warehouse.open(tmp_path / "wh") as wh:
        status = wh._con.execute(
            "SELECT status, rows_loaded FROM ops.submission WHERE feed = 'attendance'"
        ).fetchall()
        assert status == [("received", None)], (
            "the kill came after the commit; use a bigger file"
        )
        assert wh._con.execute(
            "SELECT count(*) FROM analytic.attendance_event"
        ).fetchall() == [(0,)]
        assert wh._con.execute(
            "SELECT count(*) FROM ops.quarantine WHERE submission_id = 2"
        ).fetchall() == [(0,)]
        # the raw file was kept, and submitting again loads it whole
        [r] = submit(wh, "d1", "attendance", [big], on=ON)
        assert r.rows_read == 3_000_000 == r.rows_loaded + r.rows_quarantined
        assert wh._con.execute(
            "SELECT count(*) FROM analytic.attendance_event"
        ).fetchall() == [(r.rows_loaded,)]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(content=st.binary(max_size=400))
def test_readers_never_raise_anything_but_a_clear_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "fuzz.bin"
    path.write_bytes(content)
    con = duckdb.connect()
    with contextlib.suppress(
        BackboneError
    ):  # a clear error is fine; anything else fails
        stage(con, path, "fuzzed")


CELL = st.one_of(
    st.sampled_from(
        [
            "",
            "S1",
            "S2",
            "HS01",
            "2025-09-02",
            "2025-02-30",
            "U",
            "E",
            "Z",
            "=1+1",
            "9" * 30,
            '"',
            ",",
            "\u00e9",
        ]
    ),
    st.text(max_size=12),
)


@pytest.mark.slow
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=st.lists(st.tuples(CELL, CELL, CELL, CELL, CELL), min_size=1, max_size=8))
def test_validation_reconciles_whatever_the_cells(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[str, ...]]
) -> None:
    import csv
    import io

    base = tmp_path_factory.mktemp("fuzz")
    wh = make_warehouse(base)
    try:
        submit(wh, "d1", "records", [csv_file(base / "enroll.csv", ENROLLMENTS)], on=ON)
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["id", "school", "date", "code", "note"])
        writer.writerows(rows)
        path = base / "attendance.csv"
        path.write_text(buffer.getvalue(), encoding="utf-8")
        try:
            results = submit(wh, "d1", "attendance", [path], on=ON)
        except BackboneError:
            return
        for r in results:
            if r.status == "loaded":
                assert r.rows_read == r.rows_loaded + r.rows_quarantined
                for t in r.targets:
                    assert t.rows_in == t.rows_loaded + t.rows_quarantined
    finally:
        wh.close()


def test_cli_submit_report_quarantine_and_decide(tmp_path: Path) -> None:
    runner = CliRunner()
    wh = make_warehouse(tmp_path)
    env = {"COLUMNS": "250", **steward_env(wh, "b0")}
    wh.close()
    w = str(tmp_path / "wh")
    out = runner.invoke(
        app,
        [
            "submit",
            "--partner",
            "d1",
            "--feed",
            "records",
            "--on",
            "2026-01-20",
            str(csv_file(tmp_path / "enroll.csv", ENROLLMENTS)),
            "-w",
            w,
        ],
        env=env,
    )
    assert out.exit_code == 0, out.output
    assert "4 rows read, 3 loaded, 1 quarantined (submission 1)" in out.output
    assert (
        "date_order (enrollment): 1 rows, e.g. row 5: exit_withdraw_date 2025-08-01 is before entry_date"
        in out.output
    )
    listing = runner.invoke(app, ["submissions", "list", "-w", w], env=env).output
    assert "enroll.csv" in listing and "loaded" in listing
    show = runner.invoke(
        app,
        ["submissions", "show", "1", "--out", str(tmp_path / "rep"), "-w", w],
        env=env,
    ).output
    assert "4 rows read = 3 loaded + 1 quarantined (reconciled)" in show
    assert (tmp_path / "rep" / "submission-1.html").read_text().count("date_order") >= 1
    assert "date_order" in (tmp_path / "rep" / "submission-1.csv").read_text()
    q = runner.invoke(
        app,
        ["submissions", "quarantine", "1", "--out", str(tmp_path / "q.csv"), "-w", w],
        env=env,
    )
    assert "Wrote 1 quarantined rows" in q.output and "--mode append" in q.output
    again = runner.invoke(
        app,
        [
            "submit",
            "--partner",
            "d1",
            "--feed",
            "records",
            "--on",
            "2026-01-20",
            str(tmp_path / "enroll.csv"),
            "-w",
            w,
        ],
        env=env,
    )
    assert "already loaded as submission 1" in again.output
    decide = runner.invoke(
        app,
        [
            "submissions",
            "decide-raw",
            "1",
            "--keep",
            "--reason",
            "x",
            "-w",
            w,
        ],
        env=env,
    )
    assert decide.exit_code == 1 and "holds nothing refused" in decide.output


def test_mapping_suggest_drafts_columns_dates_and_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    path = csv_file(
        tmp_path / "att.csv",
        "STU_ID|BLDG|ATT_DATE|CODE\n101|H1|09/02/2025|2\n102|H1|09/03/2025|1\n",
    )
    out = tmp_path / "draft.yaml"
    result = runner.invoke(
        app,
        [
            "mapping",
            "suggest",
            str(path),
            "--entity",
            "attendance_event",
            "--partner",
            "d4",
            "--feed",
            "attendance",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "student_local_id: STU_ID" in text
    assert "column: ATT_DATE" in text and "date_format: '%m/%d/%Y'" in text
    assert "column: CODE" in text and "codes:" in text and "TODO" in text
    again = runner.invoke(
        app,
        [
            "mapping",
            "suggest",
            str(path),
            "--entity",
            "attendance_event",
            "--out",
            str(out),
        ],
    )
    assert again.exit_code == 1 and "exists" in again.output


def test_mapping_suggest_proposes_a_code_only_for_a_real_match() -> None:
    """Same word in other case, or an unambiguous abbreviation; anything else is a
    marked guess the mapping check refuses until a person decides ("male" looks
    like "Female" to a string matcher, and is not)."""
    from backbone.ingest.suggest import crosswalk

    sexes = ("Female", "Male", "Not Selected")
    # one letter is only ever a guess for a person to confirm ('P': Present or
    # Partial?); two or more initials are taken
    assert [crosswalk(v, sexes) for v in ("male", "FEMALE", "M", "F", "NS")] == [
        "Male",
        "Female",
        "? Male (guess)",
        "? Female (guess)",
        "Not Selected",
    ]
    assert crosswalk("Femle", sexes) == "? Female (guess)"
    assert crosswalk("X", sexes) == "?"


def test_mapping_suggest_never_takes_a_repeating_column_for_a_persons_id(
    tmp_path: Path,
) -> None:
    """A roster's "id" that repeats (a family's number) cannot be each person's
    own id: the draft leaves local_id to answer and says why; an id that does not
    repeat is proposed."""
    runner = CliRunner()
    families = csv_file(
        tmp_path / "roster.csv",
        "id,first name,last name\n7,Ana,Ruiz\n7,Bo,Ruiz\n8,Cy,Ng\n",
    )
    people = csv_file(
        tmp_path / "people.csv", "id,first name,last name\n1,Ana,Ruiz\n2,Bo,Ruiz\n"
    )
    texts = []
    for source in (families, people):
        out = tmp_path / f"{source.stem}.yaml"
        result = runner.invoke(
            app,
            [
                "mapping",
                "suggest",
                str(source),
                "--entity",
                "partner_record",
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        texts.append(out.read_text())
    assert "local_id: '?'" in texts[0]
    assert "column 'id' repeats values (3 rows, 2 different)" in texts[0]
    assert "local_id: id" in texts[1] and "repeats" not in texts[1]
