import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backbone import __version__
from backbone.cli import app
from backbone.settings import SETTINGS
from tests.demo_build import DemoBuild, copy_demo

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert __version__ in result.output


def test_init_then_info(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    result = runner.invoke(app, ["init", str(wh), "--name", "Eastside Partnership"])
    assert result.exit_code == 0, result.output
    assert "Created warehouse" in result.output
    result = runner.invoke(app, ["info", "--warehouse", str(wh)])
    assert result.exit_code == 0, result.output
    assert "Eastside Partnership" in result.output
    assert "analytic.attendance_event" in result.output
    assert "Partners (0)" in result.output


def test_info_reads_the_warehouse_from_the_environment(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    assert runner.invoke(app, ["init", str(wh)]).exit_code == 0
    result = runner.invoke(app, ["info"], env={"BACKBONE_WAREHOUSE": str(wh)})
    assert result.exit_code == 0, result.output
    assert str(wh) in result.output


def test_settings_lists_every_setting() -> None:
    result = runner.invoke(app, ["settings"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for setting in SETTINGS:
        assert setting.name in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "--warehouse", "{tmp}/missing"], "No warehouse at"),
        (["info", "--warehouse", "{tmp}/foreign"], "is not a Backbone warehouse"),
        (["init", "{tmp}/foreign"], "exists and is not empty"),
        (
            ["demo", "generate", "--out", "{tmp}/foreign", "--students", "200"],
            "is not an earlier demo community",
        ),
        (
            ["demo", "generate", "--out", "{tmp}/x", "--students", "5"],
            "from 100 to",
        ),
    ],
)
def test_user_errors_are_one_clear_line_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "data.csv").write_text("a,b\n")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in args]
    env = {**os.environ, "COLUMNS": "400"}
    proc = subprocess.run(
        [sys.executable, "-m", "backbone", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: ")
    assert message in lines[0]


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_demo_run_builds_a_warehouse_and_says_where_to_look(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    output = demo_build.output  # `demo run` succeeded (the fixture checks)
    assert "Demo community built" in output
    assert "backbone info --warehouse" in output
    info = runner.invoke(
        app,
        ["info", "--warehouse", str(demo_build.out / "warehouse")],
        env={"COLUMNS": "200"},
    )
    assert "Partners (16)" in info.output
    assert "d05-oakdale" in info.output
    # the partnership's paperwork: a living agreement, an expired one, a funder's
    # aggregate-only license, overdue commitments and a request in review
    assert "Overdue commitments by owner" in output
    assert "graduate lists" in output
    assert "REQ-2026-07" in output
    # the agreements are read signed in (as the demo's steward, on a copy: a
    # sign-in is audited)
    demo = copy_demo(demo_build, tmp_path / "demo")
    wh = str(demo / "warehouse")
    steward = {
        "COLUMNS": "250",
        "BACKBONE_TOKEN": (demo / "steward.token").read_text("utf-8").strip(),
    }
    history = runner.invoke(
        app, ["agreement", "history", "DSA-A01", "-w", wh], env=steward
    )
    assert "widening" in history.output and "approved" in history.output
    listing = runner.invoke(app, ["agreement", "list", "-w", wh], env=steward).output
    assert "DSA-C03-PILOT" in listing and "2023-06-30" in listing
    funder = runner.invoke(
        app,
        [
            "agreement",
            "check",
            "--provider",
            "c02-eastside",
            "--recipient",
            "f01-unitedfund",
            "--entity",
            "program_attendance",
            "--field",
            "hours",
            "--purpose",
            "initiative_outcomes",
            "--operation",
            "row_level_view",
            "--on",
            "2025-01-01",
            "-w",
            wh,
        ],
        env=steward,
    )
    assert funder.exit_code == 1 and "not permitted for f01-unitedfund" in funder.output
    lint = runner.invoke(app, ["agreement", "lint", "-w", wh], env=steward)
    assert lint.exit_code == 0, lint.output


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_running_the_demo_again_replaces_its_community_and_warehouse(
    demo_build: DemoBuild, tmp_path: Path
) -> None:
    out = copy_demo(demo_build, tmp_path / "demo")
    small = ["--students", "300", "--years", "3", "--seed", "3"]
    refused = runner.invoke(app, ["demo", "run", "--out", str(out), *small])
    assert refused.exit_code == 1 and "--force" in refused.output
    # asked for: a small community is enough to show the old demo is replaced
    again = runner.invoke(app, ["demo", "run", "--out", str(out), *small, "--force"])
    assert again.exit_code == 0, again.output


@pytest.mark.slow
@pytest.mark.xdist_group("demo")
def test_demo_quarantines_exactly_the_planted_mistakes(demo_build: DemoBuild) -> None:
    import csv

    import duckdb

    assert "Counts reconcile" in demo_build.output
    with (demo_build.out / "community/truth/planted_errors.csv").open() as f:
        planted = list(csv.DictReader(f))
    expected = {
        (p["partner_id"], Path(p["file"]).name, int(p["row"]), p["entity"], p["rule"])
        for p in planted
        if p["row"]
    }
    con = duckdb.connect(
        str(demo_build.out / "warehouse/backbone.duckdb"), read_only=True
    )
    got = {
        (partner, name, row, entity, rule)
        for partner, name, row, entity, rules in con.execute(
            "SELECT s.partner_id, s.file_name, q.source_row, q.entity, list_distinct(q.rules) "
            "FROM ops.quarantine q JOIN ops.submission s USING (submission_id)"
        ).fetchall()
        for rule in rules
    }
    assert got == expected
    # the SSN column was refused, never stored, and its raw file awaits a decision
    refused = con.execute(
        "SELECT undeclared_columns, decision FROM ops.raw_decision"
    ).fetchall()
    assert refused == [(["SSN"], None)]
    assert "SSN" in demo_build.output
    totals = con.execute(
        "SELECT sum(rows_read), sum(rows_loaded) + sum(rows_quarantined) FROM ops.submission WHERE status = 'loaded'"
    ).fetchall()[0]
    assert totals[0] == totals[1]
    # the Ed-Fi district loaded through the stock mapping with nothing hand-written
    mapping = (
        demo_build.out / "warehouse/mappings/d01-northfield/attendance.yaml"
    ).read_text()
    assert mapping.strip() == "stock: edfi"
    edfi = con.execute(
        "SELECT count(*), count(DISTINCT attendance_event_category) FROM analytic.attendance_event "
        "WHERE provider_partner_id = 'd01-northfield'"
    ).fetchall()[0]
    assert edfi[0] > 1000 and edfi[1] == 3
    con.close()  # the shared demo's database is opened again by other tests
