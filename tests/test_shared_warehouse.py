"""One warehouse, several processes at once: writes wait their turn, nothing is lost.

Real ``backbone`` processes, started together: two submissions and a linkage run.
DuckDB lets one process write a database file at a time; a command that finds the
warehouse held waits, says what it waits for, and goes on. Afterwards the counts
reconcile, every write has its audit entry and the chain verifies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from backbone import Warehouse
from backbone.errors import UserError, WarehouseError
from backbone.ingest import SubmissionResult

from .governance_fixtures import agreement, write
from .ingest_fixtures import (
    ATTENDANCE,
    ATTENDANCE_FIELDS,
    ENROLLMENT_FIELDS,
    ENROLLMENTS,
    EXPECTED_ATTENDANCE,
    MAPPINGS,
    RECORD_FIELDS,
    csv_file,
)

STUDENTS = """id,first,last,dob,middle
S1,Ana,Ruiz,01/02/2010,
S2,Ben,Cole,03/04/2010,
S3,Cy,Dunn,05/06/2015,
S4,Di,Eng,07/08/2009,
"""


def _backbone(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "backbone", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def _started(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "backbone", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A district's warehouse set up through the doors, and a steward's environment."""
    wh = tmp_path / "wh"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKBONE_")}
    env |= {"BACKBONE_WAREHOUSE": str(wh), "COLUMNS": "200"}
    for args in (
        ("init", str(wh)),
        ("partner", "add", "b0", "--name", "Backbone", "--kind", "backbone"),
        (
            "partner",
            "add",
            "d1",
            "--name",
            "District One",
            "--kind",
            "school_district",
            "--school",
            "HS01=One High",
        ),
        (
            "partner",
            "add",
            "c1",
            "--name",
            "Youth Club",
            "--kind",
            "community_organization",
        ),
        ("partner", "add", "f1", "--name", "Fund", "--kind", "funder"),
        ("user", "add", "steward", "--partner", "b0", "--role", "steward_admin"),
    ):
        done = _backbone(*args, env=env)
        assert done.returncode == 0, done.stderr
    issued = _backbone("user", "token", "steward", env=env)
    assert issued.returncode == 0, issued.stderr
    token = next(w for w in issued.stdout.split() if w.startswith("bbt_"))
    env["BACKBONE_TOKEN"] = token
    fields = {
        "partner_record": RECORD_FIELDS,
        "enrollment": ENROLLMENT_FIELDS,
        "attendance_event": ATTENDANCE_FIELDS,
    }
    doc = agreement(
        datasets=[
            {"entity": e, "fields": [{"name": f} for f in fs]}
            for e, fs in fields.items()
        ],
        effective_from="2024-07-01",
        effective_to="2027-06-30",
    )
    for args in (
        ("agreement", "add", str(write(tmp_path / "dsa.yaml", doc))),
        (
            "feed",
            "add",
            "d1",
            "records",
            "--entity",
            "partner_record",
            "--entity",
            "enrollment",
            "--cadence",
            "term",
            "--agreement",
            "DSA-D1",
            "--since",
            "2024-09-01",
        ),
        (
            "feed",
            "add",
            "d1",
            "attendance",
            "--entity",
            "attendance_event",
            "--cadence",
            "monthly",
            "--agreement",
            "DSA-D1",
            "--since",
            "2024-09-01",
        ),
    ):
        done = _backbone(*args, env=env)
        assert done.returncode == 0, done.stderr
    for feed, mapping in MAPPINGS.items():
        path = wh / "mappings" / "d1" / f"{feed}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(mapping, sort_keys=False))
    # the records go first: attendance is checked against known enrollments
    first = _backbone(
        "submit",
        "--partner",
        "d1",
        "--feed",
        "records",
        str(csv_file(tmp_path / "students.csv", STUDENTS)),
        str(csv_file(tmp_path / "enrollments.csv", ENROLLMENTS)),
        env=env,
    )
    assert first.returncode == 0, first.stderr
    return tmp_path, env


@pytest.mark.slow  # real processes, each starting the CLI
def test_two_submissions_and_a_link_at_once_all_land(
    setup: tuple[Path, dict[str, str]],
) -> None:
    folder, env = setup
    attendance, october = _two_months(folder)
    running = [
        _started(
            "submit",
            "--partner",
            "d1",
            "--feed",
            "attendance",
            "--mode",
            "append",
            str(attendance),
            env=env,
        ),
        _started(
            "submit",
            "--partner",
            "d1",
            "--feed",
            "attendance",
            "--mode",
            "append",
            str(october),
            env=env,
        ),
        _started("link", env=env),
    ]
    outcomes = [p.communicate(timeout=300) for p in running]
    for process, (_out, err) in zip(running, outcomes, strict=True):
        assert process.returncode == 0, err
        assert "Traceback" not in err and "IO Error" not in err
    assert any("Waiting for the warehouse" in err for _, err in outcomes)
    with Warehouse.open(folder / "wh", read_only=True) as wh:
        con = wh._con
        subs = con.execute(
            "SELECT count(*), sum(rows_read), sum(rows_loaded), sum(rows_quarantined) "
            "FROM ops.submission WHERE status = 'loaded'"
        ).fetchone()
        assert subs is not None
        files, read, loaded, quarantined = subs
        assert files == 4  # students, enrollments and the two attendance files
        assert read == loaded + quarantined
        # every row of every file was read, and each went to the warehouse or to
        # quarantine: nothing lost between the processes
        sent = {
            p.name: len(p.read_text(encoding="utf-8").splitlines()) - 1
            for p in (attendance, october)
        }
        per_file = dict(
            con.execute(
                "SELECT file_name, rows_read FROM ops.submission WHERE feed = ?",
                ["attendance"],
            ).fetchall()
        )
        assert per_file == sent
        attendance_loaded = con.execute(
            "SELECT sum(rows_loaded) FROM ops.submission WHERE feed = 'attendance'"
        ).fetchone()
        events = con.execute(
            "SELECT count(*) FROM analytic.attendance_event"
        ).fetchone()
        assert attendance_loaded is not None and events is not None
        assert events[0] == attendance_loaded[0] > 0
        # the link saw every record the first submission stored
        records, linked = con.execute(
            "SELECT (SELECT count(*) FROM identity.partner_record), "
            "(SELECT count(*) FROM identity.record_person)"
        ).fetchone() or (0, 0)
        assert linked == records > 0
        runs = con.execute("SELECT count(*) FROM identity.link_run").fetchone()
        assert runs == (1,)
        actions = [
            r[0]
            for r in con.execute(
                "SELECT json_extract_string(entry, '$.action') FROM gov.audit_log "
                "WHERE json_extract_string(entry, '$.action') IN ('upload', 'link') "
                "AND json_extract_string(entry, '$.decision') = 'allow'"
            ).fetchall()
        ]
        assert actions.count("upload") == 4 and actions.count("link") >= 1
        assert wh.audit.verify().ok


def test_a_password_prompt_does_not_hold_the_warehouse(
    setup: tuple[Path, dict[str, str]],
) -> None:
    folder, env = setup
    env = {k: v for k, v in env.items() if k != "BACKBONE_TOKEN"}
    toml = folder / "wh" / "backbone.toml"  # a reader held up gives up at once
    toml.write_text(
        toml.read_text().replace("lock_wait_seconds = 600", "lock_wait_seconds = 2")
    )
    waiting = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backbone",
            "user",
            "disable",
            "steward",
            "--reason",
            "x",
            "--user",
            "steward",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert waiting.stdout is not None
        # the prompt is up (asked while the command line is read)
        assert "Password" in waiting.stdout.read(len("Password"))
        # meanwhile others read the warehouse, with no waiting
        done = _backbone("partner", "list", env=env)
        assert done.returncode == 0, done.stderr
        assert "Waiting for the warehouse" not in done.stderr
    finally:
        waiting.communicate("wrong password\n", timeout=60)
    assert waiting.returncode != 0


def _two_months(folder: Path) -> tuple[Path, Path]:
    """d1's september attendance file, and october's: same rows a month later."""
    september = csv_file(folder / "sept.csv", ATTENDANCE)
    october = csv_file(
        folder / "oct.csv",
        ATTENDANCE.replace("2025-09-0", "2025-10-1").replace(
            "2026-08-01", "2025-10-20"
        ),
    )
    return september, october


def _append_attendance(
    path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """d1's attendance file submitted by another ``backbone`` process."""
    return _backbone(
        "submit",
        "--partner",
        "d1",
        "--feed",
        "attendance",
        "--mode",
        "append",
        str(path),
        env=env,
    )


def _submit_meanwhile(
    folder: Path,
    env: dict[str, str],
    path: Path,
    meanwhile: Callable[[], None],
    mode: str = "append",
    feed: str = "attendance",
) -> SubmissionResult:
    """Submit ``path`` in this process; ``meanwhile`` runs while it is read and
    checked (a real other process), with a warehouse that a held-up command gives up
    on after two seconds, not ten minutes."""
    toml = folder / "wh" / "backbone.toml"
    toml.write_text(
        toml.read_text().replace("lock_wait_seconds = 600", "lock_wait_seconds = 2")
    )
    heard: list[str] = []

    def told(message: str) -> None:
        heard.append(message)
        if message.startswith("reading and checking"):
            meanwhile()

    with Warehouse.open(folder / "wh") as wh:
        steward = wh.sign_in_token(env["BACKBONE_TOKEN"])
        with wh.session(steward) as s:
            (result,) = wh.ingest.submit(
                s, "d1", feed, [path], mode=mode, progress=told
            )
    assert heard == [f"reading and checking {path.name}", f"loading {path.name}"]
    return result


def test_others_read_and_write_while_a_file_is_checked(
    setup: tuple[Path, dict[str, str]],
) -> None:
    """A partner's large file is read and checked with the warehouse handed back:
    meanwhile another process lists the submissions and another submits a file,
    neither waiting; then the first file loads and every count reconciles."""
    folder, env = setup
    september, october = _two_months(folder)
    others: list[subprocess.CompletedProcess[str]] = []

    def meanwhile() -> None:
        others.append(_backbone("submissions", "list", env=env))
        others.append(_append_attendance(october, env))

    result = _submit_meanwhile(folder, env, september, meanwhile)
    for done in others:
        assert done.returncode == 0, done.stderr
        assert "Waiting for the warehouse" not in done.stderr
    assert "enrollments.csv" in others[0].stdout  # the reader saw the warehouse
    assert result.status == "loaded"
    # the same rows and reasons as a file submitted alone (tests/test_ingest.py)
    assert (result.rows_read, result.rows_loaded, result.rows_quarantined) == (8, 2, 6)
    with Warehouse.open(folder / "wh", read_only=True) as wh:
        con = wh._con
        per_file = con.execute(
            "SELECT file_name, status, rows_loaded FROM ops.submission "
            "WHERE feed = 'attendance' ORDER BY submission_id"
        ).fetchall()
        # september was received first; october got in while it was checked
        assert [(n, st) for n, st, _ in per_file] == [
            ("sept.csv", "loaded"),
            ("oct.csv", "loaded"),
        ]
        events = con.execute(
            "SELECT count(*) FROM analytic.attendance_event"
        ).fetchone()
        assert events == (sum(n for _, _, n in per_file),)
        reasons = {
            row: sorted(rules)
            for row, rules in con.execute(
                "SELECT source_row, list_distinct(rules) FROM ops.quarantine "
                "WHERE submission_id = ?",
                [result.submission_id],
            ).fetchall()
        }
        assert reasons == EXPECTED_ATTENDANCE
        uploads = con.execute(
            "SELECT count(*) FROM gov.audit_log WHERE "
            "json_extract_string(entry, '$.action') = 'upload'"
        ).fetchone()
        assert uploads == (4,)
        assert wh.audit.verify().ok


def test_the_same_file_sent_twice_at_once_loads_once(
    setup: tuple[Path, dict[str, str]],
) -> None:
    """Sent again by another process while the first copy is checked, the file is
    loaded by whichever finishes first; the other says so and changes nothing."""
    folder, env = setup
    september = csv_file(folder / "sept.csv", ATTENDANCE)
    others: list[subprocess.CompletedProcess[str]] = []

    def meanwhile() -> None:
        others.append(_append_attendance(september, env))

    result = _submit_meanwhile(folder, env, september, meanwhile)
    assert others[0].returncode == 0, others[0].stderr
    assert "8 rows read, 2 loaded, 6 quarantined" in others[0].stdout
    assert result.status == "duplicate"
    assert "loaded meanwhile as submission" in result.message
    with Warehouse.open(folder / "wh", read_only=True) as wh:
        events = wh._con.execute(
            "SELECT count(*) FROM analytic.attendance_event"
        ).fetchone()
        assert events == (2,)
        statuses = wh._con.execute(
            "SELECT status FROM ops.submission WHERE feed = 'attendance' "
            "ORDER BY submission_id"
        ).fetchall()
        assert statuses == [("duplicate",), ("loaded",)]
        assert wh.audit.verify().ok


def _statuses(folder: Path) -> list[tuple[str, str, str | None]]:
    with Warehouse.open(folder / "wh", read_only=True) as wh:
        assert wh.audit.verify().ok
        return wh._con.execute(
            "SELECT file_name, status, note FROM ops.submission "
            "WHERE feed = 'attendance' ORDER BY submission_id"
        ).fetchall()


def test_a_mapping_changed_while_a_file_is_checked_loads_nothing(
    setup: tuple[Path, dict[str, str]],
) -> None:
    """The steward maps one more code while a file is checked: the file was read
    under the old mapping, so it is refused and sent again, never loaded half-mapped."""
    folder, env = setup
    september = csv_file(folder / "sept.csv", ATTENDANCE)
    mapping = folder / "wh" / "mappings" / "d1" / "attendance.yaml"

    def meanwhile() -> None:
        doc = yaml.safe_load(mapping.read_text())
        codes = doc["files"][0]["columns"]["attendance_event_category"]["codes"]
        codes["X"] = "Unexcused Absence"
        mapping.write_text(yaml.safe_dump(doc, sort_keys=False))

    with pytest.raises(UserError, match="changed while the file was checked"):
        _submit_meanwhile(folder, env, september, meanwhile)
    ((name, status, note),) = _statuses(folder)
    assert (name, status) == ("sept.csv", "refused")
    assert note is not None and "Send the file again" in note
    # sent again, it is read under the new mapping: code X is no longer quarantined
    again = _append_attendance(september, env)
    assert again.returncode == 0, again.stderr
    assert "8 rows read, 3 loaded, 5 quarantined" in again.stdout


def test_a_replacement_overtaken_by_a_newer_load_is_refused(
    setup: tuple[Path, dict[str, str]],
) -> None:
    """A file replacing its school year, overtaken while checked by a file received
    after it, does not wipe the newer file's rows."""
    folder, env = setup
    september, october = _two_months(folder)
    others: list[subprocess.CompletedProcess[str]] = []

    def meanwhile() -> None:
        others.append(_append_attendance(october, env))

    with pytest.raises(UserError, match="would replace newer data"):
        _submit_meanwhile(folder, env, september, meanwhile, mode="replace-period")
    assert others[0].returncode == 0, others[0].stderr
    assert [(n, st) for n, st, _ in _statuses(folder)] == [
        ("sept.csv", "refused"),
        ("oct.csv", "loaded"),
    ]
    with Warehouse.open(folder / "wh", read_only=True) as wh:
        dates = wh._con.execute(
            "SELECT DISTINCT month(event_date) FROM analytic.attendance_event"
        ).fetchall()
    assert dates == [(10,)]  # october's rows stand


def test_a_file_whose_warehouse_is_not_given_back_stays_received(
    setup: tuple[Path, dict[str, str]],
) -> None:
    """Another process takes the warehouse while a file is checked and keeps it past
    the wait: the submit gives up saying who holds it, the file's receipt stays, and
    sending it again later loads it."""
    folder, env = setup
    september = csv_file(folder / "sept.csv", ATTENDANCE)
    holder_code = (
        "import sys, time\n"
        "from backbone import Warehouse\n"
        f"with Warehouse.open({str(folder / 'wh')!r}) as wh:\n"
        "    print('holding', flush=True)\n"
        "    time.sleep(6)\n"
    )
    holders: list[subprocess.Popen[str]] = []

    def meanwhile() -> None:
        holder = subprocess.Popen(
            [sys.executable, "-c", holder_code],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        holders.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "holding"

    with pytest.raises(WarehouseError, match="is held by"):
        _submit_meanwhile(folder, env, september, meanwhile)
    holders[0].communicate(timeout=60)
    assert [(n, st) for n, st, _ in _statuses(folder)] == [("sept.csv", "received")]
    again = _append_attendance(september, env)
    assert again.returncode == 0, again.stderr
    assert "8 rows read, 2 loaded, 6 quarantined" in again.stdout
    assert [(n, st) for n, st, _ in _statuses(folder)] == [
        ("sept.csv", "duplicate"),
        ("sept.csv", "loaded"),
    ]
    with Warehouse.open(folder / "wh", read_only=True) as wh:
        uploads = wh._con.execute(
            "SELECT json_extract_string(entry, '$.what') FROM gov.audit_log "
            "WHERE json_extract_string(entry, '$.what') LIKE '%sept.csv%' ORDER BY seq"
        ).fetchall()
    # one upload entry per stored submission, the settled copy's included
    assert sorted(w.split(": ")[-1] for (w,) in uploads) == ["duplicate", "loaded"]


def test_an_older_file_loaded_last_does_not_overwrite_a_newer_one(
    setup: tuple[Path, dict[str, str]],
) -> None:
    """Two corrections of a student's name: the one received later wins, even when
    the earlier one took longer to check and loads last."""
    folder, env = setup
    earlier = csv_file(folder / "students_a.csv", STUDENTS.replace("Ana,", "Anna,"))
    later = csv_file(folder / "students_b.csv", STUDENTS.replace("Ana,", "Anya,"))
    others: list[subprocess.CompletedProcess[str]] = []

    def meanwhile() -> None:
        others.append(
            _backbone(
                "submit", "--partner", "d1", "--feed", "records", str(later), env=env
            )
        )

    result = _submit_meanwhile(folder, env, earlier, meanwhile, feed="records")
    assert others[0].returncode == 0, others[0].stderr
    assert result.status == "loaded"
    with Warehouse.open(folder / "wh", read_only=True) as wh:
        names = wh._con.execute(
            "SELECT first_name FROM identity.partner_record WHERE local_id = 'S1'"
        ).fetchall()
    assert names == [("Anya",)]
