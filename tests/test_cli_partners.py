"""The partner, agreement, commitment, feed, request, status and digest commands."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backbone.cli import app

from .governance_fixtures import agreement, write
from .test_feeds_requests_status import REQUEST

runner = CliRunner()
ENV = {"COLUMNS": "250"}


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), env=ENV)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture
def wh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = str(tmp_path / "wh")
    run("init", path)
    for pid, kind in (
        ("b0", "backbone"),
        ("d1", "school_district"),
        ("c1", "community_organization"),
        ("a1", "higher_education_agency"),
        ("f1", "funder"),
    ):
        run(
            "partner",
            "add",
            pid,
            "--name",
            f"Partner {pid}",
            "--kind",
            kind,
            "-w",
            path,
        )
    # agreements are recorded by a signed-in steward admin
    run(
        "user",
        "add",
        "steward",
        "--partner",
        "b0",
        "--role",
        "steward_admin",
        "-w",
        path,
    )
    token = runner.invoke(app, ["user", "token", "steward", "-w", path]).stdout.strip()
    monkeypatch.setenv("BACKBONE_TOKEN", token)
    return path


def test_partner_add_list_show(wh: str) -> None:
    out = run(
        "partner",
        "add",
        "d2",
        "--name",
        "District Two",
        "--kind",
        "school_district",
        "--contact",
        "Ana Ruiz, data manager, ana@d2.org",
        "--school",
        "HS01=Two High School",
        "--school",
        "ES01=Two Elementary",
        "-w",
        wh,
    )
    assert "2 schools or sites" in out
    assert "District Two" in run("partner", "list", "-w", wh)
    show = run("partner", "show", "d2", "-w", wh)
    assert "Ana Ruiz, data manager <ana@d2.org>" in show
    assert "Two High School [d2/HS01]" in show


def test_the_life_of_an_agreement(wh: str, tmp_path: Path) -> None:
    assert "Recorded DSA-D1@1" in run(
        "agreement", "add", str(write(tmp_path / "a.yaml", agreement())), "-w", wh
    )
    v2 = agreement()
    v2["purposes"].append(
        {"id": "college_outcomes", "description": "Graduates in college."}
    )
    out = run(
        "agreement",
        "amend",
        "DSA-D1",
        str(write(tmp_path / "v2.yaml", v2)),
        "--effective",
        "2025-01-01",
        "--summary",
        "Add college outcomes",
        "-w",
        wh,
    )
    assert "Recorded DSA-D1@2 (widening)" in out
    assert "[widening] added purposes: college_outcomes" in out
    assert "pending until approved by: d1, b0" in out
    assert "in force from 2024-07-01" in run(
        "agreement", "show", "DSA-D1", "--on", "2025-02-01", "-w", wh
    )
    assert "still awaits b0" in run(
        "agreement",
        "approve",
        "DSA-D1",
        "--partner",
        "d1",
        "--title",
        "Sup",
        "--on",
        "2024-12-01",
        "-w",
        wh,
    )
    assert "in force from 2025-01-01" in run(
        "agreement",
        "approve",
        "DSA-D1",
        "--partner",
        "b0",
        "--title",
        "Dir",
        "--on",
        "2024-12-02",
        "-w",
        wh,
    )
    assert "- college_outcomes" not in run(
        "agreement", "show", "DSA-D1", "--on", "2024-12-31", "-w", wh
    )
    assert "id: college_outcomes" in run(
        "agreement", "show", "DSA-D1", "--on", "2025-01-01", "-w", wh
    )
    history = run("agreement", "history", "DSA-D1", "-w", wh)
    assert (
        "initial" in history
        and "widening" in history
        and "Add college outcomes" in history
    )
    # the signed-in steward admin recorded each party's approval on its behalf
    assert "d1 (steward, 2024-12-01)" in history
    assert "added purposes: college_outcomes" in run(
        "agreement", "diff", "DSA-D1", "1", "2", "-w", wh
    )
    assert "DSA-D1@2: ok" in run("agreement", "lint", "-w", wh)
    allow = run(
        "agreement",
        "check",
        "--provider",
        "d1",
        "--recipient",
        "b0",
        "--role",
        "steward_admin",
        "--entity",
        "attendance_event",
        "--field",
        "event_date",
        "--purpose",
        "college_outcomes",
        "--operation",
        "row_level_view",
        "--on",
        "2025-03-01",
        "-w",
        wh,
    )
    assert "ALLOW allowed by DSA-D1@2" in allow
    deny = runner.invoke(
        app,
        [
            "agreement",
            "check",
            "--provider",
            "d1",
            "--recipient",
            "f1",
            "--entity",
            "attendance_event",
            "--purpose",
            "program_evaluation",
            "--operation",
            "row_level_view",
            "--on",
            "2025-03-01",
            "-w",
            wh,
        ],
        env=ENV,
    )
    assert (
        deny.exit_code == 1
        and "DENY" in deny.output
        and "not permitted for f1" in deny.output
    )


def test_lint_of_a_file_reports_missing_terms(wh: str, tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", agreement(effective_to=None, retention=None))
    result = runner.invoke(app, ["agreement", "lint", str(path), "-w", wh], env=ENV)
    assert result.exit_code == 1
    assert (
        "error: effective_to: a ferpa_studies agreement must state its duration"
        in result.output
    )
    assert "error: retention:" in result.output


def test_commitments_feeds_requests_status_and_digest(wh: str, tmp_path: Path) -> None:
    run("agreement", "add", str(write(tmp_path / "a.yaml", agreement())), "-w", wh)
    out = run(
        "commitment",
        "add",
        "Collect the graduate lists",
        "--owner",
        "d1",
        "--person",
        "Ana",
        "--counterpart",
        "a1",
        "--due",
        "2026-11-01",
        "--on",
        "2026-10-01",
        "-w",
        wh,
    )
    assert "Commitment #1" in out
    run(
        "commitment",
        "update",
        "1",
        "--status",
        "in_progress",
        "--note",
        "Started",
        "--on",
        "2026-10-20",
        "-w",
        wh,
    )
    overdue = run("commitment", "list", "--overdue", "--on", "2026-11-30", "-w", wh)
    assert "Collect the graduate lists" in overdue and "29 days late" in overdue
    assert "2026-10-20 in_progress (due 2026-11-01) — Started" in run(
        "commitment", "show", "1", "-w", wh
    )
    run(
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
        "2026-01-01",
        "-w",
        wh,
    )
    assert "late (due 2026-11-15)" in run(
        "feed", "list", "--on", "2026-11-30", "-w", wh
    )
    run(
        "request",
        "file",
        str(write(tmp_path / "req.yaml", REQUEST)),
        "--on",
        "2026-11-01",
        "-w",
        wh,
    )
    assert "awaits d1" in run(
        "request",
        "review",
        "REQ-1",
        "--partner",
        "c1",
        "--decision",
        "approve",
        "--fit",
        "4",
        "--protections",
        "3",
        "--minimum",
        "4",
        "-w",
        wh,
    )
    assert "awaiting: d1" in run("request", "show", "REQ-1", "-w", wh)
    status = run("status", "--on", "2026-11-30", "-w", wh)
    for expected in (
        "Overdue commitments by owner",
        "Collect the graduate lists",
        "Late feeds",
        "2026-11-15",  # the late feed's due date
        "none yet",  # a partner that has sent nothing
        "REQ-1",
    ):
        assert expected in status
    digests = tmp_path / "digests"
    out = run(
        "digest",
        "--partner",
        "d1",
        "--out",
        str(digests),
        "--on",
        "2026-11-30",
        "-w",
        wh,
    )
    assert (
        (digests / "digest-d1-2026-11-30.txt")
        .read_text()
        .startswith("Backbone digest for Partner d1")
    )
    assert (
        "<h1>Backbone digest for Partner d1</h1>"
        in (digests / "digest-d1-2026-11-30.html").read_text()
    )
    assert "REQ-1 from f1" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["partner", "add", "d1", "--name", "Again", "--kind", "school_district"],
            "already exists",
        ),
        (
            ["partner", "add", "x1", "--name", "X", "--kind", "bank"],
            "kind 'bank' is not known",
        ),
        (
            [
                "partner",
                "add",
                "x1",
                "--name",
                "X",
                "--kind",
                "funder",
                "--contact",
                "Just a name",
            ],
            "should read 'Name, role, email'",
        ),
        (["agreement", "add", "{tmp}/broken.yaml"], "is not valid YAML"),
        (
            ["agreement", "add", "{tmp}/unknown.yaml"],
            "parties.provider: unknown partner 'zz'",
        ),
        (
            ["agreement", "add", "{tmp}/dates.yaml"],
            "effective_to (2020-01-01) is before effective_from",
        ),
        (
            [
                "agreement",
                "amend",
                "DSA-D1",
                "{tmp}/skip.yaml",
                "--effective",
                "2025-01-01",
                "--summary",
                "x",
            ],
            "skips or repeats a version",
        ),
        (
            [
                "agreement",
                "amend",
                "DSA-D1",
                "{tmp}/skip.yaml",
                "--effective",
                "01/05/2025",
                "--summary",
                "x",
            ],
            "is not a date; write it as YYYY-MM-DD",
        ),
        (
            ["commitment", "add", "Do it", "--owner", "zz", "--due", "2026-01-01"],
            "Unknown owner partner 'zz'",
        ),
        (["agreement", "show", "NOPE"], "no agreement 'NOPE'"),
        (
            [
                "commitment",
                "add",
                "Send [/] the lists",
                "--owner",
                "zz",
                "--due",
                "2026-01-01",
            ],
            "Unknown owner partner 'zz'",
        ),
        (["agreement", "lint", "{tmp}/missing.yaml"], "missing.yaml does not exist"),
        (
            ["digest", "--partner", "d1", "--out", "{tmp}/a.yaml"],
            "Cannot write the digest",
        ),
    ],
)
def test_bad_input_is_one_clear_line_and_changes_nothing(
    wh: str, tmp_path: Path, args: list[str], message: str
) -> None:
    write(tmp_path / "a.yaml", agreement())
    subprocess.run(
        [
            sys.executable,
            "-m",
            "backbone",
            "agreement",
            "add",
            str(tmp_path / "a.yaml"),
            "-w",
            wh,
        ],
        check=True,
        capture_output=True,
    )
    (tmp_path / "broken.yaml").write_text("agreement_id: [unclosed\n")
    write(
        tmp_path / "unknown.yaml",
        agreement(agreement_id="DSA-X", parties={"provider": "zz", "recipient": "b0"}),
    )
    write(
        tmp_path / "dates.yaml",
        agreement(agreement_id="DSA-Y", effective_to="2020-01-01"),
    )
    write(tmp_path / "skip.yaml", agreement(version=3, title="Changed"))
    before = (
        (Path(wh) / "backbone.duckdb").stat().st_size,
        sorted(p.name for p in (Path(wh) / "agreements").rglob("*")),
    )
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "backbone", *argv, "-w", wh],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "400"},
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ")
    assert message in lines[0]
    after = sorted(p.name for p in (Path(wh) / "agreements").rglob("*"))
    assert after == before[1]
    history = run("agreement", "history", "DSA-D1", "-w", wh)
    assert "Changed" not in history
