"""The early-warning commands, run as a person would (CliRunner, a signed-in
steward), on the hand-worked partnership of tests/early_warning_fixtures.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backbone import Warehouse
from backbone.cli import app
from backbone.measures.definitions import default_text
from tests.early_warning_fixtures import build
from tests.signin import steward_env

runner = CliRunner()


@pytest.fixture
def warehouse(tmp_path: Path) -> tuple[str, dict[str, str]]:
    path = tmp_path / "wh"
    build(path)
    with Warehouse.open(path) as wh:
        env = {**steward_env(wh, "b0"), "COLUMNS": "250"}
    return str(path), env


def _run(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    result = runner.invoke(app, args, env=env)
    return result.exit_code, result.output + repr(result.exception or "")


def test_compute_roster_and_count(warehouse: tuple[str, dict[str, str]]) -> None:
    wh, env = warehouse
    code, out = _run(["indicators", "compute", "-w", wh], env)
    assert code == 0, out
    assert re.search(r"2025-26\s*│\s*2026-06-30\s*│\s*v1\s*│\s*56\s*│", out), out
    code, out = _run(["indicators", "roster", "--tier", "high risk", "-w", wh], env)
    assert code == 0, out
    assert "2 students" in out and "state offense" in out and "suspended" in out
    code, out = _run(["indicators", "count", "--by", "tier", "-w", wh], env)
    assert code == 0, out
    assert re.search(r"on track\s*│\s*31\s*│", out), out
    assert re.search(r"high risk\s*│\s*\*\s*│", out), out  # 2 persons: suppressed
    code, out = _run(["indicators", "snapshots", "-w", wh], env)
    assert "2026-06-30" in out


def test_definitions_show_and_set(
    warehouse: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    wh, env = warehouse
    code, out = _run(["indicators", "definitions", "show", "-w", wh], env)
    assert code == 0 and "chronic_below: 0.90" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nattendance: [1, 2]\n")
    code, out = _run(["indicators", "definitions", "set", str(bad), "-w", wh], env)
    assert code == 1 and "Traceback" not in out
    assert str(bad) in out and "attendance" in out
    good = tmp_path / "good.yaml"
    good.write_text(
        default_text().replace("incidents_at_risk: 5", "incidents_at_risk: 4")
    )
    code, out = _run(
        [
            "indicators",
            "definitions",
            "set",
            str(good),
            "--note",
            "board vote",
            "-w",
            wh,
        ],
        env,
    )
    assert code == 0 and "version 2" in out
    code, out = _run(["indicators", "definitions", "history", "-w", wh], env)
    assert "board vote" in out


def test_charts_are_written_offline(
    warehouse: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    wh, env = warehouse
    assert _run(["indicators", "compute", "-w", wh], env)[0] == 0
    out_dir = tmp_path / "charts"
    code, out = _run(["indicators", "charts", "--out", str(out_dir), "-w", wh], env)
    assert code == 0, out
    pages = sorted(p.name for p in out_dir.glob("*.html"))
    assert "high-risk-trend.html" in pages and "tiers-by-school.html" in pages
    for page in out_dir.glob("*.html"):
        text = page.read_text()
        assert "<svg" in text and "<script" not in text and 'src="http' not in text
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in out_dir.glob("*.png"))
    # drawn again into the same folder: refused (nothing touched) unless --force
    before = {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()}
    code, out = _run(["indicators", "charts", "--out", str(out_dir), "-w", wh], env)
    assert code == 1 and "--force" in out
    assert {p.name: p.stat().st_mtime_ns for p in out_dir.iterdir()} == before
    again = ["indicators", "charts", "--out", str(out_dir), "--force", "-w", wh]
    assert _run(again, env)[0] == 0


def test_risk_training_needs_outcomes_and_says_so(
    warehouse: tuple[str, dict[str, str]],
) -> None:
    wh, env = warehouse
    assert _run(["indicators", "compute", "-w", wh], env)[0] == 0
    code, out = _run(["risk", "train", "-w", wh], env)
    assert code == 1 and "Traceback" not in out
    assert "at least two school years" in out


def test_mistakes_are_one_line_without_a_traceback(
    warehouse: tuple[str, dict[str, str]], tmp_path: Path
) -> None:
    wh, env = warehouse
    assert _run(["indicators", "compute", "-w", wh], env)[0] == 0
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    for args, message in (
        (
            [
                "indicators",
                "count",
                "--by",
                "tier",
                "--by",
                "sex",
                "--by",
                "grade_level",
            ],
            "at most 2 dimensions",
        ),
        (["indicators", "count", "--by", "student_local_id"], "cannot count by"),
        (["indicators", "definitions", "set", str(latin)], "not UTF-8"),
        (["risk", "report", "--model", "7"], "no risk model 7"),
        (["indicators", "trend", "--by", "school_year"], "pick a group"),
        (["indicators", "roster", "--tier", "doomed"], "unknown tier"),
    ):
        code, out = _run([*args, "-w", wh], env)
        assert code == 1 and "Traceback" not in out, out
        assert message in out, out


def test_the_roster_needs_a_sign_in(warehouse: tuple[str, dict[str, str]]) -> None:
    wh, _ = warehouse
    code, out = _run(["indicators", "roster", "-w", wh], {"COLUMNS": "250"})
    assert code == 1 and "sign in" in out
