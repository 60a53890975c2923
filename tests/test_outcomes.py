"""Funders' initiative outcomes on a small demo community: the steward's
evaluation, a funder's view of its own initiative (aggregates only, through the
release gate), refusals, initiatives set from YAML and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from backbone.cli import app
from backbone.errors import NotFoundError, PolicyDenied
from backbone.warehouse import Warehouse

runner = CliRunner()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("outcomes") / "demo"
    result = runner.invoke(
        app,
        ["demo", "run", "--out", str(out), "--students", "3000", "--seed", "5"],
        env={"COLUMNS": "250"},
    )
    assert result.exit_code == 0, result.output
    return out


def test_the_steward_evaluates_an_initiative_against_a_matched_comparison(
    demo: Path,
) -> None:
    with Warehouse.open(demo / "warehouse") as wh:
        steward = wh.access(wh.users.get("steward"), "program_evaluation")
        ev = wh.outcomes.evaluate(steward, "INIT-ATTEND")
        assert {p.program_id for p in ev.programs} == {"PRG-MENTOR", "PRG-AFTER-E"}
        published = [
            e for p in ev.programs for e in p.effects if e["effect"] is not None
        ]
        assert published, "no effect was published"
        for e in published:
            # every published number counts at least the minimum cell
            assert e["n_participants"] >= 10 and e["n_comparison"] >= 10
            assert e["ci_low"] <= e["effect"] <= e["ci_high"]
        att = [e for e in published if e["outcome"] == "attendance_rate"]
        assert any(e["design"] == "difference-in-differences" for e in att)
        balance = [b for p in ev.programs for b in p.balance if not b["suppressed"]]
        assert balance and all(
            b["flag"] in ("equivalent", "adjust", "not equivalent", "not computable")
            for b in balance
        )
        # the ledger keeps the release, under the evaluation's name
        row = wh._con.execute(
            "SELECT definition FROM gov.release WHERE release_id = ?", [ev.release_id]
        ).fetchone()
        assert row is not None and "evaluation of INIT-ATTEND" in row[0]


def test_a_funder_sees_aggregates_of_its_own_initiatives_only(demo: Path) -> None:
    with Warehouse.open(demo / "warehouse") as wh:
        viewer = wh.users.get("f01-unitedfund.viewer")
        access = wh.access(viewer, "initiative_outcomes")
        ev = wh.outcomes.evaluate(access, "INIT-ATTEND")
        assert any(e["effect"] is not None for p in ev.programs for e in p.effects)
        with pytest.raises(PolicyDenied):
            wh.outcomes.evaluate(access, "INIT-ENRICH")  # the City Foundation's
        with pytest.raises(PolicyDenied):
            access.rows("student_indicator")
        refused = [
            e
            for e in wh.audit.entries()
            if e["actor"] == "f01-unitedfund.viewer" and e["decision"] == "deny"
        ]
        assert len(refused) >= 2


def test_initiatives_are_set_from_yaml_and_checked(demo: Path, tmp_path: Path) -> None:
    good = tmp_path / "init.yaml"
    good.write_text(
        "initiative_id: INIT-READ\nfunder: f01-unitedfund\nname: Readers\n"
        "programs: [PRG-READ]\ntarget_outcomes: [ela_score]\n"
        "min_dosage: {sessions: 8}\n",
        encoding="utf-8",
    )
    with Warehouse.open(demo / "warehouse") as wh:
        wh.initiatives.set_file(good)
        got = wh.initiatives.get("INIT-READ")
        assert got.programs == ("PRG-READ",) and got.min_dosage.sessions == 8
        bad = tmp_path / "bad.yaml"
        bad.write_text(good.read_text().replace("ela_score", "happiness"))
        with pytest.raises(Exception, match="target_outcomes"):
            wh.initiatives.set_file(bad)
        with pytest.raises(NotFoundError):
            wh.initiatives.get("INIT-NONE")
    env = {
        "BACKBONE_TOKEN": (demo / "steward.token").read_text().strip(),
        "COLUMNS": "250",
    }
    result = runner.invoke(
        app,
        ["outcomes", "initiative", "list", "-w", str(demo / "warehouse")],
        env=env,
    )
    assert result.exit_code == 0 and "INIT-READ" in result.output
    result = runner.invoke(
        app,
        [
            "outcomes",
            "evaluate",
            "INIT-ACADEMIC",
            "--out",
            str(tmp_path / "report"),
            "-w",
            str(demo / "warehouse"),
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "Baseline equivalence" in result.output
    assert (tmp_path / "report" / "INIT-ACADEMIC.json").exists()
    assert list((tmp_path / "report").glob("*.png"))
